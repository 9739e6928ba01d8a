"""The sequence labeling task's schema: Transform's output and vocabulary names, the input
report's keys, signature and output names, its splits and its config sections, which every
reader, writer, export and metric of the task shares. A leaf: it imports nothing else of its
package.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from rnnflow.components.common.run_facts import EVALUATION_EXAMPLES_SIGNATURE, SERVING_EXAMPLES_SIGNATURE
from rnnflow.pipeline.config import DataFields, constraint

# Transform's outputs, named once here (the model's input names come from the tagger).
TAG_IDS = "tag_ids"
WORD_VOCABULARY = "words"
CHAR_VOCABULARY = "chars"
TAG_VOCABULARY = "tags"
FIRST_ID = 1  # word and character ids: 0 is padding, the vocabulary and OOV buckets follow
# The input report's details.
TAG_LIST = "tags"  # the sorted IOB2 tags: tag id i is the i-th
TAG_COUNTS = "tag_counts"
ENTITY_TYPES = "entity_types"
EVAL_SIGNATURE = EVALUATION_EXAMPLES_SIGNATURE  # examples -> predicted tag ids, for TFMA
EXAMPLES_SIGNATURE = SERVING_EXAMPLES_SIGNATURE  # examples (their `sentence`) -> what serving_default answers
TOKENS_SIGNATURE = "serving_tokens"  # pre-tokenized: tokens [batch, steps] ("" pads) -> the same
PREDICTED_TAG_IDS = "predicted_tag_ids"
TAG_SCORES = "tag_scores"
SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class SentenceSplitConfig:
    """Sentences go to eval by a hash of their text (a repeated sentence is always in one split)."""
    eval_percent: int = constraint(20, min=1, max=99)


@dataclasses.dataclass(frozen=True)
class SequenceDataConfig(DataFields):  # path, rolling_spans
    # conll: one token per line, whitespace-separated columns, a blank line between sentences,
    # -DOCSTART- lines skipped; jsonl: one {"tokens": [...], "tags": [...]} object per line.
    format: Literal["conll", "jsonl"] = "conll"
    token_column: int = 0
    tag_column: int = -1  # CoNLL-2003: word POS chunk NER, so the last
    tokens_field: str = "tokens"
    tags_field: str = "tags"
    split: SentenceSplitConfig = dataclasses.field(default_factory=SentenceSplitConfig)


@dataclasses.dataclass(frozen=True)
class SequenceLabelingConfig:
    type: Literal["sequence_labeling"]
    # Longer sentences are truncated (counted in the input report; their later tokens are
    # tagged O at serving time and counted as missed entities by the metrics).
    max_tokens: int = constraint(128, min=1, max=10_000)
    vocab_size: int = constraint(30_000, min=1)
    # Words seen fewer times in the train split map to OOV buckets (the character encoder
    # still reads them).
    min_frequency: int = constraint(2, min=1)
    oov_buckets: int = constraint(1, min=1)
    # Word vocabulary on lowercased words with digits mapped to 0 (characters keep case).
    lowercase: bool = True
    char_encoder: Literal["none", "cnn", "lstm"] = "cnn"
    char_dim: int = constraint(25, min=1)
    char_units: int = constraint(100, min=1)  # CNN filters, or LSTM units per direction
    max_word_chars: int = constraint(20, min=1, max=1000)  # characters read per word
    decoder: Literal["softmax", "crf"] = "crf"


@dataclasses.dataclass(frozen=True)
class TaggingEvaluationConfig:
    """Blessing: `metric` on the eval split is at least `lower_bound`, and at most
    `max_regression` below the last blessed model's."""
    metric: Literal["entity_f1", "token_accuracy"] = "entity_f1"
    lower_bound: float = constraint(0.3, min=0.0, max=1.0)
    max_regression: float = constraint(0.02, min=0.0, max=1.0)
    # ... and it beats tagging every token O by this much (entity F1 0; token accuracy the share of
    # O tokens), whatever lower_bound says.
    baseline_margin: float = constraint(0.01, min=-1.0, max=1.0)
