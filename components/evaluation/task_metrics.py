"""One TFMA metric scaffold for every task's own scores.

A task writes only its accumulator: a `Scores` subclass that adds one example (its raw features
and the model's prediction), merges with another, and turns its sums into named scores. This
module owns the rest, the same for every task: the computations over TFMA's model and output
names, the Beam combiner, the MetricKey mapping, and the pair of metric configs (the blessing
metric, which carries the threshold because TFMA attaches a threshold to the key named like the
metric, and one reporting every other score).

A task's metric class is `TaskMetric` with `SCORES` set; TFMA builds it from the config by
module and class name.
"""

from __future__ import annotations

import json
import math

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types


class Scores:
    """A task's accumulator. Subclasses take their settings as keyword arguments (JSON values,
    as they travel in the metric config) and name the raw features they read in `FEATURES`
    (or override `features` when they depend on the settings)."""

    FEATURES: tuple[str, ...] = ()

    @classmethod
    def features(cls, **settings) -> list[str]:
        return list(cls.FEATURES)

    @classmethod
    def names(cls, **settings) -> list[str]:
        """Every score's name; by default those an empty accumulator reports."""
        return list(cls(**settings).scores())

    def add(self, features: dict, prediction: np.ndarray) -> None:
        raise NotImplementedError

    def merge(self, other: "Scores") -> "Scores":
        raise NotImplementedError

    def scores(self) -> dict[str, float | None]:
        raise NotImplementedError


class TaskMetric(metric_types.Metric):
    SCORES: type[Scores] = Scores

    def __init__(self, name: str = "scores", only: str | None = None, exclude: str | None = None, **settings):
        super().__init__(self._computations, name=name, only=only, exclude=exclude, **settings)

    def _computations(self, name=None, eval_config=None, model_names=None, output_names=None, only=None,
                      exclude=None, **settings):
        scores = type(self).SCORES
        names = [only] if only else [n for n in scores.names(**settings) if n != exclude]
        features = scores.features(**settings)
        computations = []
        for model_name in model_names or [""]:
            for output_name in output_names or [""]:
                preprocessor = (metric_types.FeaturePreprocessor(feature_keys=features) if features
                                else metric_types.StandardMetricInputsPreprocessor())
                computations.append(metric_types.MetricComputation(
                    keys=[metric_types.MetricKey(name=n, model_name=model_name, output_name=output_name)
                          for n in names],
                    preprocessors=[preprocessor],
                    combiner=_Combiner(scores, settings, names, model_name, output_name)))
        return computations


class _Combiner(beam.CombineFn):
    def __init__(self, scores: type[Scores], settings: dict, names: list[str], model_name: str, output_name: str):
        self._scores, self._settings, self._names = scores, settings, names
        self._model_name, self._output_name = model_name, output_name

    def create_accumulator(self) -> Scores:
        return self._scores(**self._settings)

    def add_input(self, accumulator: Scores, element) -> Scores:
        prediction = element.get_predictions(self._model_name or None, self._output_name or None)
        accumulator.add(element.features or {}, np.asarray(prediction))
        return accumulator

    def merge_accumulators(self, accumulators) -> Scores:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result = result.merge(accumulator)
        return result

    def extract_output(self, accumulator: Scores) -> dict:
        values = accumulator.scores()
        return {metric_types.MetricKey(name=n, model_name=self._model_name, output_name=self._output_name):
                _number(values.get(n)) for n in self._names}


def _number(value) -> float:
    return math.nan if value is None else value


def metric_configs(metric: type[TaskMetric], blessing: str, threshold, report_name: str, **settings) -> list:
    """The blessing metric with its threshold, and one config reporting every other score."""
    import tensorflow_model_analysis as tfma

    def config(**extra) -> str:
        return json.dumps({**settings, **extra})

    return [tfma.MetricConfig(class_name=metric.__name__, module=metric.__module__, threshold=threshold,
                              config=config(name=blessing, only=blessing)),
            tfma.MetricConfig(class_name=metric.__name__, module=metric.__module__,
                              config=config(name=report_name, exclude=blessing))]
