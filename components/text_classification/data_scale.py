"""`task.max_tokens`, `task.vocab_size` and `task.min_frequency: auto`, measured on the training texts.

Transform runs this on its train split before it analyzes (see `Task.resolve_data_defaults`),
with the same normalization and tokenizer as `preprocessing_fn`, so the lengths and counts are
those of the tokens the model sees:

- max_tokens: the 95th percentile of the texts' token counts, rounded up to a multiple of 8,
  between 8 and 1024 (an RNN over longer sequences is slow and gains little; the rest of a
  longer text is cut, as with an explicit value);
- vocab_size: the fewest most frequent tokens that cover 95 % of the training tokens (after
  truncation), among tokens seen at least twice, at most 50,000;
- min_frequency: the count of the rarest token kept (at least 2: a token seen once cannot be
  learned, and its OOV bucket learns from all such tokens together; 1 only when no token is
  seen twice).

A dataset larger than 200,000 texts is measured on its first 200,000 train texts (the hash
split has already shuffled them). A text with no tokens counts as length 1 (it is encoded as
the empty-text token). Every text the same length gives that length.
"""

from __future__ import annotations

import collections
import math
from typing import Iterable

import numpy as np
import tensorflow as tf

from rnnflow.pipeline.config import AUTO

LENGTH_PERCENTILE = 95
MAX_TOKENS_RANGE = (8, 1024)
MAX_TOKENS_MULTIPLE = 8
TOKEN_COVERAGE = 0.95
MIN_FREQUENCY_FLOOR = 2
VOCAB_CEILING = 50_000
SAMPLE_ROWS = 200_000
_BATCH = 1024


def read_texts(train_files: list[str], text_column: str, limit: int = SAMPLE_ROWS) -> Iterable[tf.Tensor]:
    """Batches of raw texts ([batch] string) from gzipped tf.Example files, at most `limit` texts.
    A missing or empty text feature reads as an empty text."""
    dataset = tf.data.TFRecordDataset(train_files, compression_type="GZIP").take(limit).batch(_BATCH)
    spec = {text_column: tf.io.VarLenFeature(tf.string)}
    for serialized in dataset:
        texts = tf.io.parse_example(serialized, spec)[text_column]
        texts = tf.sparse.reset_shape(texts, [texts.dense_shape[0], tf.maximum(texts.dense_shape[1], 1)])
        yield tf.sparse.to_dense(texts, default_value="")[:, 0]


def resolve(task, text_batches: Iterable[tf.Tensor]) -> dict:
    """{"values": resolved dotted fields, "measured": rows, percentile length, coverage}."""
    from rnnflow.components.text_classification.preprocessing import normalize_text, tokenize

    tokenized = [tokenize(normalize_text(texts), task.tokenizer) for texts in text_batches]
    lengths = np.concatenate([t.row_lengths().numpy() for t in tokenized]) if tokenized else np.zeros(0, int)
    if lengths.size == 0:
        raise ValueError("task: cannot resolve auto fields: the train split has no texts")
    values: dict = {}
    measured: dict = {"train_texts_measured": int(lengths.size),
                      f"p{LENGTH_PERCENTILE}_tokens": float(np.percentile(np.maximum(lengths, 1), LENGTH_PERCENTILE)),
                      "mean_tokens": round(float(lengths.mean()), 1)}
    max_tokens = task.max_tokens
    if max_tokens == AUTO:
        max_tokens = resolve_max_tokens(lengths)
        values["task.max_tokens"] = max_tokens
    if AUTO in (task.vocab_size, task.min_frequency):
        counts: collections.Counter = collections.Counter()
        for tokens in tokenized:
            unique, _, count = tf.unique_with_counts(tokens[:, :max_tokens].flat_values)
            counts.update(dict(zip(unique.numpy(), count.numpy().tolist())))
        vocab_size, min_frequency, coverage = resolve_vocabulary(
            sorted(counts.values(), reverse=True), task.vocab_size, task.min_frequency)
        if task.vocab_size == AUTO:
            values["task.vocab_size"] = vocab_size
        if task.min_frequency == AUTO:
            values["task.min_frequency"] = min_frequency
        measured.update({"distinct_tokens": len(counts), "token_coverage": round(coverage, 4)})
    return {"values": values, "measured": measured}


def resolve_max_tokens(lengths: np.ndarray) -> int:
    low, high = MAX_TOKENS_RANGE
    percentile = float(np.percentile(np.maximum(lengths, 1), LENGTH_PERCENTILE))
    return int(min(high, max(low, math.ceil(percentile / MAX_TOKENS_MULTIPLE) * MAX_TOKENS_MULTIPLE)))


def resolve_vocabulary(counts: list[int], vocab_size, min_frequency) -> tuple[int, int, float]:
    """(vocab_size, min_frequency, share of tokens covered) for token counts sorted from the
    most frequent; a field given as a number constrains the other."""
    total = sum(counts) or 1
    floor = MIN_FREQUENCY_FLOOR if min_frequency == AUTO else min_frequency
    if min_frequency == AUTO and (not counts or counts[0] < floor):
        floor = 1  # every token seen once (a tiny dataset): keep them rather than none
    ceiling = VOCAB_CEILING if vocab_size == AUTO else vocab_size
    kept, covered = 0, 0
    for count in counts:
        if count < floor or kept >= ceiling or (vocab_size == AUTO and covered >= TOKEN_COVERAGE * total):
            break
        kept, covered = kept + 1, covered + count
    kept = max(kept, 1)  # at least one token, even when every token is rare
    rarest = counts[kept - 1] if counts else 1
    resolved_frequency = max(floor, rarest) if min_frequency == AUTO else min_frequency
    return (kept if vocab_size == AUTO else vocab_size), resolved_frequency, covered / total
