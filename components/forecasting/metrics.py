"""Forecast errors in original units, with four baselines computed on the same windows.

`ErrorSums` is plain numpy, used by the TFMA metrics below (eval split, blessing)
and by `ForecastReport` (test split). The TFMA metrics read the raw lookback
window, the window's end time and the future values from the examples' features, so the
labels are exactly the raw series values.

The baselines (`Baselines`, built from the model's facts by `baselines_from`):
- persistence: f = the last lookback value;
- seasonal naive: f(t+h) = y(t+h - s*ceil(h/s)) (season s <= lookback);
- linear (NLinear, Zeng et al. 2023): f = last + (x - last) W, one [lookback, horizon] map
  shared by the target channels, fitted by ridge least squares on the train windows in
  train-standardized units by the Trainer (`fit_linear`); it is scale and shift invariant per
  channel, so the same W applies in original units;
- climatology: the train mean of each target at each seasonal position (hour of day for
  hourly data; day of year for daily data with two years of train rows, else day of week),
  from the ExampleGen's train rows (`climatology`).

Definitions (averaged over targets and horizon steps; `_h<k>` is step k only):
- mae = mean |y - f|, rmse = sqrt(mean (y - f)^2),
- smape = 100 * mean 2|y - f| / (|y| + |f|) (0 where both are 0),
- skill = 1 - mae / (the lowest baseline mae): > 0 only when the model beats every baseline;
  skill_over_persistence = 1 - mae / baseline_persistence_mae.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from rnnflow.components.evaluation import task_metrics
from rnnflow.components.forecasting.baselines import BASELINES, PERSISTENCE, Baselines, read_linear
from rnnflow.components.forecasting.schema import WINDOW_END_TIME, future_feature

SKILL = "skill"
SKILL_OVER_PERSISTENCE = "skill_over_persistence"
BEST_BASELINE_MAE = "best_baseline_mae"
ERRORS = ("mae", "rmse", "smape")


class ErrorSums:
    """Running sums of absolute, squared and symmetric-percentage errors per horizon
    step and target, for one forecaster."""

    def __init__(self, horizon: int, targets: int):
        self.abs = np.zeros((horizon, targets))
        self.squared = np.zeros((horizon, targets))
        self.smape = np.zeros((horizon, targets))
        self.count = 0

    def add(self, actual: np.ndarray, forecast: np.ndarray) -> None:
        """actual, forecast: [horizon, targets] or [batch, horizon, targets]."""
        actual, forecast = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
        if actual.ndim == 2:
            actual, forecast = actual[None], forecast[None]
        error = np.abs(actual - forecast)
        denominator = np.abs(actual) + np.abs(forecast)
        self.abs += error.sum(axis=0)
        self.squared += (error ** 2).sum(axis=0)
        self.smape += np.divide(2 * error, denominator, out=np.zeros_like(error), where=denominator > 0).sum(axis=0)
        self.count += len(actual)

    def merge(self, other: "ErrorSums") -> "ErrorSums":
        self.abs += other.abs
        self.squared += other.squared
        self.smape += other.smape
        self.count += other.count
        return self

    def metrics(self, prefix: str = "", per_step: bool = False) -> dict[str, float]:
        if not self.count:
            return {}
        n = self.count
        result = {f"{prefix}mae": self.abs.mean() / n, f"{prefix}rmse": math.sqrt(self.squared.mean() / n),
                  f"{prefix}smape": 100 * self.smape.mean() / n}
        if per_step:
            for step in range(self.abs.shape[0]):
                result[f"{prefix}mae_h{step + 1}"] = self.abs[step].mean() / n
                result[f"{prefix}rmse_h{step + 1}"] = math.sqrt(self.squared[step].mean() / n)
                result[f"{prefix}smape_h{step + 1}"] = 100 * self.smape[step].mean() / n
        return {k: float(v) for k, v in result.items()}


class ForecastAccumulator:
    """The model's and every available baseline's error sums over the same windows."""

    def __init__(self, horizon: int, targets: int, baselines: Baselines | None = None):
        self.horizon, self.baselines = horizon, baselines or Baselines()
        self.model = ErrorSums(horizon, targets)
        self.errors = {name: ErrorSums(horizon, targets) for name in BASELINES}

    def add(self, history: np.ndarray, actual: np.ndarray, forecast: np.ndarray, end_time: int | None = None) -> None:
        """One window: history [lookback, targets], actual and forecast [horizon, targets];
        `end_time`: the window's last lookback time in seconds (for the climatology)."""
        self.model.add(actual, forecast)
        for name, baseline in self.baselines.forecasts(history, self.horizon, end_time).items():
            if baseline is not None:
                self.errors[name].add(actual, baseline)

    def merge(self, other: "ForecastAccumulator") -> "ForecastAccumulator":
        self.model.merge(other.model)
        for name, errors in self.errors.items():
            errors.merge(other.errors[name])
        return self

    def metrics(self) -> dict[str, float | None]:
        result: dict[str, Any] = self.model.metrics(per_step=True)
        for name, errors in self.errors.items():
            result.update(errors.metrics(f"{name}_") or {f"{name}_{m}": None for m in ERRORS})
        baseline_maes = [result[f"{name}_mae"] for name in BASELINES if result[f"{name}_mae"] is not None]
        result[BEST_BASELINE_MAE] = min(baseline_maes) if baseline_maes else None
        result[SKILL] = _skill(result.get("mae"), result[BEST_BASELINE_MAE])
        result[SKILL_OVER_PERSISTENCE] = _skill(result.get("mae"), result[f"{PERSISTENCE}_mae"])
        return result


def _skill(mae: float | None, baseline_mae: float | None) -> float | None:
    if mae is None or baseline_mae is None:
        return None
    if baseline_mae:
        return 1.0 - mae / baseline_mae
    # A perfectly predictable (constant) series: any error is worse than the baseline.
    return 0.0 if mae == 0 else -math.inf


def window_arrays(features: dict, targets: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw example features -> (history [lookback, targets], actual [horizon, targets])."""
    history = np.stack([np.asarray(features[t], np.float64).reshape(-1) for t in targets], axis=-1)
    actual = np.stack([np.asarray(features[future_feature(t)], np.float64).reshape(-1) for t in targets],
                      axis=-1)
    return history, actual


class WindowErrors(task_metrics.Scores):
    """`ForecastAccumulator` over the examples' raw lookback, end time and future features and the
    forecast. Its keyword arguments are JSON (TFMA's metric config): the linear map by the path
    of the Trainer's side file (`linear_baseline`), the climatology as `climatology()` gave it."""

    def __init__(self, targets=(), horizon: int = 1, season: int | None = None, linear_baseline: str | None = None,
                 climatology: dict | None = None):
        self.targets = list(targets)
        baselines = Baselines(season, _cached_linear(linear_baseline), climatology)
        self.accumulator = ForecastAccumulator(horizon, len(self.targets), baselines)

    @classmethod
    def features(cls, targets=(), climatology=None, **_) -> list[str]:
        return [*targets, *(future_feature(t) for t in targets), *([WINDOW_END_TIME] if climatology else [])]

    @classmethod
    def names(cls, horizon: int = 1, **_) -> list[str]:
        accumulator = ForecastAccumulator(horizon, 1)
        accumulator.add(np.zeros((1, 1)), np.ones((horizon, 1)), np.ones((horizon, 1)))
        return list(accumulator.metrics())

    def add(self, features: dict, prediction: np.ndarray) -> None:
        history, actual = window_arrays(features, self.targets)
        end_time = features.get(WINDOW_END_TIME)
        self.accumulator.add(history, actual, prediction.astype(np.float64).reshape(actual.shape),
                             None if end_time is None else int(np.asarray(end_time).reshape(-1)[0]))

    def merge(self, other: "WindowErrors") -> "WindowErrors":
        self.accumulator.merge(other.accumulator)
        return self

    def scores(self) -> dict[str, float | None]:
        return self.accumulator.metrics()


@functools.lru_cache(maxsize=4)
def _cached_linear(path: str | None) -> np.ndarray | None:
    """TFMA makes a `WindowErrors` per accumulator: the side file is read once per process."""
    return read_linear(path)


class ForecastScores(task_metrics.TaskMetric):
    SCORES = WindowErrors


def metric_configs(config, report, skill_threshold) -> list:
    """`skill` carries the blessing threshold; the errors (model and baselines) are reported beside it."""
    details = report.details
    return task_metrics.metric_configs(ForecastScores, SKILL, skill_threshold, "forecast_errors",
                                       targets=details["targets"], horizon=config.task.horizon,
                                       season=details["season"], linear_baseline=details.get("linear_baseline"),
                                       climatology=details.get("climatology"))
