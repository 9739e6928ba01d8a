"""Tuning inside the pipeline: two tiny trials feed their best hyperparameters to the Trainer."""

import json
import shutil

import pytest

from conftest import FAST_OVERRIDES, run_cli

pytestmark = pytest.mark.e2e

# task.max_tokens back to auto (FAST_OVERRIDES fixes it): these runs check Transform's measurement.
DATA = ["task.max_tokens=auto"]
TUNING = [*DATA, "tuning.enabled=true", "tuning.max_trials=2", "tuning.epochs_per_trial=1",
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


def test_auto_max_tokens_is_measured_by_transform_and_cuts_texts_in_serving(tuned):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    output_dir, _, summary = tuned
    values = summary["resolved"]["values"]
    max_tokens = values["task.max_tokens"]
    # The sample's reviews: the 95th percentile of about 75 lengths, rounded up to a multiple of 8.
    assert max_tokens % 8 == 0 and 8 < max_tokens <= 1024
    assert summary["resolved"]["measured"]["p95_tokens"] <= max_tokens < summary["resolved"]["measured"]["p95_tokens"] + 8
    # A tuned value is not auto any more: the resolution leaves it alone.
    assert "training.learning_rate" not in values and "training.batch_size" in values
    facts = json.loads(next(output_dir.glob("pipeline_root/Trainer/model/*/rnnflow_facts.json")).read_text())
    assert facts["config"]["task"]["max_tokens"] == max_tokens
    # Serving truncates at the resolved length: words past it change nothing.
    serve = tf.saved_model.load(summary["pushed_model"]).signatures["serving_default"]
    kept = " ".join(["good", "film"] * (max_tokens // 2))
    probabilities = serve(text=tf.constant([kept, kept + " awful" * 50]))["probabilities"].numpy()
    assert probabilities[0] == pytest.approx(probabilities[1], abs=1e-6)


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
    _, summary = _run(tmp_path / "reuse", [*DATA, f"tuning.reuse_from={tuned_dir}"])
    names = [c["name"] for c in summary["components"]]
    assert "Tuner" not in names and "hyperparameters_importer" in names
    assert summary["hyperparameters"] == first["hyperparameters"]
    assert summary["model"]["cell"] == first["hyperparameters"]["model.cell"]
