"""Model builders: shapes, masking and the export-time cuDNN switch."""

import dataclasses

import numpy as np
import pytest

from rnnflow.models.mingru import MinGRU
from rnnflow.models.recurrent import (build_forecaster, build_text_classifier, cudnn_eligibility, describe_model,
                                      make_optimizer, portable_kernels, recurrent_layers)
from rnnflow.pipeline.config import ModelConfig, TrainingConfig, resolve_training


def _training(**fields):
    """A training config with its auto fields resolved (as the Trainer resolves them) for 1000 rows."""
    return resolve_training(TrainingConfig(**fields), 1000)[0]


MAX_TOKENS = 12


def _model(**model_fields):
    return build_text_classifier(ModelConfig(units=4, embedding_dim=4, **model_fields), _training(),
                                 vocab_size=20, num_classes=3, input_name="token_ids")


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn", "mingru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
def test_output_is_a_distribution_over_classes(cell, bidirectional, layers, pooling):
    model = _model(cell=cell, bidirectional=bidirectional, layers=layers, pooling=pooling,
                   residual=layers > 1, layer_norm=layers > 1, input_dropout=0.1)
    ids = np.random.default_rng(0).integers(1, 20, size=(5, MAX_TOKENS))
    probabilities = np.asarray(model({"token_ids": ids}))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert len(recurrent_layers(model)) == layers * (2 if bidirectional else 1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru"])
def test_padding_never_changes_a_prediction(cell):
    model = _model(cell=cell, bidirectional=True, layers=2)
    short = np.zeros((1, MAX_TOKENS), dtype="int64")
    short[0, :3] = [5, 6, 7]
    longer = short.copy()
    longer[0, 3:6] = [8, 9, 10]
    # Same tokens, padding only after them: the prediction must not depend on how much padding.
    a = np.asarray(model({"token_ids": short}))
    assert not np.allclose(a, np.asarray(model({"token_ids": longer})))
    b = np.asarray(model({"token_ids": short[:, :4]}))  # the same row in a batch padded less
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_export_uses_portable_kernels_inside_bidirectional_then_restores_them():
    model = _model(cell="lstm", bidirectional=True, layers=2)
    layers = recurrent_layers(model)
    assert len(layers) == 4
    before = cudnn_eligibility(model)
    assert all(layer["eligible"] for layer in before)
    with portable_kernels(model):
        assert all(layer.use_cudnn is False for layer in layers)
        assert all("use_cudnn is False" in layer["reasons"] for layer in cudnn_eligibility(model))
    # What the run summary reports (after export) is what training used.
    assert cudnn_eligibility(model) == before


@pytest.mark.parametrize("anchor", ["last_value", "none"])
def test_models_answer_in_float32_under_mixed_precision(anchor):
    """Mixed precision forced on CPU: the heads stay float32, so the forecaster's export
    arithmetic (forecast * std + mean, float32 statistics) and the classifier's probabilities
    keep their dtype."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        forecaster = build_forecaster(ModelConfig(units=4), _training(), lookback=6, input_width=2, horizon=3,
                                      target_indices=[0], series_channels=2, anchor=anchor, loss="mae",
                                      input_name="window")
        classifier = _model(cell="gru")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in forecaster.layers)
    forecast = forecaster({"window": tf.ones([2, 6, 2])})
    assert forecast.dtype == tf.float32
    restored = forecast * tf.constant([[[2.0]]]) + tf.constant([[[1.0]]])  # the export's arithmetic
    assert restored.shape == (2, 3, 1)
    assert classifier({"token_ids": tf.ones([2, MAX_TOKENS], tf.int32)}).dtype == tf.float32


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_every_pooling_ignores_padding(pooling, cell):
    fields = dict(cell=cell, units=4, embedding_dim=4, layers=2, pooling=pooling, residual=True, layer_norm=True)
    model = build_text_classifier(ModelConfig(**fields), _training(), vocab_size=20, num_classes=3,
                                  input_name="token_ids")
    ids = np.zeros((2, MAX_TOKENS), dtype="int64")
    ids[0, :3] = [5, 6, 7]
    ids[1, :5] = [1, 2, 3, 4, 5]
    np.testing.assert_allclose(np.asarray(model({"token_ids": ids})),
                               np.asarray(model({"token_ids": ids[:, :5]})), atol=1e-5)


def test_residual_connections_only_between_equal_widths():
    bi = _model(cell="gru", bidirectional=True, layers=3, residual=True, pooling="mean")
    names = [layer.name for layer in bi.layers]
    # Embedding width 4 != 2 * 4 units, so layer 0 has no residual; layers 1 and 2 do.
    assert "residual_0" not in names and "residual_1" in names and "residual_2" in names


def _eligibility(layer):
    import keras

    inputs = keras.Input((MAX_TOKENS, 3))
    return cudnn_eligibility(keras.Model(inputs, layer(inputs)))


def test_default_layers_are_cudnn_eligible():
    model = _model(cell="lstm", bidirectional=True, layers=2)
    report = cudnn_eligibility(model)
    assert len(report) == 4 and all(r["eligible"] and not r["reasons"] for r in report)
    assert all(r["eligible"] for r in cudnn_eligibility(_model(cell="gru", bidirectional=False)))


@pytest.mark.parametrize("make_layer, reason", [
    (lambda k: k.layers.LSTM(4, activation="relu"), "activation is relu, not tanh"),
    (lambda k: k.layers.GRU(4, recurrent_activation="hard_sigmoid"), "recurrent_activation is hard_sigmoid"),
    (lambda k: k.layers.LSTM(4, recurrent_dropout=0.1), "recurrent_dropout is 0.1, not 0"),
    (lambda k: k.layers.LSTM(4, unroll=True), "unroll is True"),
    (lambda k: k.layers.GRU(4, use_bias=False), "use_bias is False"),
    (lambda k: k.layers.GRU(4, reset_after=False), "reset_after is False"),
    (lambda k: k.layers.LSTM(4, use_cudnn=False), "use_cudnn is False"),
    (lambda k: k.layers.SimpleRNN(4), "SimpleRNN has no cuDNN kernel"),
    (lambda k: MinGRU(4), "minGRU has no cuDNN kernel"),
    (lambda k: k.layers.Bidirectional(k.layers.LSTM(4, recurrent_dropout=0.2)), "recurrent_dropout is 0.2"),
])
def test_each_kind_of_ineligible_layer_is_reported(make_layer, reason):
    import keras

    report = _eligibility(make_layer(keras))
    assert report and all(not r["eligible"] for r in report)
    assert all(any(reason in why for why in r["reasons"]) for r in report)


def test_describe_model_records_topology_params_and_cudnn():
    model = _model(cell="gru", bidirectional=True, layers=2, pooling="attention")
    described = describe_model(model, ModelConfig(cell="gru", layers=2, pooling="attention"))
    assert described["params"] == model.count_params() > 0
    assert described["cell"] == "gru" and described["pooling"] == "attention"
    assert len(described["cudnn"]) == 4


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "cosine", "exponential"])
def test_optimizers_and_schedules(optimizer, schedule):
    opt = make_optimizer(TrainingConfig(optimizer=optimizer, lr_schedule=schedule, learning_rate=0.01,
                                        clipnorm=2.0, epochs=2), steps_per_epoch=5)
    assert opt.clipnorm == 2.0
    lr0 = float(opt.learning_rate) if schedule == "constant" else float(opt._learning_rate(0))
    assert lr0 == pytest.approx(0.01)
    if schedule != "constant":
        assert float(opt._learning_rate(10)) < 0.01


def test_the_budgeted_cosine_decay_is_keras_cosine_until_the_budget_shortens_it():
    import keras

    from rnnflow.models.recurrent import BudgetedCosineDecay

    schedule = BudgetedCosineDecay(0.01, 100)
    reference = keras.optimizers.schedules.CosineDecay(0.01, 100)
    for step in (0, 1, 37, 99, 100, 150):
        assert float(schedule(step)) == pytest.approx(float(reference(step)), abs=1e-7)
    assert schedule.fit_to(40) == 40 and float(schedule(40)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(20)) == pytest.approx(0.005, rel=1e-5)
    assert schedule.fit_to(0) == 1 and schedule.fit_to(10_000) == 100  # never past the plan
    assert BudgetedCosineDecay.from_config(schedule.get_config()).planned_steps == 100


def test_balanced_class_weights_and_default_strategy():
    from rnnflow.components.text_classification.trainer import class_weights
    from rnnflow.components.training.trainer import distribution_strategy

    balanced = type("Task", (), {"class_weight": "balanced"})()
    weights = class_weights(type("C", (), {"task": balanced})(), {"neg": 30, "pos": 10}, ["neg", "pos"])
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})
    default = type("Task", (), {"class_weight": "none"})()
    assert class_weights(type("C", (), {"task": default})(), {"neg": 3, "pos": 1}, ["neg", "pos"]) is None
    import tensorflow as tf

    assert not isinstance(distribution_strategy(), tf.distribute.MirroredStrategy)  # no GPUs here


def _forecaster(anchor, **overrides):
    from rnnflow.models.recurrent import build_forecaster

    model_config = dataclasses.replace(ModelConfig(), bidirectional=False, units=8, **overrides)
    return build_forecaster(model_config, _training(), lookback=6, input_width=4, horizon=3,
                            target_indices=[2, 0], series_channels=3, anchor=anchor, loss="huber",
                            input_name="window")


def test_forecaster_shapes_and_direct_head():
    model = _forecaster("none", cell="gru")
    window = np.random.default_rng(0).normal(size=(5, 6, 4)).astype("float32")
    assert model({"window": window}).shape == (5, 3, 2)


def test_last_value_anchor_forecasts_change_from_the_last_value():
    model = _forecaster("last_value")
    head = model.get_layer("horizon_head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # predicts "no change"
    window = np.random.default_rng(1).normal(size=(4, 6, 4)).astype("float32")
    forecast = np.asarray(model({"window": window}))
    expected = window[:, -1, [2, 0]]  # the targets' last values, repeated over the horizon
    np.testing.assert_allclose(forecast, np.repeat(expected[:, None, :], 3, axis=1), rtol=1e-6)
    # The encoder sees the series relative to their last value: a level shift changes nothing.
    shifted = window.copy()
    shifted[..., :3] += 10.0  # the calendar channel (index 3) is not shifted
    relative = model.get_layer("relative_to_last")
    np.testing.assert_allclose(np.asarray(relative(shifted)), np.asarray(relative(window)), atol=1e-5)


@pytest.mark.parametrize("setting, expected", [("on", True), ("off", False)])
def test_jit_compile_setting_reaches_keras_and_trains_on_cpu(setting, expected):
    import tensorflow as tf

    model = build_text_classifier(ModelConfig(units=4, embedding_dim=4), _training(jit_compile=setting),
                                  vocab_size=20, num_classes=3, input_name="token_ids")
    assert model.jit_compile is expected
    ids = np.random.default_rng(0).integers(1, 20, size=(8, 5))
    history = model.fit({"token_ids": ids}, tf.one_hot(np.arange(8) % 3, 3), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

