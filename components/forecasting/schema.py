"""The forecasting task's schema: the names of its windowed examples' features, of Transform's
outputs and of its signatures, its splits, its config sections and the checks on column names
and steps that every reader, writer, export and metric of the task shares. A leaf: it imports
nothing else of its package.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal, Optional

import pandas as pd

from rnnflow.components.common.run_facts import SERVING_EXAMPLES_SIGNATURE
from rnnflow.pipeline.config import AUTO, Auto, ConfigError, CsvFields, constraint

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
EVAL_SIGNATURE = SERVING_EXAMPLES_SIGNATURE  # forecasts are evaluated as served
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
class SeriesDataConfig(CsvFields):  # path, rolling_spans; CSV only: encoding, delimiter, quote_char
    format: Literal["csv", "parquet"] = "csv"
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


@dataclasses.dataclass(frozen=True)
class ForecastingConfig:
    type: Literal["forecasting"]
    # Steps of history per window; auto: from the series' frequency and length (`auto_lookback`):
    # about 30 days of steps, at least 4 seasons and 2 horizons, at most 720 steps and a quarter
    # of the train rows (hourly data: 720; daily: 30).
    lookback: int | Auto = constraint(AUTO, min=1, max=10_000)
    horizon: int = constraint(7, min=1, max=10_000)
    # Steps between consecutive window starts (train, eval and test alike).
    stride: int = constraint(1, min=1)
    loss: Literal["mae", "mse", "huber"] = "mae"
    # last_value: inputs and forecasts relative to each series' last observed value
    # (robust to level shifts between train and test); revin (segments encoder): each window
    # standardized by its own mean and std per series, with a learnt affine map, and the
    # forecast mapped back (RevIN); none: absolute (normalized) values.
    # auto: revin with the segments encoder, last_value with steps.
    anchor: Literal["last_value", "revin", "none", "auto"] = dataclasses.field(default=AUTO, metadata={"auto": True})
    # sin/cos of hour of day, day of week and day of year of every lookback step (those
    # finer than the series' frequency are left out).
    # auto: on with the steps encoder, off with segments (which reads each series' own past only).
    calendar_features: bool | Auto = dataclasses.field(default=AUTO, metadata={"auto": True})
    # steps: the recurrent stack (model.*) over every lookback step, all columns together, and a
    # dense head for all horizon steps. segments: SegRNN (rnnflow/models/segment_forecaster.py):
    # each target series alone with shared weights (channel independence), the lookback cut
    # into segments, one LSTM/GRU (model.cell, model.units) over segments, every output segment
    # decoded in parallel from position and channel embeddings; it reads the targets' own
    # history only (no covariates, no calendar features).
    # auto: segments when the lookback has at least SEGMENTS_MIN_LOOKBACK (96) steps, else steps:
    # a recurrence over hundreds of steps is slow and forgets, over segments it is short; on
    # short lookbacks the steps encoder also reads the covariates and calendar.
    encoder: Literal["steps", "segments", "auto"] = dataclasses.field(default=AUTO, metadata={"auto": True})
    # The segments encoder's segment length (at most lookback; a lookback it does not divide is
    # padded in front); unset: the largest divisor of lookback up to 48 leaving two segments.
    segment_length: Optional[int] = constraint(None, min=1)
    # Segments encoder: add a linear path (the last value plus a linear map of the lookback,
    # shared by the series, started at the least-squares map of the train windows: the linear
    # baseline) to the recurrent forecast, whose head starts at zero, so training starts from the
    # linear model. Off by default: on ETTh1 (benchmarks/forecast_ett.py, README) the recurrence
    # trained on top of it made the test MSE worse than the linear map from the first epoch.
    linear_skip: bool = False
    # The forecast served (and evaluated, tested, blessed) is the mean of the trained model's and
    # the linear baseline's (the map fitted on the train windows): a forecast combination. The
    # model trains alone; averaging two forecasts whose errors differ beats both when they are
    # about as good. auto: on with the segments encoder (which reads what the linear map reads:
    # the targets' own long history; on ETTh1 the mean beat the model alone at every horizon and
    # the linear map at all but two, where it tied it; README "Benchmarks"), off with steps (which also reads covariates and the calendar, and the
    # linear map is far behind it: on the daily weather series the mean lost on the test split).
    linear_combination: bool | Auto = dataclasses.field(default=AUTO, metadata={"auto": True})


@dataclasses.dataclass(frozen=True)
class ForecastEvaluationConfig:
    """Blessing: skill = 1 - MAE / (the best baseline's MAE) on the eval split must reach
    `min_skill`, and must not drop by more than `max_regression` below the last blessed model's
    skill. The baselines (persistence, seasonal naive, the linear map fitted on the train
    windows, the train climatology) are scored on the same windows; with the default 0 a model
    that loses to any of them is never blessed."""
    min_skill: float = constraint(0.0, min=-1.0, max=1.0)
    max_regression: float = constraint(0.02, min=0.0, max=1.0)
    # Season length in steps for the seasonal-naive baseline; inferred from the frequency
    # (24 hourly, 7 daily, ...). The baseline needs season <= lookback.
    season: Optional[int] = constraint(None, min=1)


# Seasons inferred from the step length in seconds: daily cycle for sub-daily series,
# weekly for daily, yearly for weekly.
_SEASONS = {60 * 15: 96, 60 * 30: 48, 3600: 24, 86400: 7, 7 * 86400: 52}


# `task.lookback: auto`: about 30 days of history, between 4 seasons / 2 horizons and the caps.
AUTO_LOOKBACK_DAYS = 30
AUTO_LOOKBACK_MAX = 720
AUTO_LOOKBACK_TRAIN_SHARE = 4  # at most train rows / 4: the train split keeps most of its windows


SEGMENTS_MIN_LOOKBACK = 96
AUTO_TASK_FIELDS = ("lookback", "encoder", "anchor", "calendar_features", "linear_combination")


def auto_task_fields(task: "ForecastingConfig", frequency_seconds: int, train_rows: int) -> dict:
    """The `auto` fields of `task` resolved for a series (dotted field -> value), in order: the
    lookback (`auto_lookback`), then the encoder from the lookback, then the anchor, calendar
    features and linear combination from the encoder (and `task.linear_skip`, which needs
    segments, is checked)."""
    values: dict = {}
    lookback = task.lookback
    if lookback == AUTO:
        lookback = values["task.lookback"] = auto_lookback(frequency_seconds, train_rows, task.horizon)[0]
    encoder = task.encoder
    if encoder == AUTO:
        encoder = values["task.encoder"] = "segments" if lookback >= SEGMENTS_MIN_LOOKBACK else "steps"
    if task.anchor == AUTO:
        values["task.anchor"] = "revin" if encoder == "segments" else "last_value"
    if task.calendar_features == AUTO:
        values["task.calendar_features"] = encoder == "steps"
    if task.linear_combination == AUTO:
        values["task.linear_combination"] = encoder == "segments"
    if task.linear_skip and encoder != "segments":
        raise ConfigError(f"task.linear_skip: true needs task.encoder: segments (the lookback of {lookback} "
                          f"steps gives the {encoder} encoder)")
    return values


def auto_lookback(frequency_seconds: int, train_rows: int, horizon: int) -> tuple[int, str]:
    """(lookback, how it was chosen) for `task.lookback: auto`. Long lookbacks are what the
    linear and segment-recurrent forecasters exploit on hourly data (336-720 steps in the
    literature); the caps keep enough train windows on short series."""
    season = _SEASONS.get(frequency_seconds, 1)
    wanted = max(AUTO_LOOKBACK_DAYS * 86400 // max(frequency_seconds, 1), 4 * season, 2 * horizon)
    cap = min(AUTO_LOOKBACK_MAX, train_rows // AUTO_LOOKBACK_TRAIN_SHARE)
    lookback = max(1, min(wanted, cap))
    reason = (f"{AUTO_LOOKBACK_DAYS} days, 4 seasons of {season} or 2 horizons, whichever is longest ({wanted} "
              f"steps), capped at {AUTO_LOOKBACK_MAX} and at train rows / {AUTO_LOOKBACK_TRAIN_SHARE} "
              f"({train_rows // AUTO_LOOKBACK_TRAIN_SHARE})")
    return lookback, reason


def season_steps(config, frequency_seconds: int) -> int | None:
    return config.evaluation.season or _SEASONS.get(frequency_seconds)


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


def parse_timestamp(text: str, path: str) -> pd.Timestamp:
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
