"""Entity-level precision, recall and F1 (exact start, end and type, as the CoNLL scorer counts
them), overall and per entity type, and token accuracy, as TFMA metrics.

The true tags are the examples' raw `tags` feature (IOB2, as the ExampleGen wrote them); the
predictions are the evaluation signature's `predicted_tag_ids` (-1 past the sentence). Tokens past
`task.max_tokens` have no prediction: they count as O, so their entities count as missed.
"""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from rnnflow.components.sequence_labeling import conll
from rnnflow.components.sequence_labeling.features import TAGS

MODULE = __name__
OVERALL = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


def metric_configs(tag_names: list[str], blessing_metric: str, threshold) -> list:
    """The metric carrying the blessing threshold (TFMA attaches it to the key named like the
    metric), and one reporting every other score."""
    import tensorflow_model_analysis as tfma

    return [tfma.MetricConfig(class_name="EntityScores", module=MODULE, config=json.dumps(
                {"tag_names": tag_names, "only": blessing_metric, "name": blessing_metric}), threshold=threshold),
            tfma.MetricConfig(class_name="EntityScores", module=MODULE, config=json.dumps(
                {"tag_names": tag_names, "exclude": blessing_metric, "name": "entity_scores"}))]


class Counts:
    """Correct, predicted and true entities per type, and right/total tokens."""

    def __init__(self):
        self.entities: dict[str, list[int]] = {}
        self.right_tokens = self.tokens = 0

    def add(self, true: list[str], predicted: list[str]) -> None:
        gold, guessed = set(conll.entity_spans(true)), set(conll.entity_spans(predicted))
        for span in gold | guessed:
            entry = self.entities.setdefault(span[2], [0, 0, 0])
            entry[0] += span in gold and span in guessed
            entry[1] += span in guessed
            entry[2] += span in gold
        self.right_tokens += sum(t == p for t, p in zip(true, predicted))
        self.tokens += len(true)

    def merge(self, other: "Counts") -> "Counts":
        for kind, entry in other.entities.items():
            mine = self.entities.setdefault(kind, [0, 0, 0])
            for i in range(3):
                mine[i] += entry[i]
        self.right_tokens += other.right_tokens
        self.tokens += other.tokens
        return self

    def scores(self, types: list[str]) -> dict[str, float]:
        def prf(correct, guessed, gold):
            precision = correct / guessed if guessed else 0.0
            recall = correct / gold if gold else 0.0
            return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)

        total = [sum(e[i] for e in self.entities.values()) for i in range(3)]
        p, r, f = prf(*total)
        result = {"entity_precision": p, "entity_recall": r, "entity_f1": f,
                  "token_accuracy": self.right_tokens / self.tokens if self.tokens else 0.0}
        for kind in types:
            p, r, f = prf(*self.entities.get(kind, [0, 0, 0]))
            result.update({f"entity_precision[{kind}]": p, f"entity_recall[{kind}]": r, f"entity_f1[{kind}]": f})
        return result


class EntityScores(metric_types.Metric):
    def __init__(self, name: str = "entity_scores", tag_names=(), only: str | None = None,
                 exclude: str | None = None):
        super().__init__(_computations, name=name, tag_names=list(tag_names), only=only, exclude=exclude)


def _names(tag_names: list[str], only: str | None, exclude: str | None) -> list[str]:
    names = list(Counts().scores(_types(tag_names)))
    return [only] if only else [n for n in names if n != exclude]


def _types(tag_names: list[str]) -> list[str]:
    return sorted({t[2:] for t in tag_names if t != conll.OUTSIDE})


def _computations(name=None, eval_config=None, model_names=None, output_names=None, tag_names=(), only=None,
                  exclude=None, **_):
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            computations.append(metric_types.MetricComputation(
                keys=[metric_types.MetricKey(name=n, model_name=model_name, output_name=output_name)
                      for n in _names(list(tag_names), only, exclude)],
                preprocessors=[metric_types.FeaturePreprocessor(feature_keys=[TAGS])],
                combiner=_Combiner(model_name, output_name, list(tag_names), only, exclude)))
    return computations


class _Combiner(beam.CombineFn):
    def __init__(self, model_name, output_name, tag_names, only, exclude):
        self._model_name, self._output_name = model_name, output_name
        self._tag_names, self._only, self._exclude = tag_names, only, exclude

    def create_accumulator(self) -> Counts:
        return Counts()

    def add_input(self, accumulator: Counts, element) -> Counts:
        true = [t.decode("utf-8") if isinstance(t, bytes) else str(t)
                for t in np.asarray(element.features[TAGS]).reshape(-1)]
        ids = np.asarray(element.get_predictions(self._model_name or None, self._output_name or None)).reshape(-1)
        predicted = [self._tag_names[int(i)] for i in ids[:len(true)] if i >= 0]
        predicted += [conll.OUTSIDE] * (len(true) - len(predicted))
        accumulator.add(true, predicted)
        return accumulator

    def merge_accumulators(self, accumulators) -> Counts:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator: Counts) -> dict:
        names = set(_names(self._tag_names, self._only, self._exclude))
        return {metric_types.MetricKey(name=k, model_name=self._model_name, output_name=self._output_name): v
                for k, v in accumulator.scores(_types(self._tag_names)).items() if k in names}
