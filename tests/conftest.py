"""Shared fixtures: small real data and one end-to-end run reused by several test modules."""

import csv
import os
import subprocess
import sys
from importlib import resources

import pytest

IMDB_SAMPLE = "pkg://tfx/examples/imdb/data/imdb_small_with_labels.txt"
# Few epochs and no quality bar: the end-to-end tests check plumbing and contract, not
# accuracy (test_not_blessed_run_pushes_nothing covers the quality gate).
FAST_OVERRIDES = ["training.epochs=2", "task.max_tokens=64", "model.units=8", "model.embedding_dim=8",
                  "evaluation.lower_bound=0.0"]


def imdb_sample_path() -> str:
    return str(resources.files("tfx").joinpath("examples/imdb/data/imdb_small_with_labels.txt"))


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run_cli(args, cwd=None, timeout=900):
    """Runs `rnnflow` in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "rnnflow.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="session")
def sentiment_run(tmp_path_factory):
    """One full `rnnflow run --config sentiment` into a fresh output dir."""
    output_dir = tmp_path_factory.mktemp("sentiment_run")
    args = ["run", "--config", "sentiment", "--output-dir", str(output_dir)]
    for override in FAST_OVERRIDES:
        args += ["--set", override]
    result = run_cli(args)
    return output_dir, result
