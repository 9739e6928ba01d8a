"""The segment-recurrent forecaster (SegRNN with RevIN): shapes, what per-window normalization
promises, the segment length it picks, cuDNN eligibility and a SavedModel that answers as Keras."""

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.forecasting.baselines import linear_forecast
from rnnflow.models.recurrent import cudnn_eligibility
from rnnflow.models.segment_forecaster import auto_segment, build_segment_forecaster, combined_with_linear
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

TRAINING = TrainingConfig(epochs=1, batch_size=8, learning_rate=0.01, lr_schedule="constant")


def _model(normalization="revin", cell="gru", lookback=24, horizon=10, targets=(0, 3), segment=None, **linear):
    return build_segment_forecaster(ModelConfig(cell=cell, units=16, dropout=0.1), TRAINING, lookback=lookback,
                                    input_width=5, horizon=horizon, target_indices=list(targets),
                                    normalization=normalization, segment=segment, loss="mse", input_name="window",
                                    **linear)


@pytest.mark.parametrize("lookback, segment", [(720, 48), (336, 48), (96, 48), (28, 14), (24, 12), (7, 1), (1, 1)])
def test_auto_segment_is_the_largest_divisor_up_to_48_leaving_two_segments(lookback, segment):
    assert auto_segment(lookback) == segment


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_forecasts_every_target_for_every_step_and_reads_only_the_targets(cell):
    model = _model(cell=cell)
    window = np.random.default_rng(0).normal(size=(4, 24, 5)).astype("float32")
    forecast = model({"window": window}).numpy()
    assert forecast.shape == (4, 10, 2)
    other = window.copy()
    other[..., [1, 2, 4]] += 50.0  # columns that are not targets
    assert np.allclose(model({"window": other}).numpy(), forecast, atol=1e-5)
    assert [r["eligible"] for r in cudnn_eligibility(model)] == [True]


@pytest.mark.parametrize("normalization, invariant", [("revin", True), ("last_value", True), ("none", False)])
def test_per_window_normalization_makes_a_level_shift_shift_the_forecast(normalization, invariant):
    model = _model(normalization)
    window = np.random.default_rng(1).normal(size=(4, 24, 5)).astype("float32")
    shifted = model({"window": window + 100.0}).numpy() - 100.0
    assert np.allclose(shifted, model({"window": window}).numpy(), atol=1e-3) == invariant


def test_revin_forecasts_scale_with_the_window():
    model = _model("revin")
    window = np.random.default_rng(2).normal(size=(4, 24, 5)).astype("float32")
    assert np.allclose(model({"window": window * 10.0}).numpy(), 10.0 * model({"window": window}).numpy(),
                       rtol=1e-3, atol=1e-3)


def test_a_horizon_that_is_not_whole_segments_is_cut_and_the_export_answers_as_keras(tmp_path):
    model = _model(horizon=7, segment=6)  # two output segments of 6, cut to 7 steps
    window = np.random.default_rng(3).normal(size=(8, 24, 5)).astype("float32")
    model.fit({"window": window}, np.zeros((8, 7, 2), "float32"), epochs=1, verbose=0)

    class Module(tf.Module):
        def __init__(self, keras_model):
            super().__init__()
            self.keras_model = keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, 24, 5], tf.float32)])
        def forecast(self, x):
            return self.keras_model({"window": x}, training=False)

    tf.saved_model.save(Module(model), str(tmp_path / "model"))
    restored = tf.saved_model.load(str(tmp_path / "model"))
    expected = model({"window": window}).numpy()
    assert expected.shape == (8, 7, 2)
    assert np.allclose(restored.forecast(tf.constant(window)).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("lookback, segment, horizon", [(25, 12, 10), (7, 3, 1), (30, 48 // 4, 25)])
def test_a_lookback_the_segment_does_not_divide_is_padded_and_every_step_is_decoded(lookback, segment, horizon):
    model = _model(lookback=lookback, segment=segment, horizon=horizon)
    window = np.random.default_rng(4).normal(size=(3, lookback, 5)).astype("float32")
    forecast = model({"window": window}).numpy()
    assert forecast.shape == (3, horizon, 2) and np.isfinite(forecast).all()


def test_revin_survives_a_constant_channel_and_channels_a_million_times_apart():
    model = _model("revin")
    window = np.random.default_rng(5).normal(size=(4, 24, 5)).astype("float32")
    window[..., 0] = 7.0  # a constant target channel: std 0
    window[..., 3] *= 1e6
    forecast = model({"window": window}).numpy()
    assert np.isfinite(forecast).all()
    assert np.allclose(forecast[..., 0], 7.0, atol=1e-2)  # no variation in, the level out (within the affine map)
    # The large channel's forecast is on its own scale, the constant one's on its level.
    assert np.abs(forecast[..., 1]).max() > 1e3


@pytest.mark.parametrize("normalization", ["revin", "last_value", "none"])
def test_with_the_linear_path_an_untrained_model_is_the_linear_baseline_it_starts_from(normalization):
    rng = np.random.default_rng(6)
    weights = rng.normal(scale=0.2, size=(24, 10))
    model = _model(normalization, linear_skip=True, linear_weights=weights)
    window = rng.normal(size=(3, 24, 5)).astype("float32") * 4.0 + 2.0
    expected = np.stack([linear_forecast(w[:, [0, 3]], weights) for w in window])
    assert np.allclose(model({"window": window}).numpy(), expected, atol=1e-3)


def test_the_linear_path_without_weights_starts_at_the_last_value_and_learns_with_the_recurrence():
    model = _model(linear_skip=True)
    window = np.random.default_rng(7).normal(size=(16, 24, 5)).astype("float32")
    assert np.allclose(model({"window": window}).numpy(), window[:, -1:, [0, 3]].repeat(10, axis=1), atol=1e-4)
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    model.fit({"window": window}, np.ones((16, 10, 2), "float32"), epochs=2, verbose=0)
    moved = {path for path, value in before.items()
             if not np.allclose(value, next(w for w in model.trainable_weights if w.path == path).numpy())}
    assert any("linear_map" in p for p in moved) and any("segment_head" in p for p in moved)
    assert any("segment_gru" in p for p in moved)  # the zero head passes gradients on after its first step


def test_linear_weights_of_another_shape_are_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(10, 10\).*\(24, 10\)"):
        _model(linear_skip=True, linear_weights=np.zeros((10, 10)))


def test_the_linear_combination_is_the_mean_of_the_model_and_the_frozen_linear_map_and_trains_nothing_new():
    model = _model()
    weights = np.random.default_rng(8).normal(scale=0.1, size=(24, 10))
    combined = combined_with_linear(model, weights, target_indices=[0, 3], input_name="window")
    window = np.random.default_rng(9).normal(size=(3, 24, 5)).astype("float32")
    linear = np.stack([linear_forecast(w[:, [0, 3]], weights) for w in window])
    assert np.allclose(combined({"window": window}).numpy(), 0.5 * linear + 0.5 * model({"window": window}).numpy(),
                       atol=1e-5)
    assert len(combined.trainable_weights) == len(model.trainable_weights)  # the linear map is frozen
