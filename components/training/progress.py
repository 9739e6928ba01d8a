"""Live training progress and the training time budget, as one Keras callback.

During an epoch a line at least every `interval` seconds, and one at each epoch end:

    epoch 2/15  step 120/420 (29%)  850 ex/s  loss 0.5120 accuracy 0.7500  epoch left 0:35  run left <= 8:20

"run left" assumes every remaining epoch runs (early stopping may end sooner). The lines go
to stdout, which is the console on a local run and the step's log on Kubeflow/Vertex, and to
the run log. Per epoch it records train and eval examples/s for the run summary. With a time
budget (`max_seconds`) it stops training after the step that crosses it; Keras still
evaluates that (partial) epoch, so early stopping's best weights are kept. Given the optimizer's
learning-rate `schedule` (one with `fit_to`, models/recurrent.py's BudgetedCosineDecay), it also
fits the decay to the budget from the measured time per step (eval included, the first
`WARMUP_STEPS` left out: they trace and compile), so a run the budget ends is annealed.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

import keras

from rnnflow.components.common import interrupts

log = logging.getLogger(__name__)
PROGRESS_PREFIX = "      "  # training lines sit under the runner's Trainer / Tuner line
WARMUP_STEPS = 10


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TrainingProgress(keras.callbacks.Callback):
    def __init__(self, *, epochs: int, batch_size: int, steps_per_epoch: int | None = None,
                 interval: float = 30.0, max_seconds: float | None = None, prefix: str = "", schedule=None,
                 echo: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.epochs = epochs
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.interval = interval
        self.max_seconds = max_seconds
        self.prefix = prefix
        self.schedule = schedule
        self._echo = echo or (lambda line: print(line, flush=True))
        self._clock = clock
        self.epoch_records: list[dict] = []
        self.stopped_by_budget: str | None = None
        # {"planned_steps", "fitted_steps"} once the budget shortened the learning-rate decay.
        self.lr_decay: dict | None = None

    # -- train ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._train_start = self._clock()
        self._epoch_seconds: list[float] = []
        self._global_steps, self._reference = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = self._last_line = self._clock()
        self._steps, self._train_seconds = 0, 0.0
        self._eval_seconds, self._eval_steps = 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        interrupts.check("during training")  # a stop request that landed in TensorFlow's own callbacks
        self._steps = batch + 1
        self._global_steps += 1
        now = self._clock()
        if self._global_steps == WARMUP_STEPS:
            self._reference = (now, self._global_steps)
        self._train_seconds = now - self._epoch_start
        if self.max_seconds is not None and now - self._train_start >= self.max_seconds \
                and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped_by_budget = (f"stopped after {_clock_text(now - self._train_start)}, at step {self._steps} "
                                      f"of epoch {self._epoch + 1}, by the time budget")
            self._say(self.stopped_by_budget)
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._say(self._line(logs or {}, now))
            self._fit_schedule(now)

    # -- eval inside fit ----------------------------------------------------------------------
    def on_test_begin(self, logs=None):
        self._eval_start = self._clock()

    def on_test_batch_end(self, batch, logs=None):
        self._eval_steps = batch + 1

    def on_test_end(self, logs=None):
        self._eval_seconds = self._clock() - self._eval_start

    def on_epoch_end(self, epoch, logs=None):
        now = self._clock()
        logs = logs or {}
        if self.stopped_by_budget is None:
            self.steps_per_epoch = self._steps  # a full epoch's count beats an estimate
        self._epoch_seconds.append(now - self._epoch_start)
        record = {"epoch": epoch + 1, "steps": self._steps, "seconds": round(now - self._epoch_start, 2),
                  "train_examples_per_second": _rate(self._steps * self.batch_size, self._train_seconds),
                  "eval_examples_per_second": _rate(self._eval_steps * self.batch_size, self._eval_seconds)}
        self.epoch_records.append(record)
        self._fit_schedule(now)
        metrics = _metrics_text(logs)
        left = (self.epochs - epoch - 1) * (sum(self._epoch_seconds) / len(self._epoch_seconds))
        self._say(f"epoch {epoch + 1}/{self.epochs} done in {_clock_text(record['seconds'])}  "
                  f"{record['train_examples_per_second']:.0f} ex/s train, "
                  f"{record['eval_examples_per_second']:.0f} ex/s eval  {metrics}"
                  + (f"  run left <= {_clock_text(left)}" if epoch + 1 < self.epochs else ""))

    # -------------------------------------------------------------------------------------------
    def _fit_schedule(self, now: float) -> None:
        """Points the learning-rate decay at the last step the budget leaves time for."""
        if self.schedule is None or self.max_seconds is None or self._reference is None \
                or self.stopped_by_budget is not None:
            return
        start, steps = self._reference
        if self._global_steps <= steps or now <= start:
            return
        per_step = (now - start) / (self._global_steps - steps)
        left = max(0.0, self.max_seconds - (now - self._train_start))
        fits = self._global_steps + int(left / per_step)
        planned = self.schedule.planned_steps
        if fits >= planned and self.lr_decay is None:
            return
        fitted = self.schedule.fit_to(fits)
        if self.lr_decay is None:
            self._say(f"the time budget leaves about {fitted} of the {planned} planned steps: "
                      "the learning rate now decays over those")
        self.lr_decay = {"planned_steps": planned, "fitted_steps": fitted}

    def _line(self, logs: dict, now: float) -> str:
        elapsed = now - self._epoch_start
        rate = self._steps * self.batch_size / elapsed if elapsed > 0 else 0.0
        metrics = _metrics_text(logs)
        line = f"epoch {self._epoch + 1}/{self.epochs}  step {self._steps}"
        if self.steps_per_epoch:
            line += f"/{self.steps_per_epoch} ({100 * self._steps / self.steps_per_epoch:.0f}%)"
        line += f"  {rate:.0f} ex/s  {metrics}"
        if self.steps_per_epoch and self._steps:
            epoch_left = elapsed / self._steps * max(0, self.steps_per_epoch - self._steps)
            per_epoch = elapsed / self._steps * self.steps_per_epoch
            run_left = epoch_left + (self.epochs - self._epoch - 1) * per_epoch
            line += f"  epoch left {_clock_text(epoch_left)}  run left <= {_clock_text(run_left)}"
        return line

    def _say(self, line: str) -> None:
        log.info("%s", line)
        self._echo(f"{self.prefix}{line}")


def _metrics_text(logs: dict) -> str:
    """"loss 0.5120  accuracy 0.7500  val_loss ...": losses first, in Keras' order otherwise."""
    keys = sorted(logs, key=lambda k: (k.endswith("loss") is False, k.startswith("val_")))
    return "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys if _is_number(logs[k]))


def _rate(examples: int, seconds: float) -> float:
    return round(examples / seconds, 1) if seconds > 0 else 0.0


def _is_number(value) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False
