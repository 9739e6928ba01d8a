"""Cross-entropy of the eval windows as TFMA metrics: nats and bits per token (per character for a
character model) and perplexity, from the evaluation signature's per-example `scores`
(log-likelihood in nats, predicted tokens). All three are lower-is-better; the nats metric carries
the blessing threshold (TFMA attaches it to the key named like the metric)."""

from __future__ import annotations

import math

import numpy as np

from rnnflow.components.evaluation import task_metrics
from rnnflow.components.language_model.schema import metric_names


def metric_configs(tokenizer: str, threshold) -> list:
    return task_metrics.metric_configs(CrossEntropy, metric_names(tokenizer)["nats"], threshold, "cross_entropy",
                                       tokenizer=tokenizer)


def cross_entropy(log_likelihood: float, tokens: float, tokenizer: str) -> dict[str, float]:
    names = metric_names(tokenizer)
    nats = -log_likelihood / tokens if tokens else float("nan")
    return {names["nats"]: nats, names["bits"]: nats / math.log(2), names["perplexity"]: math.exp(nats)}


class LogLikelihood(task_metrics.Scores):
    """Summed log-likelihood (nats) and predicted tokens of the examples' `scores` output."""

    def __init__(self, tokenizer: str = "char"):
        self.tokenizer = tokenizer
        self.log_likelihood = self.tokens = 0.0

    def add(self, features: dict, prediction: np.ndarray) -> None:
        scores = prediction.astype(np.float64).reshape(-1)
        self.log_likelihood += scores[0]
        self.tokens += scores[1]

    def merge(self, other: "LogLikelihood") -> "LogLikelihood":
        self.log_likelihood += other.log_likelihood
        self.tokens += other.tokens
        return self

    def scores(self) -> dict[str, float]:
        return cross_entropy(self.log_likelihood, self.tokens, self.tokenizer)


class CrossEntropy(task_metrics.TaskMetric):
    SCORES = LogLikelihood
