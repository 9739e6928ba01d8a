"""Cross-entropy of the eval windows as TFMA metrics: nats and bits per token (per character for a
character model) and perplexity, from the evaluation signature's per-example `scores`
(log-likelihood in nats, predicted tokens). All three are lower-is-better; the nats metric carries
the blessing threshold (TFMA attaches it to the key named like the metric)."""

from __future__ import annotations

import json
import math

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from rnnflow.components.language_model.schema import metric_names

MODULE = __name__


def metric_configs(tokenizer: str, threshold) -> list:
    import tensorflow_model_analysis as tfma

    names = metric_names(tokenizer)
    return [tfma.MetricConfig(class_name="CrossEntropy", module=MODULE, threshold=threshold,
                              config=json.dumps({"name": names["nats"], "tokenizer": tokenizer, "only_nats": True})),
            tfma.MetricConfig(class_name="CrossEntropy", module=MODULE,
                              config=json.dumps({"name": "cross_entropy", "tokenizer": tokenizer}))]


def cross_entropy(log_likelihood: float, tokens: float, tokenizer: str) -> dict[str, float]:
    names = metric_names(tokenizer)
    nats = -log_likelihood / tokens if tokens else float("nan")
    return {names["nats"]: nats, names["bits"]: nats / math.log(2), names["perplexity"]: math.exp(nats)}


class CrossEntropy(metric_types.Metric):
    def __init__(self, name: str = "cross_entropy", tokenizer: str = "char", only_nats: bool = False):
        super().__init__(_computations, name=name, tokenizer=tokenizer, only_nats=only_nats)


def _computations(name=None, eval_config=None, model_names=None, output_names=None, tokenizer="char",
                  only_nats=False, **_):
    names = metric_names(tokenizer)
    keys = [names["nats"]] if only_nats else [names["bits"], names["perplexity"]]
    return [metric_types.MetricComputation(
        keys=[metric_types.MetricKey(name=k, model_name=model_name, output_name=output_name) for k in keys],
        preprocessors=[metric_types.StandardMetricInputsPreprocessor()],
        combiner=_Combiner(model_name, output_name, tokenizer, keys))
        for model_name in model_names or [""] for output_name in output_names or [""]]


class _Combiner(beam.CombineFn):
    def __init__(self, model_name, output_name, tokenizer, keys):
        self._model_name, self._output_name, self._tokenizer, self._keys = model_name, output_name, tokenizer, keys

    def create_accumulator(self):
        return [0.0, 0.0]

    def add_input(self, accumulator, element):
        scores = np.asarray(element.get_predictions(self._model_name or None, self._output_name or None),
                            np.float64).reshape(-1)
        accumulator[0] += scores[0]
        accumulator[1] += scores[1]
        return accumulator

    def merge_accumulators(self, accumulators):
        total = [0.0, 0.0]
        for accumulator in accumulators:
            total[0] += accumulator[0]
            total[1] += accumulator[1]
        return total

    def extract_output(self, accumulator):
        values = cross_entropy(accumulator[0], accumulator[1], self._tokenizer)
        return {metric_types.MetricKey(name=k, model_name=self._model_name, output_name=self._output_name): values[k]
                for k in self._keys}
