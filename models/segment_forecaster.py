"""Segment-recurrent forecasting (SegRNN, Lin et al. 2023) and reversible instance
normalization (RevIN, Kim et al. 2022), Keras 3.

What linear forecasters exploit, learnt by a recurrent network:
- channel independence: every target series is forecast from its own history with the same
  weights; a learnt channel embedding tells the decoder which series it is;
- per-window normalization: each window is standardized by its own mean and std (`revin`,
  with a learnt per-channel affine map) or taken relative to its last value (`last_value`),
  and the forecast is mapped back, so a level or scale shift between train and test does not
  bias the forecast;
- segments: the lookback is cut into segments of `segment` steps (padded in front with its first
  value when the segment does not divide it), each projected to a vector, and the recurrent
  cell runs over segments (lookback / segment steps, not lookback);
- parallel decoding: every output segment is decoded at once from the encoder's last state
  and the segment's position and channel embeddings (one recurrent step each), with no feedback
  of the model's own forecasts;
- a linear path (`linear_skip`, LSTNet's highway, NLinear's map): the normalized forecast is
  the last value plus a linear map of the lookback relative to it, shared by the series, plus
  the recurrent forecast. Initialized with the least-squares map of the train windows (the
  pipeline's linear baseline) and a zero recurrent head, training starts from the linear model
  and the recurrence learns what it misses.

`combined_with_linear` is the other way to use the linear map (the pipeline's default with
segments): the model trains alone and the served forecast is the mean of the two.

The recurrent layer is a stock Keras LSTM/GRU (cuDNN-eligible on GPU), shared by encoder and
decoder as in the paper; every op is core TensorFlow, so the export serves on stock TF Serving.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from rnnflow.models.recurrent import CELLS, FORECAST_LOSSES, JIT_COMPILE, make_optimizer
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

NORMALIZATIONS = ("revin", "last_value", "none")
MAX_AUTO_SEGMENT = 48  # SegRNN's segment length for long lookbacks


def auto_segment(lookback: int) -> int:
    """The largest divisor of `lookback` up to 48 that leaves at least two segments (1 for a
    lookback of 1)."""
    candidates = [s for s in range(1, min(MAX_AUTO_SEGMENT, lookback // 2) + 1) if lookback % s == 0]
    return max(candidates, default=1)


@keras.saving.register_keras_serializable(package="rnnflow")
class TakeChannels(keras.layers.Layer):
    """[batch, steps, features] -> [batch, steps, len(indices)]."""

    def __init__(self, indices: list[int], **kwargs):
        super().__init__(**kwargs)
        self.indices = list(indices)

    def call(self, x):
        return keras.ops.take(x, self.indices, axis=-1)

    def get_config(self):
        return {**super().get_config(), "indices": self.indices}


@keras.saving.register_keras_serializable(package="rnnflow")
class InstanceNormalization(keras.layers.Layer):
    """Per window and channel: `revin` standardizes by the window's own mean and std, then
    applies a learnt affine map per channel; `last_value` subtracts the last step; `none`
    passes through. Returns (normalized, location, scale), where `Denormalize`'s
    y * scale + location inverts the normalization (the affine map included)."""

    def __init__(self, mode: str = "revin", epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {mode!r}")
        self.mode, self.epsilon = mode, epsilon

    def build(self, input_shape):
        if self.mode == "revin":
            channels = input_shape[-1]
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="affine_weight")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="affine_bias")

    def call(self, x):
        ops = keras.ops
        if self.mode == "revin":
            mean = ops.mean(x, axis=1, keepdims=True)
            std = ops.sqrt(ops.var(x, axis=1, keepdims=True) + self.epsilon)
            normalized = (x - mean) / std * self.gamma + self.beta
            # y -> (y - beta) / gamma * std + mean, as one scale and location for `Denormalize`.
            scale = std / (self.gamma + self.epsilon * self.epsilon)
            return normalized, mean - self.beta * scale, scale
        location = x[:, -1:, :] if self.mode == "last_value" else ops.zeros_like(x[:, -1:, :])
        return x - location, location, ops.ones_like(location)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="rnnflow")
class Denormalize(keras.layers.Layer):
    """The inverse of `InstanceNormalization`: y * scale + location (per window and channel)."""

    def call(self, y, location, scale):
        return y * scale + location


@keras.saving.register_keras_serializable(package="rnnflow")
class LinearSkip(keras.layers.Layer):
    """[batch, lookback, channels] -> [batch, horizon, channels]: last + (x - last) @ W per
    channel, W [lookback, horizon] shared by the channels (`baselines.linear_forecast`'s map,
    trainable). Shift and scale equivariant, so the train windows' least-squares map fitted on
    z-scores (`baselines.fit_linear`) is also that map after per-window normalization."""

    def __init__(self, horizon: int, initial: list | None = None, **kwargs):
        super().__init__(**kwargs)
        self.horizon = horizon
        self.initial = None if initial is None else np.asarray(initial, "float32")

    def build(self, input_shape):
        lookback = input_shape[1]
        if self.initial is not None and self.initial.shape != (lookback, self.horizon):
            raise ValueError(f"linear_skip: initial weights of shape {self.initial.shape}, the model needs "
                             f"(lookback, horizon) = ({lookback}, {self.horizon})")
        initializer = "zeros" if self.initial is None else keras.initializers.Constant(self.initial)
        self.weights_map = self.add_weight(shape=(lookback, self.horizon), initializer=initializer,
                                           name="linear_map")

    def call(self, x):
        ops = keras.ops
        last = x[:, -1:, :]
        return last + ops.einsum("blc,lh->bhc", x - last, self.weights_map)

    def get_config(self):
        # The initial weights are not configuration: a saved model restores the trained ones.
        return {**super().get_config(), "horizon": self.horizon}


@keras.saving.register_keras_serializable(package="rnnflow")
class SegmentRecurrence(keras.layers.Layer):
    """[batch, lookback, channels] normalized series -> [batch, horizon, channels]: segments
    projected, one recurrent layer over them, every output segment decoded in parallel."""

    def __init__(self, cell: str, units: int, segment: int, horizon: int, channels: int, dropout: float = 0.0,
                 zero_head: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.cell, self.units, self.segment = cell, units, segment
        self.horizon, self.channels, self.dropout = horizon, channels, dropout
        self.zero_head = zero_head  # starts at a zero forecast (a residual on the linear path)
        self.outputs_per_series = math.ceil(horizon / segment)

    def build(self, input_shape):
        lookback = input_shape[1]
        # A lookback the segment does not divide is padded in front with its first value.
        self.padding = -lookback % self.segment
        self.inputs_per_series = (lookback + self.padding) // self.segment
        self.project = keras.layers.Dense(self.units, activation="relu", name="segment_projection")
        self.project.build((None, self.inputs_per_series, self.segment))
        self.recurrent = CELLS[self.cell](self.units, return_state=True, name=f"segment_{self.cell}")
        self.recurrent.build((None, None, self.units))
        position_units = self.units // 2
        self.position = self.add_weight(shape=(self.outputs_per_series, position_units), name="position_embedding",
                                        initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.channel = self.add_weight(shape=(self.channels, self.units - position_units), name="channel_embedding",
                                       initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.drop = keras.layers.Dropout(self.dropout)
        self.head = keras.layers.Dense(self.segment, name="segment_head",
                                       kernel_initializer="zeros" if self.zero_head else "glorot_uniform")
        self.head.build((None, self.units))

    def call(self, x, training=None):
        ops = keras.ops
        batch = ops.shape(x)[0]
        channels, outputs = self.channels, self.outputs_per_series
        if self.padding:
            x = ops.concatenate([ops.repeat(x[:, :1, :], self.padding, axis=1), x], axis=1)
        # Channel independence: each (window, channel) is one series of segments.
        series = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, self.inputs_per_series, self.segment))
        _, *state = self.recurrent(self.project(series))
        # One decoder query per (window, channel, output segment): position + channel embedding.
        queries = ops.concatenate([
            ops.broadcast_to(self.position[None, :, :], (channels, outputs, self.position.shape[-1])),
            ops.broadcast_to(self.channel[:, None, :], (channels, outputs, self.channel.shape[-1]))], axis=-1)
        queries = ops.reshape(ops.tile(queries[None], (batch, 1, 1, 1)), (-1, 1, self.units))
        state = [ops.repeat(s, outputs, axis=0) for s in state]
        decoded, *_ = self.recurrent(queries, initial_state=state)
        segments = self.head(self.drop(decoded, training=training))  # [batch * channels * outputs, segment]
        forecast = ops.reshape(segments, (-1, channels, outputs * self.segment))[:, :, :self.horizon]
        return ops.transpose(forecast, (0, 2, 1))

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units, "segment": self.segment,
                "horizon": self.horizon, "channels": self.channels, "dropout": self.dropout,
                "zero_head": self.zero_head}


def build_segment_forecaster(model: ModelConfig, training: TrainingConfig, *, lookback: int, input_width: int,
                             horizon: int, target_indices: list[int], normalization: str, segment: int | None,
                             loss: str, input_name: str, steps_per_epoch: int | None = None,
                             linear_skip: bool = False, linear_weights=None) -> keras.Model:
    """[batch, lookback, input_width] -> [batch, horizon, targets]: the target series, each
    alone (channel independence), normalized, segment-recurrent, mapped back. Other input
    features (covariates, calendar) are not read: a series is forecast from its own past.
    `model.cell` (lstm or gru), `model.units` (the segment and state width) and `model.dropout`
    (before the output head) configure it. `linear_skip` adds the linear path (module docstring),
    started at `linear_weights` [lookback, horizon] (None: zeros, i.e. the last value)."""
    if model.cell not in ("lstm", "gru"):
        raise ValueError(f"model.cell: the segment encoder needs lstm or gru, got {model.cell}")
    segment = segment or auto_segment(lookback)
    window = keras.Input(shape=(lookback, input_width), dtype="float32", name=input_name)
    series = TakeChannels(target_indices, name="targets")(window)
    normalize = InstanceNormalization(normalization, name="instance_normalization")
    normalized, location, scale = normalize(series)
    change = SegmentRecurrence(model.cell, model.units, segment, horizon, len(target_indices), model.dropout,
                               zero_head=linear_skip, dtype="float32", name="segment_recurrence")(normalized)
    if linear_skip:
        linear = LinearSkip(horizon, linear_weights, dtype="float32", name="linear_skip")(normalized)
        change = keras.layers.Add(dtype="float32", name="linear_plus_recurrent")([linear, change])
    forecast = Denormalize(dtype="float32", name="forecast")(change, location, scale)
    forecaster = keras.Model({input_name: window}, forecast, name="segment_forecaster")
    forecaster.compile(optimizer=make_optimizer(training, steps_per_epoch), loss=FORECAST_LOSSES[loss](),
                       metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
                       jit_compile=JIT_COMPILE[training.jit_compile])
    return forecaster


@keras.saving.register_keras_serializable(package="rnnflow")
class WeightedSum(keras.layers.Layer):
    """share x a + (1 - share) x b."""

    def __init__(self, share: float, **kwargs):
        super().__init__(**kwargs)
        self.share = float(share)

    def call(self, a, b):
        return self.share * a + (1.0 - self.share) * b

    def get_config(self):
        return {**super().get_config(), "share": self.share}


def combined_with_linear(model: keras.Model, weights, *, target_indices: list[int], input_name: str,
                         share: float = 0.5) -> keras.Model:
    """A forecast combination: `share` x the linear map's forecast (`LinearSkip` frozen at
    `weights` [lookback, horizon], on the target channels of the window) + (1 - share) x the
    trained `model`'s, both in the model's (normalized) units. The model is trained alone; the
    combination averages two forecasts whose errors differ."""
    window = model.inputs[0] if isinstance(model.inputs, list) else model.inputs
    horizon = model.output.shape[1]
    linear_layer = LinearSkip(horizon, weights, dtype="float32", name="linear_map", trainable=False)
    linear = linear_layer(TakeChannels(target_indices, name="linear_targets")(window))
    combined = WeightedSum(share, dtype="float32", name="linear_combination")(linear, model.output)
    return keras.Model({input_name: window}, combined, name=f"{model.name}_with_linear")
