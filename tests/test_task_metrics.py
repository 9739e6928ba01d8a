"""The one TFMA metric scaffold: each task's metric class, built from its metric config as TFMA
builds it, keys its scores by TFMA's model and output names and splits the blessing metric from
the rest."""

import importlib
import json
import math

import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from rnnflow.components.forecasting import metrics as forecast_metrics
from rnnflow.components.forecasting.schema import WINDOW_END_TIME, future_feature
from rnnflow.components.language_model import metrics as lm_metrics
from rnnflow.components.sequence_labeling import metrics as ner_metrics


def built(config):
    """The metric TFMA builds from a MetricConfig: the class by module and name, the JSON config as kwargs."""
    return getattr(importlib.import_module(config.module), config.class_name)(**json.loads(config.config))


def combined(metric, elements, model_name="", output_name=""):
    (computation,) = metric.computations(model_names=[model_name], output_names=[output_name])
    combiner = computation.combiner
    halves = []
    for part in (elements[:1], elements[1:]):
        accumulator = combiner.create_accumulator()
        for element in part:
            accumulator = combiner.add_input(accumulator, metric_types.StandardMetricInputs(element))
        halves.append(accumulator)
    result = combiner.extract_output(combiner.merge_accumulators(halves))
    assert set(result) == set(computation.keys)
    return {key.name: value for key, value in result.items()}


def test_entity_scores_count_exact_spans_and_the_blessing_metric_stands_alone():
    tags = ["O", "B-PER", "I-PER", "B-LOC"]
    configs = ner_metrics.metric_configs(tags, "entity_f1", threshold=None)
    elements = [{"features": {"tags": np.array([b"B-PER", b"I-PER", b"O"])}, "predictions": np.array([1, 2, 0])},
                {"features": {"tags": np.array([b"B-LOC", b"O"])}, "predictions": np.array([1, -1])}]
    blessing, rest = (combined(built(c), elements) for c in configs)
    assert blessing == {"entity_f1": pytest.approx(2 * 0.5 * 0.5 / 1.0)}
    assert "entity_f1" not in rest
    assert rest["entity_precision"] == 0.5 and rest["entity_recall"] == 0.5
    assert rest["entity_f1[PER]"] == pytest.approx(2 / 3) and rest["entity_f1[LOC]"] == 0.0
    assert rest["token_accuracy"] == pytest.approx(4 / 5)


def test_cross_entropy_sums_log_likelihood_and_tokens_over_examples():
    configs = lm_metrics.metric_configs("char", threshold=None)
    elements = [{"features": {}, "predictions": np.array([-2.0, 2.0])},
                {"features": {}, "predictions": np.array([-4.0, 1.0])}]
    blessing, rest = (combined(built(c), elements, model_name="candidate") for c in configs)
    (nats_name,) = blessing
    assert blessing[nats_name] == pytest.approx(2.0)
    assert nats_name not in rest and len(rest) == 2
    assert sorted(rest.values()) == pytest.approx(sorted([2.0 / math.log(2), math.exp(2.0)]))


def test_forecast_scores_read_raw_windows_and_report_skill_over_persistence():
    class Config:
        class task:
            horizon = 2

    class Report:
        details = {"targets": ["y"], "season": None}

    configs = forecast_metrics.metric_configs(Config, Report, skill_threshold=None)
    elements = [{"features": {"y": np.array([1.0, 2.0]), future_feature("y"): np.array([3.0, 4.0])},
                 "predictions": np.array([[3.0], [5.0]])}] * 2
    blessing, rest = (combined(built(c), elements) for c in configs)
    assert blessing == {"skill": pytest.approx(1 - 0.5 / 1.5)}
    assert rest["mae"] == pytest.approx(0.5) and rest["baseline_persistence_mae"] == pytest.approx(1.5)
    assert math.isnan(rest["baseline_seasonal_naive_mae"]) and "skill" not in rest
    assert math.isnan(rest["baseline_linear_mae"]) and math.isnan(rest["baseline_climatology_mae"])


def test_forecast_scores_read_the_linear_side_file_and_the_window_end_time_for_the_climatology(tmp_path):
    """The metric config names the Trainer's linear map by path and carries the climatology; the
    climatology's season position comes from each example's window_end_time."""
    from rnnflow.components.forecasting.baselines import write_linear

    path = str(tmp_path / "linear_baseline.npy")
    write_linear(path, np.array([[-1.0, -2.0], [0.0, 0.0]]))  # continue the last step's slope

    class Config:
        class task:
            horizon = 2

    class Report:
        details = {"targets": ["y"], "season": None, "linear_baseline": path,
                   "climatology": {"period_seconds": 7200, "frequency_seconds": 3600, "means": [[10.0], [3.0]]}}

    configs = forecast_metrics.metric_configs(Config, Report, skill_threshold=None)
    # Ends at hour 1 (odd): steps at hours 2 and 3 -> climatology 10, 3.
    elements = [{"features": {"y": np.array([1.0, 2.0]), future_feature("y"): np.array([3.0, 4.0]),
                              WINDOW_END_TIME: np.array([3600])},
                 "predictions": np.array([[3.0], [4.5]])}]
    blessing, rest = (combined(built(c), elements) for c in configs)
    assert rest["baseline_linear_mae"] == pytest.approx(0.0)  # 2 + 1, 2 + 2: exact
    assert rest["baseline_climatology_mae"] == pytest.approx((7 + 1) / 2)
    assert rest["best_baseline_mae"] == 0.0 and blessing == {"skill": -math.inf}
