"""The windowed tf.Example of forecasting, for every reader and writer of it (as the TFX taxi
template's features module): `TimeSeriesExampleGen` writes it (`window_example`), the export's
tf.Example signature and the test report parse it (`window_feature_spec`).

For a window starting at row s:
- `<column>`: float [lookback], rows s .. s+lookback-1, for every feature column;
- `<target>__future`: float [horizon], the next `horizon` rows of each target column;
- `window_end_time`: int64, seconds since the epoch (UTC) of row s+lookback-1;
- `train_rows_owned`: int64, how many leading lookback rows count in the train statistics.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from rnnflow.components.forecasting.schema import OWNED_ROWS, WINDOW_END_TIME, future_feature


def window_feature_spec(columns: Sequence[str], lookback: int, *, end_time: bool = True,
                        targets: Sequence[str] = (), horizon: int = 0,
                        owned: bool = False) -> dict[str, tf.io.FixedLenFeature]:
    """The parse spec of the features a reader needs: the lookback columns, and optionally the
    window's end time, the targets' future values and the owned-rows count."""
    spec = {column: tf.io.FixedLenFeature([lookback], tf.float32) for column in columns}
    spec.update({future_feature(t): tf.io.FixedLenFeature([horizon], tf.float32) for t in targets})
    if end_time:
        spec[WINDOW_END_TIME] = tf.io.FixedLenFeature([], tf.int64)
    if owned:
        spec[OWNED_ROWS] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def window_example(lookback_values: dict[str, np.ndarray], future_values: dict[str, np.ndarray],
                   end_time_seconds: int, owned_rows: int) -> tf.train.Example:
    """One window: every column's lookback values, every target's future values."""
    features = {column: _floats(values) for column, values in lookback_values.items()}
    features.update({future_feature(target): _floats(values) for target, values in future_values.items()})
    features[WINDOW_END_TIME] = _ints([end_time_seconds])
    features[OWNED_ROWS] = _ints([owned_rows])
    return tf.train.Example(features=tf.train.Features(feature=features))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
