"""Time-series forecasting (weather, load, prices): a lookback window in, the next
`horizon` steps of the target columns out, multi-horizon direct.

The series becomes windowed tf.Examples in `TimeSeriesExampleGen` (chronological
train/eval/test split, no window across a boundary); Transform z-scores with
train-only statistics; the Evaluator blesses a model only when it beats the
persistence forecast by a margin; `ForecastReport` evaluates the test split once.
"""

from __future__ import annotations

import re

from rnnflow.components.forecasting.schema import (EVAL_SIGNATURE, FORECAST, RESERVED_NAMES, SPLITS,
                                                   ForecastEvaluationConfig, ForecastingConfig, SeriesDataConfig,
                                                   parse_timestamp, frequency_seconds)
from rnnflow.components.tasks.base import InputReport, Task, blessing_threshold
from rnnflow.pipeline.config import AUTO, ConfigError

# model.* fields of the recurrent stack that only the steps encoder reads.
_STEPS_ONLY_MODEL_FIELDS = ("bidirectional", "layers", "pooling", "residual", "layer_norm", "input_dropout")


class ForecastingTask(Task):
    name = "forecasting"
    task_config_cls = ForecastingConfig
    data_config_cls = SeriesDataConfig
    spans_form_one_series = True
    # The window is numeric: no embedding; no text, so no missing-text policy.
    honoured_fields = {"model": ("cell", "bidirectional", "layers", "units", "pooling", "residual", "layer_norm",
                                 "input_dropout", "dropout"),
                       "serving": ("base_dir", "model_name", "keep_versions", "tf_serving_version", "validation_examples")}
    # A forecaster reads the past in time order: one direction unless asked for both.
    section_defaults = {"model": {"bidirectional": False}}
    evaluation_config_cls = ForecastEvaluationConfig
    splits = SPLITS
    preprocessing_fn = "rnnflow.components.forecasting.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.forecasting.trainer.run_fn"
    tuner_fn = "rnnflow.components.forecasting.trainer.tuner_fn"
    examples_signature = EVAL_SIGNATURE
    ingest_class = "rnnflow.components.forecasting.ingest.TimeSeriesIngest"

    def headline_metrics(self, metrics: dict) -> dict:
        """Overall metrics; per-horizon-step ones ("mae_h3") stay in run_summary.json."""
        return {k: v for k, v in metrics.items() if not re.search(r"_h\d+$", k)}

    def validate_config(self, config) -> None:
        data, split = config.data, config.data.split
        if not data.target_columns:
            raise ConfigError("data.target_columns: name at least one column to forecast, e.g. [OT]")
        for field in ("feature_columns", "target_columns"):
            columns = getattr(data, field)
            if len(set(columns)) != len(columns):
                raise ConfigError(f"data.{field}: duplicate columns {list(columns)}")
            for column in columns:
                if column == data.time_column:
                    raise ConfigError(f"data.{field}: '{column}' is the time column")
        if bool(data.eval_path) != bool(data.test_path):
            raise ConfigError(f"data.{'test_path' if data.eval_path else 'eval_path'}: a series' splits are consecutive "
                              "stretches of it; give data.eval_path and data.test_path together (the train file is "
                              "then all train), or neither (data.split cuts data.path by time)")
        if (split.eval_start is None) != (split.test_start is None):
            raise ConfigError("data.split: set both eval_start and test_start, or neither")
        if split.eval_start is not None:
            eval_start, test_start = (parse_timestamp(getattr(split, f), f"data.split.{f}")
                                      for f in ("eval_start", "test_start"))
            if eval_start >= test_start:
                raise ConfigError(f"data.split: eval_start {split.eval_start} must be before "
                                  f"test_start {split.test_start}")
        elif split.train_fraction + split.eval_fraction >= 1.0:
            raise ConfigError(f"data.split: train_fraction + eval_fraction = "
                              f"{split.train_fraction + split.eval_fraction:g} leaves no test split")
        if data.frequency is not None:
            frequency_seconds(data.frequency)
        self._validate_encoder(config)

    def _validate_encoder(self, config) -> None:
        task = config.task
        if task.encoder == AUTO:  # checked once the ingest resolves it (`series.resolve_auto`)
            return
        if task.encoder != "segments":
            for field, value, allowed in (("anchor", task.anchor, ("last_value", "none", AUTO)),
                                          ("segment_length", task.segment_length, (None,)),
                                          ("linear_skip", task.linear_skip, (False,))):
                if value not in allowed:
                    raise ConfigError(f"task.{field}: {value} needs task.encoder: segments")
            return
        if config.model.cell not in ("lstm", "gru"):
            raise ConfigError(f"model.cell: the segments encoder runs an lstm or gru, not {config.model.cell}")
        default = self.section_default(config, "model")
        for field in _STEPS_ONLY_MODEL_FIELDS:
            given = getattr(config.model, field)
            if given != getattr(default, field):
                raise ConfigError(f"model.{field}: {given!r} does nothing for the segments encoder (one model.cell "
                                  f"of model.units over segments, model.dropout); remove it (default "
                                  f"{getattr(default, field)!r}) or use task.encoder: steps")
        if task.calendar_features is True:
            raise ConfigError("task.calendar_features: the segments encoder forecasts each series from its own "
                              "past only; set it false (or use task.encoder: steps)")
        if task.segment_length and task.lookback != AUTO and task.segment_length > task.lookback:
            raise ConfigError(f"task.segment_length: {task.segment_length} is longer than task.lookback "
                              f"{task.lookback}")

    def resolve_data_defaults(self, config, train_files, report) -> dict:
        """The task's `auto` fields (lookback, encoder, anchor, calendar features) as the ingest
        resolved them on the train series (`series.resolve_auto`; its windows have that lookback)."""
        details = report["details"]
        values = {f"task.{field}": value for field, value in details["task"].items()
                  if getattr(config.task, field) == AUTO}
        if not values:
            return {"values": {}, "measured": {}}
        return {"values": values, "measured": {"frequency_seconds": details["frequency_seconds"],
                                               "train_rows": details["splits"]["train"]["rows"]}}

    def unbounded_features(self, config) -> list[str]:
        return list(RESERVED_NAMES)

    def eval_config(self, config, report: InputReport | None):
        import tensorflow_model_analysis as tfma

        from rnnflow.components.forecasting.metrics import metric_configs

        evaluation = config.evaluation
        skill_threshold = blessing_threshold(evaluation.min_skill, evaluation.max_regression)
        # Compiling (no report): the skill metrics need the data's targets and season.
        skill = metric_configs(config, report, skill_threshold) if report else []
        return tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(signature_name=EVAL_SIGNATURE, prediction_key=FORECAST)],
            slicing_specs=[tfma.SlicingSpec()],
            metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount"), *skill])])

    def after_evaluation(self, config, *, examples, model, blessing) -> list:
        from rnnflow.components.forecasting.report import ForecastReport

        return [ForecastReport(examples=examples, model=model, blessing=blessing)]

    def plot(self, summary):
        """The test-split forecast plot ForecastReport drew (it writes it in its own output)."""
        import matplotlib.pyplot as plt

        if not summary.get("plot"):
            return None
        figure, axes = plt.subplots(figsize=(10, 4))
        axes.imshow(plt.imread(summary["plot"]))
        axes.axis("off")
        return figure

    def summarize(self, summary, outputs) -> None:
        from rnnflow.components.forecasting.report import read_report

        report_outputs = outputs.get("ForecastReport", {}).get("report")
        if report_outputs:
            summary.update(read_report(report_outputs[0].uri))


TASK = ForecastingTask()
