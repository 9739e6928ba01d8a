"""Transform's preprocessing_fn for forecasting: z-scores and calendar features in the graph.

The statistics come from the train split only (Transform analyzes "train") and
from each train row exactly once: overlapping windows repeat rows, so every
window contributes only the leading lookback rows it owns (`train_rows_owned`).
A constant column gets scale 1, so it stays finite and forecasts stay constant.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_transform as tft

from rnnflow.components.forecasting.schema import (
    OWNED_ROWS, TARGET, TARGET_MEAN, TARGET_STD, WINDOW, WINDOW_END_TIME, future_feature)
from rnnflow.pipeline.config import parse_config

_DAY = 86400
_WEEK = 7 * _DAY
_YEAR = 31_556_952  # mean Gregorian year in seconds
# 1970-01-01 was a Thursday: shift so that weeks start on Monday.
_WEEK_OFFSET = 3 * _DAY


def calendar_periods(frequency_seconds: int) -> list[tuple[str, int, int]]:
    """(name, period, offset) of the calendar cycles a series at this step can resolve."""
    periods = [("hour_of_day", _DAY, 0), ("day_of_week", _WEEK, _WEEK_OFFSET), ("day_of_year", _YEAR, 0)]
    return [p for p in periods if frequency_seconds < p[1]]


def input_width(details: dict, calendar_features: bool) -> int:
    """Features per lookback step of Transform's `window` output."""
    calendar = 2 * len(calendar_periods(details["frequency_seconds"])) if calendar_features else 0
    return len(details["columns"]) + calendar


def preprocessing_fn(inputs, custom_config):
    """Raw windows -> {window [lookback, width], target [horizon, targets], target_mean/std [targets]}."""
    details = custom_config["input"]["details"]
    task = parse_config(custom_config["config"]).task
    lookback, horizon = task.lookback, task.horizon
    owned = tf.reshape(inputs[OWNED_ROWS], [-1])

    mean, std, steps = {}, {}, []
    for column in details["columns"]:
        values = _dense(inputs[column], lookback)
        mean[column], std[column] = train_statistics(values, owned)
        steps.append((values - mean[column]) / std[column])
    if task.calendar_features:
        end_time = tf.reshape(inputs[WINDOW_END_TIME], [-1])
        steps += calendar_features(end_time, lookback, details["frequency_seconds"])
    window = tf.stack(steps, axis=-1)
    window.set_shape([None, lookback, input_width(details, task.calendar_features)])

    ones = tf.ones_like(window[:, 0, :1])  # [batch, 1]
    targets = details["targets"]
    target = tf.stack([(_dense(inputs[future_feature(t)], horizon) - mean[t]) / std[t] for t in targets],
                      axis=-1)
    target.set_shape([None, horizon, len(targets)])
    # Serving feeds only the lookback inputs; TFT prunes the outputs that need the rest.
    return {
        WINDOW: window,
        TARGET: target,
        TARGET_MEAN: tf.concat([ones * mean[t] for t in targets], axis=1),
        TARGET_STD: tf.concat([ones * std[t] for t in targets], axis=1),
    }


def train_statistics(values: tf.Tensor, owned: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and population std over the rows each window owns; std 1 for a constant column."""
    rows = tf.RaggedTensor.from_tensor(values, lengths=tf.cast(owned, tf.int64))
    mean = tft.mean(rows)
    std = tf.sqrt(tft.var(rows))
    usable = std > 1e-6 * tf.maximum(tf.abs(mean), 1.0)
    return mean, tf.where(usable, std, tf.ones_like(std))


def calendar_features(end_time: tf.Tensor, lookback: int, frequency_seconds: int) -> list[tf.Tensor]:
    """sin/cos of each calendar cycle at every lookback step: [batch, lookback] each."""
    offsets = tf.range(lookback - 1, -1, -1, dtype=tf.int64) * frequency_seconds
    times = end_time[:, None] - offsets[None, :]
    features = []
    for _, period, shift in calendar_periods(frequency_seconds):
        phase = tf.cast(tf.math.floormod(times + shift, period), tf.float64) * (2 * math.pi / period)
        features += [tf.cast(tf.sin(phase), tf.float32), tf.cast(tf.cos(phase), tf.float32)]
    return features


def _dense(values, width: int) -> tf.Tensor:
    """[batch, width] float32 from a FixedLen or (if the schema says VarLen) sparse feature."""
    if isinstance(values, tf.SparseTensor):
        values = tf.sparse.to_dense(values)
    values = tf.cast(values, tf.float32)
    values.set_shape([None, width])
    return values
