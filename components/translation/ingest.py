"""PairExampleGen's reading: sentence pairs (`reading.py`) -> one tf.Example per pair
(`features.py`), split into train and eval by a hash of the source sentence
(`data.split.eval_percent`), so a source with several translations never sits in both. The
ingest scaffold (`rnnflow.components.ingest.task_example_gen`) does the rest, predefined splits
and the leakage report (by source sentence) included."""

from __future__ import annotations

import collections

from rnnflow.components.ingest.task_example_gen import Ingest
from rnnflow.components.tasks import splits
from rnnflow.components.tasks.base import DataError, InputReport, check_split_sizes
from rnnflow.components.translation import features
from rnnflow.components.translation.reading import read_pairs, shown, split_of
from rnnflow.components.translation.schema import SPLITS

# The fewest pairs per split a run is worth starting with.
MIN_PAIRS = {"train": 20, "eval": 5}


class PairIngest(Ingest):
    node_id = "PairExampleGen"
    splits = SPLITS
    unit = "pairs"

    def read(self, config, files):
        return read_pairs(config.data, files)

    def report(self, config, files: list[str], read) -> InputReport:
        if not read.pairs:
            empty = f" ({len(read.empty)} pairs with an empty side skipped)" if read.empty else ""
            raise DataError(f"{splits.described(files)}: no sentence pair{empty}")
        check_split_sizes(config, files, [source for source, _ in read.pairs], split_of, MIN_PAIRS, "pairs",
                          "a translation model", by="by source sentence")
        warnings, notes = _findings(config, read, "train")
        source_words = [len(s.split()) for s, _ in read.pairs]
        target_words = [len(t.split()) for _, t in read.pairs]
        return InputReport(files=files, rows=len(read.pairs), warnings=warnings, notes=notes, details={
            "pairs": len(read.pairs), "distinct_sources": len({s for s, _ in read.pairs}),
            "source_words_mean": round(sum(source_words) / len(source_words), 2),
            "target_words_mean": round(sum(target_words) / len(target_words), 2),
            "source_words_max": max(source_words), "target_words_max": max(target_words),
            "empty_pairs_skipped": len(read.empty)})

    def split(self, config, read) -> dict[str, list]:
        by_split = {split: [] for split in SPLITS}
        for pair in read.pairs:
            by_split[split_of(pair[0], config.data.split.eval_percent)].append(pair)
        return by_split

    def records(self, config, read) -> list:
        return list(read.pairs)

    def record_text(self, record) -> str:
        return record[0]  # a source in two splits leaks, whatever its translations

    def check_split(self, config, split, files, read, report, train) -> None:
        if not read.pairs:
            raise DataError(f"{splits.FIELDS[split]}: {splits.described(files)}: no sentence pair")
        warnings, notes = _findings(config, read, split)
        report.warnings.extend(warnings)
        report.notes.extend(notes)

    def to_example(self, config, read):
        return features.pair_example

    def feature_spec(self, config, report) -> dict:
        return features.feature_spec()


def _findings(config, read, split: str) -> tuple[list[str], list[str]]:
    """Skipped empty sides and over-long pairs (warnings), repeated pairs (a note)."""
    warnings, notes = [], []
    if read.empty:
        warnings.append(f"{len(read.empty)} pairs of the {split} split have an empty source or target and are "
                        f"skipped ({shown(read.empty)})")
    task = config.task
    long = [w for (s, t), w in zip(read.pairs, read.where)
            if len(s.split()) > task.max_source_tokens or len(t.split()) > task.max_target_tokens]
    if long:
        warnings.append(f"{len(long)} pairs of the {split} split have more words than task.max_source_tokens="
                        f"{task.max_source_tokens} / task.max_target_tokens={task.max_target_tokens} and are "
                        f"truncated to that many subword pieces ({shown(long)})")
    repeated = sum(n - 1 for n in collections.Counter(read.pairs).values() if n > 1)
    if repeated:
        notes.append(f"{repeated} pairs of the {split} split repeat an earlier pair (kept: they weigh more)")
    return warnings, notes
