"""Shared fixtures: small real data and one end-to-end run reused by several test modules."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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


def predict_with_model_server(model_base_path: str, model_name: str, body: dict) -> dict:
    """POSTs `body` to a real tensorflow_model_server's REST :predict; skips where there is none."""
    if shutil.which("tensorflow_model_server") is None:
        pytest.skip("tensorflow_model_server is not on PATH (not installable here: no PyPI/Debian "
                    "package, no Docker); the graph-level serving checks still run")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["tensorflow_model_server", f"--rest_api_port={port}",
                               f"--model_name={model_name}", f"--model_base_path={model_base_path}"])
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model_name}:predict",
                                         data=json.dumps(body).encode())
        for _ in range(60):
            try:
                return json.loads(urllib.request.urlopen(request, timeout=5).read())
            except OSError:
                time.sleep(1)
        raise AssertionError(f"tensorflow_model_server answered nothing on port {port}")
    finally:
        server.terminate()
