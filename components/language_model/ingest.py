"""TextWindowExampleGen's reading: text files -> one tf.Example per window (`features.py`), split
into train and eval by contiguous blocks (`reading.py`). The ingest scaffold
(`rnnflow.components.ingest.task_example_gen`) does the rest."""

from __future__ import annotations

from rnnflow.components.language_model import features
from rnnflow.components.language_model.reading import cut_windows, split_texts, tokenize
from rnnflow.components.language_model.schema import SPLITS, UNIGRAM_NATS, unigram_nats_per_token
from rnnflow.components.ingest.task_example_gen import Ingest
from rnnflow.components.tasks.base import InputReport


class TextWindowIngest(Ingest):
    node_id = "TextWindowExampleGen"
    splits = SPLITS
    unit = "windows"

    def read(self, config, files):
        return split_texts(config, files, 0.0 if config.data.eval_path else None)

    def read_split(self, config, split, files):
        """A predefined split's files: all of their text is that split's (read as "eval")."""
        return split_texts(config, files, 1.0)

    def report(self, config, files: list[str], splits) -> InputReport:
        distinct = len(set(splits.tokens["train"]))
        warnings = []
        if distinct > config.task.vocab_size:
            warnings.append(f"the train split has {distinct} distinct {config.task.tokenizer} tokens; the "
                            f"{distinct - config.task.vocab_size} rarest beyond task.vocab_size="
                            f"{config.task.vocab_size} share the out-of-vocabulary id")
        unseen = set(splits.tokens["eval"]) - set(splits.tokens["train"])
        notes = [f"{len(unseen)} tokens of the eval split never occur in train (out of vocabulary)"] if unseen else []
        return InputReport(files=files, rows=sum(len(w) for w in splits.windows.values()), warnings=warnings,
                           notes=notes, details={
                               "characters": splits.characters, "distinct_tokens": distinct,
                               UNIGRAM_NATS: unigram_nats_per_token(splits.tokens["train"], splits.tokens["eval"]),
                               **{f"{split}_tokens": len(t) for split, t in splits.tokens.items()},
                               **{f"{split}_windows": len(w) for split, w in splits.windows.items()}})

    def split(self, config, read) -> dict[str, list]:
        return {split: read.windows[split] for split in SPLITS}

    def records(self, config, read) -> list:
        return read.windows["train"] + read.windows["eval"]

    def record_text(self, record) -> str:
        return record

    def record_texts(self, config, record) -> list[str]:
        """A window cut into training-window pieces (eval windows are longer), so windows of every
        split are compared at one size, as before eval windows grew."""
        task = config.task
        return cut_windows(tokenize(record, task.tokenizer), task.window, task.tokenizer)

    def check_split(self, config, split, files, read, report, train) -> None:
        tokens, train_tokens = read.tokens["eval"], train.tokens["train"]
        report.details[f"{split}_tokens"], report.details[f"{split}_windows"] = len(tokens), len(read.windows["eval"])
        if split == "eval":  # the trivial score is the eval split's
            report.details[UNIGRAM_NATS] = unigram_nats_per_token(train_tokens, tokens)
        unseen = set(tokens) - set(train_tokens)
        if unseen:
            report.notes.append(f"{len(unseen)} tokens of the {split} split never occur in train (out of vocabulary)")

    def to_example(self, config, read):
        return features.window_example

    def feature_spec(self, config, report) -> dict:
        return features.feature_spec()
