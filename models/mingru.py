"""minGRU: the minimal GRU of "Were RNNs All We Needed?" (Feng et al., 2024).

Its gates depend on the input only, so h_t = a_t * h_{t-1} + b_t is a linear
recurrence with a_t = 1 - z_t and b_t = z_t * h~_t. Training evaluates it for
all time steps at once as a parallel scan in log space (Heinsen 2023):

    log h_t = A_t + logcumsumexp_{k<=t}(log b_k - A_k),   A_t = sum_{k<=t} log a_k

which stays finite for long sequences. `step` is the sequential form for
token-by-token inference; the tests check that both agree.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _log_g(x):
    """log of g(x) = x + 0.5 for x >= 0, sigmoid(x) otherwise (positive, so logs exist)."""
    return tf.where(x >= 0, tf.math.log(tf.nn.relu(x) + 0.5), -tf.nn.softplus(-x))


def _g(x):
    return tf.where(x >= 0, x + 0.5, tf.sigmoid(x))


@keras.saving.register_keras_serializable(package="rnnflow")
class MinGRU(keras.layers.Layer):
    """Sequence layer [batch, time, features] -> [batch, time, units] or [batch, units].

    Masked (padded) steps leave the state unchanged, so right padding never
    changes the final state. Has the attributes keras.layers.Bidirectional needs.
    """

    def __init__(self, units: int, return_sequences: bool = False, go_backwards: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.return_state = False
        self.stateful = False
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        self.gate_and_candidate = keras.layers.Dense(2 * self.units, name="gate_and_candidate")
        self.gate_and_candidate.build(input_shape)

    def _log_coefficients(self, inputs, mask):
        k, h = tf.split(self.gate_and_candidate(inputs), 2, axis=-1)
        log_a = -tf.nn.softplus(k)              # log(1 - z)
        log_b = -tf.nn.softplus(-k) + _log_g(h)  # log(z) + log(h~)
        if mask is not None:
            keep = tf.cast(mask, tf.bool)[:, :, tf.newaxis]
            log_a = tf.where(keep, log_a, tf.zeros_like(log_a))               # a = 1
            log_b = tf.where(keep, log_b, tf.fill(tf.shape(log_b), -1e30))   # b = 0
        return log_a, log_b

    def call(self, inputs, mask=None, initial_state=None, training=None):
        if initial_state is not None:
            raise ValueError("MinGRU starts from a zero state; initial_state is not supported")
        if self.go_backwards:
            inputs = tf.reverse(inputs, axis=[1])
            mask = None if mask is None else tf.reverse(mask, axis=[1])
        log_a, log_b = self._log_coefficients(inputs, mask)
        # A_t grows linearly with t; in float32 A_t + logcumsumexp(...) loses ~1e-4 relative
        # precision after a few hundred steps, so the (elementwise, cheap) scan runs in float64.
        log_a, log_b = tf.cast(log_a, tf.float64), tf.cast(log_b, tf.float64)
        a_star = tf.cumsum(log_a, axis=1)
        log_h = a_star + tf.math.cumulative_logsumexp(log_b - a_star, axis=1)
        states = tf.cast(tf.exp(log_h), inputs.dtype)  # h_0 = 0
        if self.return_sequences:
            return states
        return states[:, -1, :]

    def step(self, x_t, h_prev):
        """One sequential step: x_t [batch, features], h_prev [batch, units] -> h_t."""
        k, h = tf.split(self.gate_and_candidate(x_t), 2, axis=-1)
        z = tf.sigmoid(k)
        return (1.0 - z) * h_prev + z * _g(h)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (*input_shape[:2], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences,
                "go_backwards": self.go_backwards}
