"""Live training progress and the training time budget (components/training/progress.py), on a tiny
model with a fake clock: every call to the clock advances it 7 seconds."""

import functools
import itertools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.training.progress import WARMUP_STEPS, TrainingProgress
from rnnflow.components.training.trainer import fitted_schedule
from rnnflow.models.recurrent import build_text_classifier
from rnnflow.pipeline.config import ModelConfig, TrainingConfig, load_config, resolve_training


def _training(**fields):
    """A training config with its auto fields resolved (as the Trainer resolves them) for 1000 rows."""
    return resolve_training(TrainingConfig(**fields), 1000)[0]


def _fit(epochs, training=None, **progress_args):
    keras.utils.set_random_seed(0)
    model = build_text_classifier(ModelConfig(units=4, embedding_dim=4), training or _training(), vocab_size=20,
                                  num_classes=2, input_name="token_ids", steps_per_epoch=10)
    if progress_args.pop("fit_schedule", False):
        progress_args["schedule"] = fitted_schedule(model.optimizer)
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        ({"token_ids": rng.integers(1, 20, size=(40, 6))}, tf.one_hot(rng.integers(0, 2, size=40), 2))).batch(4)
    lines = []
    ticks = itertools.count(0, 7)
    progress = TrainingProgress(epochs=epochs, batch_size=4, interval=30, echo=lines.append,
                                clock=lambda: float(next(ticks)), **progress_args)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    history = model.fit(data, validation_data=data.take(2), epochs=epochs, verbose=0,
                        callbacks=[stopping, progress])
    return history, progress, lines


def test_progress_lines_appear_during_an_epoch_and_at_its_end():
    history, progress, lines = _fit(2, steps_per_epoch=10)
    during = [line for line in lines if re.match(r"epoch 1/2  step \d+/10 \(\d+%\)", line)]
    assert during, lines
    assert all(re.search(r"\d+ ex/s  loss \d\.\d{4}  accuracy \d\.\d{4}  epoch left \d+:\d\d  run left <= \d+:\d\d",
                         line) for line in during), during
    ends = [line for line in lines if line.startswith("epoch 1/2 done") or line.startswith("epoch 2/2 done")]
    assert len(ends) == 2 and "val_loss" in ends[0] and "run left" in ends[0] and "run left" not in ends[1]
    assert [r["epoch"] for r in progress.epoch_records] == [1, 2]
    for record in progress.epoch_records:
        assert record["steps"] == 10 and record["train_examples_per_second"] > 0
        assert record["eval_examples_per_second"] > 0
    assert progress.stopped_by_budget is None and len(history.epoch) == 2


def test_steps_per_epoch_is_learned_from_the_first_epoch_when_unknown():
    _, progress, lines = _fit(2)
    assert not any(re.match(r"epoch 1/2  step \d+/", line) for line in lines)  # no total known yet
    assert any(re.match(r"epoch 2/2  step \d+/10 ", line) for line in lines), lines


def test_a_budget_smaller_than_one_epoch_stops_after_that_step_and_keeps_a_model():
    history, progress, lines = _fit(5, max_seconds=20)
    assert len(history.epoch) == 1  # the partial epoch was still evaluated
    assert "val_loss" in history.history
    assert progress.stopped_by_budget.startswith("stopped after 0:2") and "of epoch 1, by the time budget" \
        in progress.stopped_by_budget
    assert progress.epoch_records[0]["steps"] < 10
    assert progress.stopped_by_budget in lines


def test_a_budget_shorter_than_the_planned_cosine_decay_ends_training_annealed():
    # 20 epochs of 10 steps planned; at 7 s a clock call the 300 s budget leaves about 30 steps.
    history, progress, lines = _fit(20, _training(lr_schedule="cosine", epochs=20, learning_rate=0.01),
                                    max_seconds=300, fit_schedule=True)
    schedule = history.model.optimizer._learning_rate
    steps_run = int(history.model.optimizer.iterations.numpy())
    assert progress.stopped_by_budget is not None and WARMUP_STEPS < steps_run < 60
    assert progress.lr_decay == {"planned_steps": 200, "fitted_steps": schedule.decay_steps}
    assert steps_run - 10 <= schedule.decay_steps <= steps_run + 10, (steps_run, schedule.decay_steps)
    # The last step's rate is near the end of the decay, not the 0.0085 the planned horizon gives.
    assert float(schedule(steps_run)) < 0.1 * 0.01
    assert any("of the 200 planned steps: the learning rate now decays over those" in line for line in lines)


def test_without_a_budget_or_when_the_plan_fits_the_decay_keeps_its_planned_horizon():
    for budget in (None, 10_000):
        history, progress, _ = _fit(2, _training(lr_schedule="cosine", epochs=2, learning_rate=0.01),
                                    max_seconds=budget, fit_schedule=True)
        assert progress.lr_decay is None and history.model.optimizer._learning_rate.decay_steps == 20
        assert float(history.model.optimizer._learning_rate(20)) == pytest.approx(0.0, abs=1e-9)


def test_budget_and_interval_are_validated_config_fields():
    assert load_config("sentiment", ["training.max_minutes=0.5"]).training.max_minutes == 0.5
    with pytest.raises(Exception, match="training.max_minutes"):
        load_config("sentiment", ["training.max_minutes=0"])
    with pytest.raises(Exception, match="training.progress_seconds"):
        load_config("sentiment", ["training.progress_seconds=0"])


class _RowsData:
    """A TaskData's surface for `fit`: batches of 4 over fixed rows, the first `eval_rows` to evaluate."""

    def __init__(self, rows, eval_rows):
        self.rows, self.eval_rows = rows, eval_rows

    def train(self):
        return tf.data.Dataset.from_tensor_slices(self.rows).batch(4)

    def eval(self):
        return tf.data.Dataset.from_tensor_slices(self.rows).take(self.eval_rows).batch(4)

    def compatibility(self):
        return {}


def test_early_stopping_follows_a_task_monitor_and_keeps_its_best_epoch(tmp_path):
    """A task that monitors its own eval score (the tagger's entity F1, mode max) stops on it and
    keeps its best epoch's weights, which the summary names; val_loss plays no part."""
    import types

    from rnnflow.components.training.trainer import fit, history_summary

    config = load_config("sentiment", ["model.units=4", "model.embedding_dim=4", "training.batch_size=4",
                                       "training.learning_rate=0.01", "training.lr_schedule=constant",
                                       "training.epochs=8", "training.early_stopping_patience=2",
                                       "training.ema_momentum=0"])
    rng = np.random.default_rng(0)
    rows = ({"token_ids": rng.integers(1, 20, size=(24, 6))}, tf.one_hot(rng.integers(0, 2, size=24), 2))
    scripted = iter([0.2, 0.9, 0.5, 0.95, 0.4, 0.3, 0.99, 0.1])  # best 0.95 at epoch 4; stops after 6
    weights_at = []

    class Data(_RowsData):
        monitor = ("val_score", "max")

        def eval_scores(self, model):
            weights_at.append([w.copy() for w in model.get_weights()])
            return {"score": next(scripted)}

    def build():
        return build_text_classifier(config.model, config.training, vocab_size=20, num_classes=2,
                                     input_name="token_ids")

    model, history, _ = fit(config, types.SimpleNamespace(model_run_dir=str(tmp_path), base_model=None), build,
                            Data(rows, eval_rows=8))
    assert history.history["val_score"] == [0.2, 0.9, 0.5, 0.95, 0.4, 0.3]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights_at[3]))
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights_at[-1]))
    summary = history_summary(history, Data.monitor)
    assert summary["monitor"] == "val_score" and summary["best_epoch"] == 4
    # Without the task's score in the history (the multi-worker loop), val_loss decides.
    history.history.pop("val_score")
    assert history_summary(history, Data.monitor)["monitor"] == "val_loss"


def test_weight_averaging_evaluates_keeps_and_returns_the_averaged_weights(tmp_path):
    """With `training.ema_momentum`, every epoch is evaluated (val_loss and the task's own score)
    on the moving average of the weights, the best epoch's averages are the model fit returns,
    and the raw weights keep training undisturbed (the same training losses as without it)."""
    import types

    from rnnflow.components.training.trainer import fit

    rng = np.random.default_rng(0)
    rows = ({"token_ids": rng.integers(1, 20, size=(32, 6))}, tf.one_hot(rng.integers(0, 2, size=32), 2))
    scored = []

    def run(momentum, monitor=None):
        config = load_config("sentiment", [
            "model.units=4", "model.embedding_dim=4", "model.dropout=0", "training.batch_size=4",
            "training.learning_rate=0.05", "training.lr_schedule=constant", "training.epochs=6",
            "training.early_stopping_patience=6", f"training.ema_momentum={momentum}"])
        data = _RowsData(rows, eval_rows=12)
        if monitor:  # a task's own score, computed by the Trainer's callback on the model it is given
            data.monitor = ("val_score", "max")
            data.eval_scores = lambda model: scored.append(model.evaluate(data.eval(), verbose=0)[0]) or {
                "score": -scored[-1]}
        build = functools.partial(build_text_classifier, config.model, config.training, vocab_size=20,
                                  num_classes=2, input_name="token_ids")
        model, history, _ = fit(config, types.SimpleNamespace(model_run_dir=str(tmp_path / str(momentum)),
                                                              base_model=None), build, data)
        return model, history.history, float(model.evaluate(data.eval(), verbose=0)[0])

    _, plain, plain_loss = run(0)
    model, averaged, averaged_loss = run(0.8)
    np.testing.assert_allclose(averaged["loss"], plain["loss"], rtol=1e-4)  # the same raw training
    assert not np.allclose(averaged["val_loss"], plain["val_loss"], rtol=1e-4)  # another model evaluated
    for history, final in ((plain, plain_loss), (averaged, averaged_loss)):
        assert final == pytest.approx(min(history["val_loss"]), rel=1e-5)  # the best epoch kept, as scored
    optimizer = model.optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == pytest.approx(0.8)
    # A task's own score reads the averages too: the same losses as the eval split's val_loss.
    _, monitored, _ = run(0.8, monitor=True)
    np.testing.assert_allclose(scored, monitored["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(monitored["val_loss"], averaged["val_loss"], rtol=1e-4)
