"""The language model task's schema: Transform's output and vocabulary names, signature and
output names, its splits, its config sections, its metric names and the unigram baseline, which
every reader, writer, export and metric of the task shares. A leaf: it imports nothing else of
its package.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Literal

from rnnflow.components.common.run_facts import EVALUATION_EXAMPLES_SIGNATURE, SERVING_EXAMPLES_SIGNATURE
from rnnflow.pipeline.config import CsvFields, constraint

TOKEN_IDS = "token_ids"  # Transform: [batch, (tokens)] ids, 0 pads, then the vocabulary, then OOV
TOKEN_VOCABULARY = "tokens"
FIRST_ID = 1
SPLITS = ("train", "eval")
SCORE_SIGNATURE = "score"
EXAMPLES_SIGNATURE = SERVING_EXAMPLES_SIGNATURE  # examples (their `text`) -> what `score` answers
EVAL_SIGNATURE = EVALUATION_EXAMPLES_SIGNATURE  # examples -> `scores` [batch, 2]: log-likelihood, tokens
SCORES = "scores"
LOG_LIKELIHOOD = "log_likelihood"


@dataclasses.dataclass(frozen=True)
class ContiguousSplitConfig:
    """The last `eval_fraction` of the text (of each document, or of the texts in order) evaluates."""
    eval_fraction: float = constraint(0.1, min=0.0, max=1.0, min_exclusive=True)


@dataclasses.dataclass(frozen=True)
class TextCorpusConfig(CsvFields):  # path, rolling_spans; CSV only: encoding, delimiter, quote_char
    # text: each file one document; lines: one text per line; csv: one text per row of text_column.
    format: Literal["text", "lines", "csv"] = "text"
    text_column: str = "text"
    split: ContiguousSplitConfig = dataclasses.field(default_factory=ContiguousSplitConfig)


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig:
    type: Literal["language_model"]
    tokenizer: Literal["char", "word"] = "char"
    # Tokens per training window (truncated backpropagation through time over this many steps).
    window: int = constraint(100, min=1, max=100_000)
    # Tokens per eval window (`eval_window_size`): each read from a zero state and every token
    # after the first scored, like a training window but longer, so the eval cross-entropy is
    # that of reading the text with the state carried along (as generation does) rather than of
    # restarting every `window` tokens. On tiny-shakespeare the same model scored 1.506 nats per
    # character in windows of 100, 1.482 in 256 (nanoGPT's blocks), 1.475 in 512, 1.473 in 1000.
    eval_window: int = constraint(1000, min=1, max=1_000_000)
    # The most frequent tokens kept; the rest (and, at serving time, tokens never seen in
    # training) share one out-of-vocabulary id.
    vocab_size: int = constraint(1000, min=1)
    min_frequency: int = constraint(1, min=1)
    # The largest max_length a generation request may ask for.
    max_generate: int = constraint(10_000, min=1, max=1_000_000)


@dataclasses.dataclass(frozen=True)
class LanguageModelEvaluationConfig:
    """Blessing: eval cross-entropy (nats per token) at most `max_nats_per_token`, and at most
    `max_regression` nats above the last blessed model's."""
    max_nats_per_token: float = constraint(3.0, min=0.0, min_exclusive=True)
    max_regression: float = constraint(0.05, min=0.0)
    # ... and at least this many nats per token below a unigram model of the train split (token
    # frequencies, no context), whatever max_nats_per_token says.
    baseline_margin: float = constraint(0.05, min=-1.0)


def eval_window_size(task: LanguageModelConfig, tokens: int) -> int:
    """Tokens per window of an eval split of `tokens` tokens: `task.eval_window`, or all but one
    of the split's tokens when it is shorter, never fewer than `task.window` (a split shorter than
    one training window is an error where it is read)."""
    return max(task.window, min(task.eval_window, tokens - 1))


UNIGRAM_NATS = "unigram_nats_per_token"  # input report: the trivial predictor's eval cross-entropy


def unigram_nats_per_token(train: list[str], evaluation: list[str]) -> float:
    """The eval cross-entropy (nats per token) of token frequencies counted on train (add-one
    smoothed, one slot for tokens train never saw): what a model with no context scores."""
    counts = collections.Counter(train)
    total, slots = len(train), len(counts) + 1
    if not evaluation:
        return math.log(slots)
    return -sum(math.log((counts.get(t, 0) + 1) / (total + slots)) for t in evaluation) / len(evaluation)


def metric_names(tokenizer: str) -> dict[str, str]:
    unit = "char" if tokenizer == "char" else "word"
    return {"nats": f"nats_per_{unit}", "bits": f"bits_per_{unit}", "perplexity": "perplexity"}
