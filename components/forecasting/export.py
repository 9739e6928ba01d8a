"""The serving SavedModel: raw lookback windows in, forecasts in original units out.

Signatures:
- `serving_default`: one float32 [batch, lookback] input per feature column, named
  after it (plus `window_end_time` int64 [batch], seconds since the epoch UTC of the
  last lookback step, when calendar features are on) -> `forecast` float32
  [batch, horizon, targets] in the targets' original units.
- `serving_examples`: `examples` serialized tf.Example [batch] with the same
  features -> the same output (TFMA evaluates through it).

Inputs are checked in the graph, so TF Serving clients get the same errors: an
input with another number of steps than the lookback, inputs with different batch
sizes, and NaN or infinite values are errors naming the input (and the row and step
of the first bad value), never a forecast. The signature's inputs take any shape
(TF Serving does not enforce declared shapes, and Grappler would take them as
facts and drop the checks); the checks say what each input must be.

Normalization is Transform's graph (train-split statistics); the model predicts
z-scores, undone here with the same statistics.
"""

from __future__ import annotations


import numpy as np
import tensorflow as tf

from rnnflow.components.forecasting.schema import (
    EVAL_SIGNATURE, FORECAST, TARGET_MEAN, TARGET_STD, WINDOW, WINDOW_END_TIME)
from rnnflow.components.forecasting.features import window_feature_spec
from rnnflow.components.common.run_facts import EXAMPLES_INPUT
from rnnflow.components.training.trainer import save_serving_model



class ForecastServingModule(tf.Module):
    def __init__(self, model, tf_transform_output, *, columns: list[str], lookback: int, calendar: bool):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.columns = columns
        self.lookback = lookback
        self.calendar = calendar

    def input_specs(self) -> dict[str, tf.TensorSpec]:
        # Any shape: declared shapes are not enforced by TF Serving, and Grappler would take
        # them as facts and skip the checks below.
        specs = {c: tf.TensorSpec(None, tf.float32, name=c) for c in self.columns}
        if self.calendar:
            specs[WINDOW_END_TIME] = tf.TensorSpec(None, tf.int64, name=WINDOW_END_TIME)
        return specs

    def declared_input_shapes(self) -> dict:
        """What serving_default's metadata tells clients: [batch, lookback] per column, [batch]
        window end times (declared in the SignatureDef only; see `declare_input_shapes`)."""
        shapes = {c: [None, self.lookback] for c in self.columns}
        if self.calendar:
            shapes[WINDOW_END_TIME] = [None]
        return {"serving_default": shapes}

    def checked(self, raw: dict) -> dict:
        """The inputs, once every one is [rows, lookback] (times: [rows]) and finite."""
        rows = tf.shape(raw[self.columns[0]])[0]
        checked = {}
        for name in self.columns:
            window = raw[name]
            rank_ok = tf.debugging.Assert(tf.equal(tf.rank(window), 2), [
                f"input `{name}` must be [batch, {self.lookback}] (one row of {self.lookback} values per "
                "window); got shape", tf.shape(window)])
            with tf.control_dependencies([rank_ok]):
                shape = tf.shape(window)
                finite = tf.math.is_finite(window)
                first_bad = tf.concat([tf.where(~finite), tf.zeros([1, 2], tf.int64)], axis=0)[0]
                checks = [
                    tf.debugging.Assert(tf.equal(shape[1], self.lookback), [tf.strings.format(
                        f"input `{name}` has {{}} steps; this model takes {self.lookback}", shape[1])]),
                    tf.debugging.Assert(tf.equal(shape[0], rows), [tf.strings.format(
                        f"input `{name}` has {{}} rows; input `{self.columns[0]}` has {{}}", (shape[0], rows))]),
                    tf.debugging.Assert(tf.reduce_all(finite), [tf.strings.format(
                        f"input `{name}` has a NaN or infinite value at row {{}}, step {{}} (0-based); "
                        "forecasts need finite inputs: fill or interpolate missing values before sending",
                        (first_bad[0], first_bad[1]))]),
                ]
            checked[name] = _after(checks, window, [None, self.lookback])
        if self.calendar:
            times = raw[WINDOW_END_TIME]
            rank_ok = tf.debugging.Assert(tf.equal(tf.rank(times), 1), [
                f"input `{WINDOW_END_TIME}` must be [batch] (one time per window); got shape", tf.shape(times)])
            with tf.control_dependencies([rank_ok]):
                rows_ok = tf.debugging.Assert(tf.equal(tf.shape(times)[0], rows), [tf.strings.format(
                    f"input `{WINDOW_END_TIME}` has {{}} rows; input `{self.columns[0]}` has {{}}",
                    (tf.shape(times)[0], rows))])
            checked[WINDOW_END_TIME] = _after([rows_ok], times, [None])
        return checked

    def forecast(self, raw: dict) -> dict:
        raw = self.checked(raw)
        if self.calendar:
            raw[WINDOW_END_TIME] = tf.reshape(raw[WINDOW_END_TIME], [-1, 1])
        transformed = self.tft_layer(raw)
        normalized = self.model({WINDOW: transformed[WINDOW]}, training=False)
        scale, location = transformed[TARGET_STD][:, None, :], transformed[TARGET_MEAN][:, None, :]
        return {FORECAST: normalized * scale + location}

    def signatures(self) -> dict:
        @tf.function(input_signature=[self.input_specs()])
        def serve(raw):
            return self.forecast(raw)

        parse_spec = window_feature_spec(self.columns, self.lookback, end_time=self.calendar)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def serve_examples(examples):
            return self.forecast(tf.io.parse_example(examples, parse_spec))

        return {"serving_default": serve.get_concrete_function(),
                EVAL_SIGNATURE: serve_examples.get_concrete_function()}


def _after(checks: list, tensor: tf.Tensor, shape: list) -> tf.Tensor:
    """`tensor`, computed only once `checks` passed, with its now-known static shape. (Not
    tf.ensure_shape: Grappler may evaluate that before the checks, with a worse message.)"""
    with tf.control_dependencies(checks):
        checked = tf.identity(tensor)
    checked.set_shape(shape)
    return checked


def export_serving_model(model, tf_transform_output, *, config, details: dict, export_dir: str) -> None:
    module = ForecastServingModule(model, tf_transform_output, columns=details["columns"],
                                   lookback=config.task.lookback, calendar=config.task.calendar_features)
    # One all-zero window as the warmup request.
    warmup = {name: np.zeros([1] if name == WINDOW_END_TIME else [1, config.task.lookback],
                             spec.dtype.as_numpy_dtype) for name, spec in module.input_specs().items()}
    save_serving_model(module, model, export_dir, [warmup])
