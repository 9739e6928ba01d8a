"""SentenceExampleGen's reading: CoNLL or JSONL files -> one tf.Example per sentence
(`features.py`), split into train and eval by a hash of the sentence's tokens
(`data.split.eval_percent`), so a repeated sentence never sits in both. The ingest scaffold
(`rnnflow.components.ingest.task_example_gen`) does the rest."""

from __future__ import annotations

import collections

from rnnflow.components.sequence_labeling import conll, features
from rnnflow.components.sequence_labeling.reading import read_sentences, split_of
from rnnflow.components.sequence_labeling.schema import ENTITY_TYPES, SPLITS, TAG_COUNTS, TAG_LIST
from rnnflow.components.ingest.task_example_gen import Ingest
from rnnflow.components.tasks import splits
from rnnflow.components.tasks.base import DataError, InputReport, check_split_sizes


def _sentence_example(row):
    return features.sentence_example(*row)


class SentenceIngest(Ingest):
    node_id = "SentenceExampleGen"
    splits = SPLITS
    unit = "sentences"

    def read(self, config, files):
        return read_sentences(config.data, files)

    def report(self, config, files: list[str], read) -> InputReport:
        """The input report of sentences read from `files` (`reading.ReadResult`)."""
        if not read.sentences:
            raise DataError(f"{', '.join(files)}: no sentence")
        counts = collections.Counter(tag for s in read.sentences for tag in s.tags)
        types = sorted({tag[2:] for tag in counts if tag != conll.OUTSIDE})
        if not types:
            raise DataError(f"{', '.join(files)}: every tag is O; a tagger needs at least one entity type")
        check_split_sizes(config, files, [s.tokens for s in read.sentences], split_of, MIN_SENTENCES, "sentences",
                          "a tagger")
        limit = config.task.max_tokens
        long = [(len(s.tokens), w) for s, w in zip(read.sentences, read.where) if len(s.tokens) > limit]
        rows = len(read.sentences)
        warnings, notes = [], []
        if long:
            shown = ", ".join(f"{w} ({n} tokens)" for n, w in sorted(long, reverse=True)[:_SHOWN])
            warnings.append(f"{len(long)} of {rows} sentences are longer than task.max_tokens={limit} and are "
                            f"truncated to it (longest: {shown})")
        if read.repaired:
            notes.append(f"{read.repaired} I- tags followed nothing of their type and were read as the start of "
                         "an entity, as IOB1 reads them (in an IOB1 file that is how entities start)")
        tags = sorted(counts)
        return InputReport(files=files, rows=rows, warnings=warnings, notes=notes, details={
            TAG_LIST: tags, TAG_COUNTS: dict(sorted(counts.items())), ENTITY_TYPES: types,
            "tokens": sum(counts.values()), "truncated_sentences": len(long), "repaired_tags": read.repaired})

    def split(self, config, read) -> dict[str, list]:
        by_split = {split: [] for split in SPLITS}
        for sentence in read.sentences:
            by_split[split_of(sentence.tokens, config.data.split.eval_percent)].append((sentence.tokens, sentence.tags))
        empty = [split for split, rows in by_split.items() if not rows]
        if empty:
            raise ValueError(f"{len(read.sentences)} sentences leave the {empty[0]} split empty with "
                             f"data.split.eval_percent={config.data.split.eval_percent}; add sentences")
        return by_split

    def records(self, config, read) -> list:
        return [(sentence.tokens, sentence.tags) for sentence in read.sentences]

    def record_text(self, record) -> str:
        return " ".join(record[0])

    def check_split(self, config, split, files, read, report, train) -> None:
        if not read.sentences:
            raise DataError(f"{splits.FIELDS[split]}: {splits.described(files)}: no sentence")
        known = set(report.details[TAG_LIST])
        unknown = collections.Counter(tag for s in read.sentences for tag in s.tags if tag not in known)
        if unknown:
            shown = ", ".join(f"'{tag}' ({n})" for tag, n in sorted(unknown.items())[:_SHOWN])
            report.warnings.append(f"{sum(unknown.values())} tokens of the {split} split have a tag the train split "
                                   f"never has: {shown}; the model cannot predict them (they count as missed)")

    def to_example(self, config, read):
        return _sentence_example

    def feature_spec(self, config, report) -> dict:
        return features.feature_spec()


_SHOWN = 3
# The fewest sentences per split a run is worth starting with: fewer cannot train a tagger or
# measure one, and end, minutes later, not blessed.
MIN_SENTENCES = {"train": 20, "eval": 5}
