"""Tuning honours what it accepts: every training.* field a search space may hold changes what a
trial does (batch size, epochs, patience, seed), and the fields a trial cannot honour are refused."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.training.tuning import ReportingTuner, make_oracle
from rnnflow.pipeline.config import ConfigError, load_config

ROWS = 48


class FakeData:
    """A TaskData's surface: batches of this trial's batch size over fixed rows."""

    def __init__(self, config):
        self.config = config
        self.fn_args = types.SimpleNamespace(train_files=[], eval_files=[])
        self.steps_per_epoch = ROWS // config.training.batch_size

    def train_examples(self, config):
        return ROWS

    def dataset(self, files, shuffle):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(ROWS, 3)).astype("float32"), rng.normal(size=(ROWS, 1)).astype("float32")
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(self.config.training.batch_size)

    def build_model(self, config):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    def train(self):
        return self.dataset([], True)

    def eval(self):
        return self.dataset([], False)


def search(tmp_path, *overrides):
    config = load_config("forecast", ["tuning.enabled=true", "tuning.max_trials=3", "tuning.epochs_per_trial=1",
                                      "training.batch_size=8", *overrides])
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append({"batches": [], "epochs": self.params["epochs"]})

        def on_train_batch_begin(self, batch, logs=None):
            seen[-1]["batches"].append(batch)

    class CheckedData(FakeData):
        def build_model(self, trial):
            # The model sees the trial's data (its steps per epoch size the learning-rate schedule).
            assert self.config.training.batch_size == trial.training.batch_size
            assert self.steps_per_epoch == ROWS // trial.training.batch_size
            return super().build_model(trial)

    data = CheckedData(config)
    tuner = ReportingTuner(config, data, oracle=make_oracle(config), directory=str(tmp_path),
                           project_name="t", overwrite=True)
    tuner.search(x=data.train(), validation_data=data.eval(), epochs=1, verbose=0, callbacks=[Recorder()])
    trials = [t.hyperparameters.values for t in tuner.oracle.trials.values()]
    return trials, seen


def test_a_search_over_batch_size_trains_each_trial_on_its_own_batches(tmp_path):
    trials, seen = search(tmp_path, "tuning.search_space.training.batch_size=[4, 12, 24]")
    assert len({t["training.batch_size"] for t in trials}) > 1
    for values, run in zip(trials, seen):
        assert len(run["batches"]) == ROWS // values["training.batch_size"], (values, run)


def test_a_search_over_epochs_trains_each_trial_that_long(tmp_path):
    trials, seen = search(tmp_path, "tuning.search_space.training.epochs=[1, 2, 3]")
    assert [run["epochs"] for run in seen] == [t["training.epochs"] for t in trials]


@pytest.mark.parametrize("field", ["training.max_minutes", "training.progress_seconds", "training.warm_start"])
def test_fields_a_trial_cannot_honour_are_refused(field):
    value = {"training.warm_start": "[none, prefer]"}.get(field, "[1.0, 2.0]")
    with pytest.raises(ConfigError, match=f"tuning.search_space.{field}: {field} cannot be tuned: "):
        load_config("forecast", ["tuning.enabled=true", f"tuning.search_space.{field}={value}"])
    with pytest.raises(ConfigError, match="hyperband decides each trial's epochs itself"):
        load_config("forecast", ["tuning.enabled=true", "tuning.algorithm=hyperband",
                                 "tuning.search_space.training.epochs=[1, 2]"])


def test_a_trial_resolves_its_auto_training_fields_for_its_own_batch_size(tmp_path):
    from rnnflow.pipeline.config import resolve_training

    raw = load_config("forecast", ["tuning.enabled=true", "training.batch_size=auto", "training.learning_rate=auto",
                                   "tuning.search_space.training.batch_size=[16, 64]"])
    resolved_training, _ = resolve_training(raw.training, ROWS)
    config = raw.__class__(**{**raw.__dict__, "training": resolved_training})
    tuner = ReportingTuner(config, FakeData(config), raw_training=raw.training, oracle=make_oracle(config), directory=str(tmp_path),
                           project_name="t", overwrite=True)
    small, large = (tuner.trial_config({"training.batch_size": b}).training for b in (16, 64))
    assert (small.batch_size, large.batch_size) == (16, 64)
    # The Trainer's rule: the learning rate grows with the square root of the batch size.
    assert large.learning_rate == pytest.approx(small.learning_rate * 2)


def test_with_weight_averaging_a_trial_is_scored_on_its_averaged_weights(tmp_path):
    config = load_config("forecast", ["tuning.enabled=true", "tuning.max_trials=1", "training.batch_size=8",
                                      "training.ema_momentum=0.5"])
    scored = []

    class AveragingData(FakeData):
        def build_model(self, trial):
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), loss="mse")
            return model

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # Training weights are back in the model here; the optimizer holds their averages.
            kernel, bias = (v.numpy() for v in self.model.optimizer._model_variables_moving_average)
            x, y = next(iter(data.eval().unbatch().batch(ROWS)))
            averaged = float(np.mean((x.numpy() @ kernel + bias - y.numpy()) ** 2))
            current = float(self.model.evaluate(data.eval(), verbose=0))
            scored.append((logs["val_loss"], averaged, current))

    data = AveragingData(config)
    tuner = ReportingTuner(config, data, oracle=make_oracle(config), directory=str(tmp_path),
                           project_name="t", overwrite=True)
    tuner.search(x=data.train(), validation_data=data.eval(), epochs=2, verbose=0, callbacks=[Recorder()])
    assert len(scored) == 2
    for val_loss, averaged, current in scored:
        assert val_loss == pytest.approx(averaged, rel=1e-4) and abs(val_loss - current) > 1e-4
