"""The forecasting baselines every run scores beside the model, in plain numpy (a leaf: the
ingest fits the climatology, the Trainer the linear map, the TFMA metrics and the test report
forecast with them; see `metrics` for the definitions)."""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

PERSISTENCE = "baseline_persistence"
SEASONAL_NAIVE = "baseline_seasonal_naive"
LINEAR = "baseline_linear"
CLIMATOLOGY = "baseline_climatology"
BASELINES = (PERSISTENCE, SEASONAL_NAIVE, LINEAR, CLIMATOLOGY)


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


def linear_forecast(history: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """history [lookback, targets], weights [lookback, horizon] -> [horizon, targets]."""
    last = history[-1:]
    return last + weights.T @ (history - last)


YEAR_SECONDS = 31_556_952  # the mean Gregorian year


def climatology_period(frequency_seconds: int, season: int | None, train_rows: int) -> tuple[int, int] | None:
    """(period in seconds, positions) of the climatology: the day of year for daily data with
    at least two years of train rows, else one season of steps (hour of day for hourly data);
    None without a season."""
    if frequency_seconds == 86_400 and train_rows >= 730:
        return YEAR_SECONDS, 365
    if season is None or season < 2:
        return None
    return season * frequency_seconds, season


def _positions(times_seconds, period_seconds: int, positions: int) -> np.ndarray:
    times = np.asarray(times_seconds, np.int64)
    return (np.mod(times, period_seconds) * positions // period_seconds).astype(np.int64)


def climatology_forecast(end_time_seconds: int, horizon: int, climatology: dict) -> np.ndarray:
    """The train mean of each target at the seasonal position of each forecast step
    -> [horizon, targets] (`climatology` as `climatology()` returns it)."""
    means = np.asarray(climatology["means"], np.float64)
    times = int(end_time_seconds) + climatology["frequency_seconds"] * np.arange(1, horizon + 1)
    return means[_positions(times, climatology["period_seconds"], len(means))]


def climatology(times_seconds: np.ndarray, values: np.ndarray, *, period_seconds: int, positions: int,
                frequency_seconds: int) -> dict:
    """Train rows' times [rows] and target values [rows, targets] -> the mean per position of the
    period ({"means": [positions][targets], ...}); a position no train row has gets the overall mean."""
    position = _positions(times_seconds, period_seconds, positions)
    values = np.asarray(values, np.float64)
    means = np.tile(values.mean(axis=0), (positions, 1))
    for p in np.unique(position):
        means[p] = values[position == p].mean(axis=0)
    return {"period_seconds": int(period_seconds), "frequency_seconds": int(frequency_seconds),
            "means": means.tolist()}


def fit_linear(batches: Iterable[tuple[np.ndarray, np.ndarray]], ridge: float = 1e-3) -> np.ndarray | None:
    """(history [batch, lookback, targets], future [batch, horizon, targets]) batches of the
    train windows -> W [lookback, horizon] of `linear_forecast`, by the normal equations summed
    batch by batch (memory lookback^2, not windows x lookback), ridge-regularized relative to
    the mean diagonal. None without windows."""
    gram = cross = None
    for history, future in batches:
        history, future = np.asarray(history, np.float64), np.asarray(future, np.float64)
        last = history[:, -1:, :]
        # Each (window, target) pair is one row: channels share the weights.
        inputs = np.moveaxis(history - last, 2, 1).reshape(-1, history.shape[1])
        outputs = np.moveaxis(future - last, 2, 1).reshape(-1, future.shape[1])
        gram = inputs.T @ inputs if gram is None else gram + inputs.T @ inputs
        cross = inputs.T @ outputs if cross is None else cross + inputs.T @ outputs
    if gram is None:
        return None
    penalty = ridge * max(np.trace(gram) / len(gram), 1e-12)
    return np.linalg.solve(gram + penalty * np.eye(len(gram)), cross)


@dataclasses.dataclass
class Baselines:
    """What the baselines need beyond a window: the season (seasonal naive, None: absent), the
    linear map (None: absent) and the climatology (None: absent)."""
    season: int | None = None
    linear: np.ndarray | None = None
    climatology: dict | None = None

    def forecasts(self, history: np.ndarray, horizon: int, end_time: int | None) -> dict[str, np.ndarray | None]:
        return {
            PERSISTENCE: persistence_forecast(history, horizon),
            SEASONAL_NAIVE: seasonal_naive_forecast(history, horizon, self.season) if self.season else None,
            LINEAR: linear_forecast(history, self.linear) if self.linear is not None else None,
            CLIMATOLOGY: (climatology_forecast(end_time, horizon, self.climatology)
                          if self.climatology is not None and end_time is not None else None),
        }


def baselines_from(details: dict) -> Baselines:
    """The baselines of a model's facts (its input report details)."""
    return Baselines(season=details.get("season"), linear=read_linear(details.get("linear_baseline")),
                     climatology=details.get("climatology"))


def read_linear(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        return np.load(f)


def write_linear(path: str, weights: np.ndarray) -> None:
    """W as .npy at `path`, whole or not at all."""
    import io

    import tensorflow as tf

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(weights, np.float32))
    with tf.io.gfile.GFile(f"{path}.partial", "wb") as f:
        f.write(buffer.getvalue())
    tf.io.gfile.rename(f"{path}.partial", path, overwrite=True)
