"""Forecast errors in original units, with the persistence and seasonal-naive baselines
computed on the same windows.

`ErrorSums` is plain numpy, used by the TFMA metrics below (eval split, blessing)
and by `ForecastReport` (test split). The TFMA metrics read the raw lookback
window and future values from the examples' features, so the baselines need no
model and the labels are exactly the raw series values.

Definitions (averaged over targets and horizon steps; `_h<k>` is step k only):
- mae = mean |y - f|, rmse = sqrt(mean (y - f)^2),
- smape = 100 * mean 2|y - f| / (|y| + |f|) (0 where both are 0),
- persistence f = the last lookback value; seasonal naive f(t+h) = y(t+h - s*ceil(h/s)),
- skill = 1 - mae / baseline_persistence_mae (> 0: better than persistence).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnflow.components.evaluation import task_metrics
from rnnflow.components.forecasting.schema import future_feature

SKILL = "skill"
PERSISTENCE = "baseline_persistence"
SEASONAL_NAIVE = "baseline_seasonal_naive"


def persistence_forecast(history: np.ndarray, horizon: int) -> np.ndarray:
    """history [lookback, targets] -> [horizon, targets]: the last value repeated."""
    return np.repeat(history[-1:], horizon, axis=0)


def seasonal_naive_forecast(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """history [lookback, targets] -> [horizon, targets]: the value one season (or
    several, for steps beyond one season) before each forecast step."""
    lookback = len(history)
    steps = np.arange(1, horizon + 1)
    index = lookback - 1 + steps - season * np.ceil(steps / season).astype(int)
    return history[index]


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
    """Model, persistence and seasonal-naive error sums over the same windows."""

    def __init__(self, horizon: int, targets: int, season: int | None):
        self.horizon, self.season = horizon, season
        self.model = ErrorSums(horizon, targets)
        self.persistence = ErrorSums(horizon, targets)
        self.seasonal = ErrorSums(horizon, targets) if season else None

    def add(self, history: np.ndarray, actual: np.ndarray, forecast: np.ndarray) -> None:
        """One window: history [lookback, targets], actual and forecast [horizon, targets]."""
        self.model.add(actual, forecast)
        self.persistence.add(actual, persistence_forecast(history, self.horizon))
        if self.seasonal:
            self.seasonal.add(actual, seasonal_naive_forecast(history, self.horizon, self.season))

    def merge(self, other: "ForecastAccumulator") -> "ForecastAccumulator":
        self.model.merge(other.model)
        self.persistence.merge(other.persistence)
        if self.seasonal:
            self.seasonal.merge(other.seasonal)
        return self

    def metrics(self) -> dict[str, float | None]:
        result: dict[str, Any] = self.model.metrics(per_step=True)
        result.update(self.persistence.metrics(f"{PERSISTENCE}_"))
        if self.seasonal:
            result.update(self.seasonal.metrics(f"{SEASONAL_NAIVE}_"))
        else:
            result.update({f"{SEASONAL_NAIVE}_{m}": None for m in ("mae", "rmse", "smape")})
        persistence_mae = result.get(f"{PERSISTENCE}_mae")
        if persistence_mae:
            result[SKILL] = 1.0 - result["mae"] / persistence_mae
        elif result.get("mae") is not None:
            # A perfectly predictable (constant) series: any error is worse than persistence.
            result[SKILL] = 0.0 if result["mae"] == 0 else -math.inf
        return result


def window_arrays(features: dict, targets: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw example features -> (history [lookback, targets], actual [horizon, targets])."""
    history = np.stack([np.asarray(features[t], np.float64).reshape(-1) for t in targets], axis=-1)
    actual = np.stack([np.asarray(features[future_feature(t)], np.float64).reshape(-1) for t in targets],
                      axis=-1)
    return history, actual


class WindowErrors(task_metrics.Scores):
    """`ForecastAccumulator` over the examples' raw lookback and future features and the forecast."""

    def __init__(self, targets=(), horizon: int = 1, season: int | None = None):
        self.targets = list(targets)
        self.accumulator = ForecastAccumulator(horizon, len(self.targets), season)

    @classmethod
    def features(cls, targets=(), **_) -> list[str]:
        return [*targets, *(future_feature(t) for t in targets)]

    @classmethod
    def names(cls, horizon: int = 1, **_) -> list[str]:
        accumulator = ForecastAccumulator(horizon, 1, season=1)
        accumulator.add(np.zeros((1, 1)), np.ones((horizon, 1)), np.ones((horizon, 1)))
        return list(accumulator.metrics())

    def add(self, features: dict, prediction: np.ndarray) -> None:
        history, actual = window_arrays(features, self.targets)
        self.accumulator.add(history, actual, prediction.astype(np.float64).reshape(actual.shape))

    def merge(self, other: "WindowErrors") -> "WindowErrors":
        self.accumulator.merge(other.accumulator)
        return self

    def scores(self) -> dict[str, float | None]:
        return self.accumulator.metrics()


class ForecastScores(task_metrics.TaskMetric):
    SCORES = WindowErrors


def metric_configs(config, report, skill_threshold) -> list:
    """`skill` carries the blessing threshold; the errors (model and baselines) are reported beside it."""
    details = report.details
    return task_metrics.metric_configs(ForecastScores, SKILL, skill_threshold, "forecast_errors",
                                       targets=details["targets"], horizon=config.task.horizon,
                                       season=details["season"])
