"""A stop request (SIGTERM, Ctrl-C) is never lost: wherever the signal lands (a weakref callback
that swallows the exception, a Beam stage that wraps it, the Trainer, the Pusher), the run stops
at the next safe point, pushes nothing, and ends `interrupted` with exit code 130."""

import gc
import json
import os
import signal
import subprocess
import sys
import time
import weakref

import pytest

from conftest import FAST_OVERRIDES
from rnnflow.components.common import interrupts


@pytest.fixture(autouse=True)
def no_request_left_behind():
    interrupts.clear()
    yield
    interrupts.clear()


def test_a_signal_that_lands_in_a_weakref_callback_is_still_recorded(monkeypatch):
    class Thing:
        pass

    lost = []  # what Python prints as "Exception ignored in: <function ...>"
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: lost.append(unraisable.exc_type))

    with interrupts.stop_on_signals():
        thing = Thing()
        # The handler runs inside the callback; Python prints "Exception ignored" and goes on.
        reference = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGTERM))
        del thing
        gc.collect()
        assert reference() is None
        assert interrupts.requested() == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="SIGTERM: stopped before Pusher"):
            interrupts.check("before Pusher")
    assert lost == [KeyboardInterrupt]  # the exception itself was lost


def test_a_signal_that_lands_in_a_beam_stage_is_recorded_however_beam_reports_it():
    import apache_beam as beam

    def stage(element):
        if element == 3:
            signal.raise_signal(signal.SIGTERM)
        return element

    with interrupts.stop_on_signals():
        with pytest.raises(BaseException) as raised:  # noqa: PT011 (Beam wraps it in its own way)
            with beam.Pipeline() as pipeline:
                _ = pipeline | beam.Create(range(5)) | beam.Map(stage)
        assert interrupts.requested() == "SIGTERM", raised.value
        with pytest.raises(interrupts.RunInterrupted):
            interrupts.check("in Transform")


def test_the_handlers_are_restored_and_the_request_cleared_on_the_next_use():
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
        interrupts.request("SIGTERM")
    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupts.requested() is None  # a later run in this process (a notebook's) starts clean
    interrupts.check("anywhere")
    with interrupts.stop_on_signals():
        assert interrupts.requested() is None


def test_the_pusher_makes_no_version_visible_after_a_request(tmp_path):
    from rnnflow.components.serving import atomic_pusher

    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"pb")
    base = tmp_path / "serving"
    interrupts.request("SIGTERM")
    with pytest.raises(interrupts.RunInterrupted, match="before the push"):
        atomic_pusher.push(str(model), str(base))
    assert os.listdir(base) == []  # no version, no staging left behind
    interrupts.clear()
    assert os.path.basename(atomic_pusher.push(str(model), str(base))).isdigit()


def test_training_stops_at_the_next_step_after_a_request():
    import keras
    import numpy as np

    from rnnflow.components.training.progress import TrainingProgress

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    seen = []

    class RequestAtStep3(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)
            if batch == 3:
                interrupts.request("SIGTERM")

    progress = TrainingProgress(epochs=2, batch_size=1, interval=3600)
    with pytest.raises(interrupts.RunInterrupted, match="during training"):
        model.fit(np.zeros((20, 2)), np.zeros(20), batch_size=1, epochs=2, verbose=0,
                  callbacks=[RequestAtStep3(), progress])
    assert seen == [0, 1, 2, 3]


def _run_until(output_dir, component: str):
    """Starts `rnnflow run --config sentiment` and returns once `component` has started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "sentiment", "--output-dir",
         str(output_dir), *[a for o in FAST_OVERRIDES for a in ("--set", o)]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = []
    for line in process.stdout:
        lines.append(line)
        if f"] {component} ..." in line:
            return process, lines
    process.wait()
    raise AssertionError("the run ended before " + component + ":\n" + "".join(lines) + process.stderr.read())


@pytest.mark.e2e
@pytest.mark.parametrize("component, delay", [("Transform", 3.0), ("Trainer", 6.0)])
def test_sigterm_inside_a_component_ends_the_run_interrupted_and_pushes_nothing(tmp_path, component, delay):
    process, lines = _run_until(tmp_path, component)
    time.sleep(delay)  # inside Transform's Beam stages, or the Trainer's epochs
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, "".join(lines) + stdout + stderr[-3000:]
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] == "interrupted (SIGTERM)"
    assert summary["pushed_model"] is None and not (tmp_path / "serving").exists()
    states = [(c["name"], c["state"]) for c in summary["components"]]  # in pipeline order
    # The component the signal stopped is `interrupted` (none, if it landed between two), and
    # nothing after it ran: the timing of the signal decides which one it was.
    stopped = next(i for i, (_, state) in enumerate(states) if state not in ("complete", "nothing_to_resolve"))
    assert states[stopped][1] in ("interrupted", "not_run"), states
    assert all(state == "not_run" for _, state in states[stopped + 1:]), states
    assert [name for name, _ in states].index(component) <= stopped, states  # not before it started
