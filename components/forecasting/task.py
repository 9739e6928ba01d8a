"""Time-series forecasting (weather, load, prices): a lookback window in, the next
`horizon` steps of the target columns out, multi-horizon direct.

The series becomes windowed tf.Examples in `TimeSeriesExampleGen` (chronological
train/eval/test split, no window across a boundary); Transform z-scores with
train-only statistics; the Evaluator blesses a model only when it beats the
persistence forecast by a margin; `ForecastReport` evaluates the test split once.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal, Optional

import pandas as pd

from rnnflow.components.csv_input import check_options
from rnnflow.components.tasks.base import InputReport, Task, blessing_threshold
from rnnflow.pipeline.config import ConfigError, constraint

# Feature names of the windowed examples and of Transform's outputs, named once here.
WINDOW_END_TIME = "window_end_time"  # int64 seconds since the epoch (UTC) of the last lookback step
OWNED_ROWS = "train_rows_owned"  # leading lookback rows counted once in the normalization statistics
FUTURE_SUFFIX = "__future"  # "<target>__future": the next `horizon` values of a target column
WINDOW = "window"  # Transform: [lookback, features (+ calendar)] normalized inputs
TARGET = "target"  # Transform: [horizon, targets] normalized targets
TARGET_MEAN = "target_mean"  # Transform: [targets] train mean per target, to undo normalization
TARGET_STD = "target_std"  # Transform: [targets] train std per target
FORECAST = "forecast"  # serving output: [horizon, targets] in original units
SPLITS = ("train", "eval", "test")
EVAL_SIGNATURE = "serving_examples"
RESERVED_NAMES = (WINDOW_END_TIME, OWNED_ROWS)
# TF Serving input names (TensorSpec names) must match this.
_TENSOR_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")


def future_feature(target: str) -> str:
    return f"{target}{FUTURE_SUFFIX}"


@dataclasses.dataclass(frozen=True)
class TimeSplitConfig:
    """Chronological split: by fractions of the rows, or by start dates of eval and test."""
    train_fraction: float = constraint(0.7, min=0.0, max=1.0, min_exclusive=True)
    eval_fraction: float = constraint(0.15, min=0.0, max=1.0, min_exclusive=True)
    # ISO dates/times; when set they replace the fractions (both or neither).
    eval_start: Optional[str] = None
    test_start: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SeriesDataConfig:
    path: str
    format: Literal["csv", "parquet"] = "csv"
    # CSV only: the file's text encoding (ASCII-compatible: utf-8, latin-1, cp1252, ...) and
    # field delimiter.
    encoding: str = "utf-8"
    delimiter: str = ","
    time_column: str = "date"
    # Empty: every numeric column. Target columns are always used as features too.
    feature_columns: tuple[str, ...] = ()
    target_columns: tuple[str, ...] = ()
    # A fixed step such as "1h", "15min", "1D"; inferred (most common step) when absent.
    frequency: Optional[str] = None
    # Non-numeric or missing cells, and gaps in the time grid: fail naming the rows, fill
    # forward, interpolate in time, or drop (rows; windows then never span a gap).
    # Duplicate timestamps fail, or keep their first row under any other policy.
    on_bad_rows: Literal["fail", "ffill", "interpolate", "drop"] = "fail"
    split: TimeSplitConfig = dataclasses.field(default_factory=TimeSplitConfig)
    # With a {SPAN} or date spec in `path`: train on the latest this many spans (each run
    # ingests and validates the newest one).
    rolling_spans: int = constraint(1, min=1)


@dataclasses.dataclass(frozen=True)
class ForecastingConfig:
    type: Literal["forecasting"]
    lookback: int = constraint(28, min=1, max=10_000)
    horizon: int = constraint(7, min=1, max=10_000)
    # Steps between consecutive window starts (train, eval and test alike).
    stride: int = constraint(1, min=1)
    loss: Literal["mae", "mse", "huber"] = "mae"
    # last_value: inputs and forecasts relative to each series' last observed value
    # (robust to level shifts between train and test); none: absolute (normalized) values.
    anchor: Literal["last_value", "none"] = "last_value"
    # sin/cos of hour of day, day of week and day of year of every lookback step (those
    # finer than the series' frequency are left out).
    calendar_features: bool = False


@dataclasses.dataclass(frozen=True)
class ForecastEvaluationConfig:
    """Blessing: skill = 1 - MAE / persistence MAE on the eval split must reach
    `min_skill`, and must not drop by more than `max_regression` below the last
    blessed model's skill."""
    min_skill: float = constraint(0.05, min=-1.0, max=1.0)
    max_regression: float = constraint(0.02, min=0.0, max=1.0)
    # Season length in steps for the seasonal-naive baseline; inferred from the frequency
    # (24 hourly, 7 daily, ...). The baseline needs season <= lookback.
    season: Optional[int] = constraint(None, min=1)


# Seasons inferred from the step length in seconds: daily cycle for sub-daily series,
# weekly for daily, yearly for weekly.
_SEASONS = {60 * 15: 96, 60 * 30: 48, 3600: 24, 86400: 7, 7 * 86400: 52}


def season_steps(config, frequency_seconds: int) -> int | None:
    return config.evaluation.season or _SEASONS.get(frequency_seconds)


class ForecastingTask(Task):
    name = "forecasting"
    task_config_cls = ForecastingConfig
    data_config_cls = SeriesDataConfig
    spans_form_one_series = True
    evaluation_config_cls = ForecastEvaluationConfig
    splits = SPLITS
    preprocessing_fn = "rnnflow.components.forecasting.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.forecasting.trainer.run_fn"
    tuner_fn = "rnnflow.components.forecasting.trainer.tuner_fn"
    examples_signature = EVAL_SIGNATURE

    def headline_metrics(self, metrics: dict) -> dict:
        """Overall metrics; per-horizon-step ones ("mae_h3") stay in run_summary.json."""
        return {k: v for k, v in metrics.items() if not re.search(r"_h\d+$", k)}

    def validate_config(self, config) -> None:
        data, split = config.data, config.data.split
        problem = check_options(data.encoding, data.delimiter)
        if problem:
            raise ConfigError(problem)
        if not data.target_columns:
            raise ConfigError("data.target_columns: name at least one column to forecast, e.g. [OT]")
        for field in ("feature_columns", "target_columns"):
            columns = getattr(data, field)
            if len(set(columns)) != len(columns):
                raise ConfigError(f"data.{field}: duplicate columns {list(columns)}")
            for column in columns:
                if column == data.time_column:
                    raise ConfigError(f"data.{field}: '{column}' is the time column")
        if (split.eval_start is None) != (split.test_start is None):
            raise ConfigError("data.split: set both eval_start and test_start, or neither")
        if split.eval_start is not None:
            eval_start, test_start = (_timestamp(getattr(split, f), f"data.split.{f}")
                                      for f in ("eval_start", "test_start"))
            if eval_start >= test_start:
                raise ConfigError(f"data.split: eval_start {split.eval_start} must be before "
                                  f"test_start {split.test_start}")
        elif split.train_fraction + split.eval_fraction >= 1.0:
            raise ConfigError(f"data.split: train_fraction + eval_fraction = "
                              f"{split.train_fraction + split.eval_fraction:g} leaves no test split")
        if data.frequency is not None:
            frequency_seconds(data.frequency)
        if config.tuning.objective != "val_loss":
            raise ConfigError("tuning.objective: forecasting tunes on val_loss")

    def preflight(self, config) -> InputReport:
        from rnnflow.components.forecasting import series

        return series.preflight(config)

    def example_gen(self, config, data_path: str):
        from rnnflow.components.forecasting.windowing import time_series_example_gen
        from rnnflow.components.tasks.base import split_input_path

        return time_series_example_gen(config, *split_input_path(data_path))

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


def frequency_seconds(frequency: str) -> int:
    """"1h" -> 3600; a ConfigError for calendar-length steps (months) or nonsense."""
    try:
        step = pd.Timedelta(frequency)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"data.frequency: '{frequency}' is not a fixed step such as 1h, 15min or 1D "
                          "(month or year steps vary in length and are not supported)") from e
    if step.total_seconds() < 1 or step.total_seconds() != int(step.total_seconds()):
        raise ConfigError(f"data.frequency: '{frequency}' must be a whole number of seconds, at least 1s")
    return int(step.total_seconds())


def _timestamp(text: str, path: str) -> pd.Timestamp:
    try:
        return as_naive_utc(pd.Timestamp(text))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: '{text}' is not a date/time such as 2017-07-01") from e


def as_naive_utc(timestamp: pd.Timestamp) -> pd.Timestamp:
    """Times are compared in UTC; naive times are taken as UTC."""
    return timestamp.tz_convert("UTC").tz_localize(None) if timestamp.tzinfo else timestamp


def check_column_name(column: str) -> str | None:
    """Why a column cannot be a serving input name, or None."""
    if column in RESERVED_NAMES or column.endswith(FUTURE_SUFFIX):
        return f"'{column}' is a name rnnflow reserves for windowed examples"
    if not _TENSOR_NAME.match(column):
        return (f"'{column}' cannot name a TF Serving input (letters, digits and _ . - / only, "
                "not starting with _ - /); rename the column")
    return None


TASK = ForecastingTask()
