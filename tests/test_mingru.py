"""minGRU: the parallel log-space scan equals its own sequential step function."""

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.models.mingru import MinGRU


def _sequential(layer, x, mask=None):
    h = tf.zeros((x.shape[0], layer.units))
    states = []
    for t in range(x.shape[1]):
        new_h = layer.step(x[:, t], h)
        if mask is not None:
            new_h = tf.where(mask[:, t:t + 1], new_h, h)
        h = new_h
        states.append(h)
    return tf.stack(states, axis=1)


@pytest.mark.parametrize("steps", [1, 7, 256, 1024])
def test_parallel_scan_matches_sequential_steps(steps):
    rng = np.random.default_rng(steps)
    x = tf.constant(rng.normal(size=(3, steps, 5)), tf.float32)
    layer = MinGRU(8, return_sequences=True)
    parallel = layer(x)
    np.testing.assert_allclose(parallel.numpy(), _sequential(layer, x).numpy(), rtol=1e-5, atol=1e-5)


def test_masked_steps_keep_the_state():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 10, 4)), tf.float32)
    mask = tf.constant([[True] * 6 + [False] * 4, [True] * 10])
    layer = MinGRU(6, return_sequences=True)
    parallel = layer(x, mask=mask)
    np.testing.assert_allclose(parallel.numpy(), _sequential(layer, x, mask).numpy(), rtol=1e-5, atol=1e-5)
    last = MinGRU(6)
    last.build(x.shape)
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(last(x, mask=mask)[0].numpy(), parallel[0, 5].numpy(), rtol=1e-6)


def test_go_backwards_reads_the_sequence_reversed():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 3)), tf.float32)
    forward = MinGRU(4)
    forward.build(x.shape)
    backward = MinGRU(4, go_backwards=True)
    backward.build(x.shape)
    backward.set_weights(forward.get_weights())
    np.testing.assert_allclose(backward(x).numpy(), forward(tf.reverse(x, axis=[1])).numpy(), rtol=1e-6)


def test_gradients_are_finite_on_long_sequences():
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 1024, 4)) * 3, tf.float32)
    layer = MinGRU(8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
