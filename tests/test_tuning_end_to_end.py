"""Tuning inside the pipeline: two tiny trials feed their best hyperparameters to the Trainer."""

import json
import shutil

import pytest

from conftest import FAST_OVERRIDES, run_cli

pytestmark = pytest.mark.e2e

TUNING = ["tuning.enabled=true", "tuning.max_trials=2", "tuning.epochs_per_trial=1",
          "tuning.search_space={model.cell: [gru, mingru], "
          "training.learning_rate: {min: 0.001, max: 0.01, sampling: log}}"]


def _run(output_dir, overrides):
    args = ["run", "--config", "sentiment", "--output-dir", str(output_dir)]
    for override in [*FAST_OVERRIDES, *overrides]:
        args += ["--set", override]
    result = run_cli(args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result, json.loads((output_dir / "run_summary.json").read_text())


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("tuned")
    return output_dir, *_run(output_dir, TUNING)


def test_trainer_uses_the_best_trial(tuned):
    _, result, summary = tuned
    assert summary["status"] == "succeeded"
    trials = summary["trials"]
    assert len(trials) == 2
    best = min(trials, key=lambda t: t["score"])  # objective val_loss: lower is better
    assert summary["hyperparameters"] == {"model.cell": best["model.cell"],
                                          "training.learning_rate": best["training.learning_rate"]}
    assert summary["model"]["cell"] == best["model.cell"]
    assert "Tuner" in [c["name"] for c in summary["components"]]


def test_one_progress_line_per_trial(tuned):
    _, result, summary = tuned
    trial_lines = [line for line in result.stdout.splitlines() if line.strip().startswith("trial ")]
    assert len(trial_lines) == 2
    assert all("model.cell=" in line and "val_loss=" in line for line in trial_lines)
    assert "Results summary" not in result.stdout  # keras-tuner's own report goes to the log


def test_reuse_best_hyperparameters_without_searching(tuned, tmp_path):
    tuned_dir, _, first = tuned
    # A copy of the tuned run: data components come from the cache, the Tuner is replaced.
    shutil.copytree(tuned_dir, tmp_path / "reuse")
    _, summary = _run(tmp_path / "reuse", [f"tuning.reuse_from={tuned_dir}"])
    names = [c["name"] for c in summary["components"]]
    assert "Tuner" not in names and "hyperparameters_importer" in names
    assert summary["hyperparameters"] == first["hyperparameters"]
    assert summary["model"]["cell"] == first["hyperparameters"]["model.cell"]
