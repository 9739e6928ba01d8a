"""The text classification task's schema: Transform's output and vocabulary names, the token id
layout, the input report's keys, the metrics a config may bless on, signature and output names,
and its config sections, which every reader, writer, export and metric of the task shares. A
leaf: it imports nothing else of its package.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from rnnflow.components.common.run_facts import EVALUATION_EXAMPLES_SIGNATURE, SERVING_EXAMPLES_SIGNATURE
from rnnflow.pipeline.config import AUTO, Auto, CsvFields, constraint

# Feature names produced by Transform, named once here.
TOKEN_IDS = "token_ids"
LABEL_ID = "label_id"
LABEL_VOCABULARY = "label"
# The input report's details: the sorted class names (they fix class ids before training) and
# the rows per class.
LABEL_VALUES, LABEL_COUNTS = "label_values", "label_counts"
TOKEN_VOCABULARY = "tokens"
# Token id layout: 0 is padding, 1 marks an empty text, vocabulary and OOV ids follow.
PAD_ID = 0
EMPTY_TEXT_ID = 1
FIRST_VOCAB_ID = 2

# Metric names in configs -> (TFMA metric class, whether it is computed per class and macro-averaged).
METRICS = {
    "accuracy": ("SparseCategoricalAccuracy", False),
    "auc": ("AUC", True),
    "precision": ("Precision", True),
    "recall": ("Recall", True),
}
# Evaluate through these exported signatures (see export.py).
EVAL_SIGNATURE = EVALUATION_EXAMPLES_SIGNATURE
EXAMPLES_SIGNATURE = SERVING_EXAMPLES_SIGNATURE  # for clients: tf.Examples in, the same outputs
TRANSFORM_SIGNATURE = "transform_features"
PROBABILITIES = "probabilities"


DataFormat = Literal["csv", "tfrecord", "parquet"]


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Hash-bucket split of the input into train and eval (ExampleGen output_config)."""
    train_buckets: int = constraint(4, min=1)
    eval_buckets: int = constraint(1, min=1)


@dataclasses.dataclass(frozen=True)
class TextDataConfig(CsvFields):  # path, rolling_spans; CSV only: encoding, delimiter, quote_char
    format: DataFormat = "csv"
    text_column: str = "text"
    label_column: str = "label"
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig:
    type: Literal["text_classification"]
    tokenizer: Literal["word", "char"] = "word"
    # Texts are truncated to this many tokens. auto: a high percentile of the training texts'
    # lengths (see `data_scale`).
    max_tokens: int | Auto = constraint(AUTO, min=1, max=100_000)
    # auto: the fewest most frequent tokens that cover most of the training tokens.
    vocab_size: int | Auto = constraint(AUTO, min=1)
    oov_buckets: int = constraint(10, min=1)
    # Tokens seen fewer times than this in the train split map to OOV buckets. auto: the
    # count of the rarest token the vocabulary keeps (at least 2).
    min_frequency: int | Auto = constraint(AUTO, min=1)
    label_smoothing: float = constraint(0.0, min=0.0, max=0.5)
    # "balanced" weighs classes by inverse frequency in the input.
    class_weight: Literal["none", "balanced"] = "none"
