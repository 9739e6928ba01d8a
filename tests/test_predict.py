"""`rnnflow predict` and its Python client on both built-in tasks' pushed models, over the three
transports: the SavedModel directory, TF Serving's REST API and its gRPC PredictionService.

REST and gRPC here are served by tests/tf_serving_double.py, a localhost double of
tensorflow_model_server built on the real client libraries and protos (the binary cannot be
installed here); `test_predict_through_a_real_model_server` runs the same over the real binary
when it is on PATH and skips otherwise.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import last_window_request, real_model_server, run_cli, write_csv
from rnnflow.components.serving.batch_scoring import InputFileError, predict_file
from rnnflow.components.serving.serving_client import ServingError, open_model
from tf_serving_double import ModelServerDouble

pytestmark = pytest.mark.e2e
TRANSPORTS = ("local", "rest", "grpc")
ONE_MEGABYTE_TEXT = ("a long and winding review of a film " * 30000)[:1 << 20]


def serving_dir(summary) -> str:
    return os.path.dirname(summary["pushed_model"])


@pytest.fixture(scope="module")
def sentiment_servers(sentiment_run):
    output_dir, result, _ = sentiment_run
    summary = json.loads((output_dir / "run_summary.json").read_text())
    with ModelServerDouble("sentiment", serving_dir(summary)) as server:
        yield summary, {"local": serving_dir(summary), "rest": server.rest_url, "grpc": f"grpc://{server.grpc_address}"}


@pytest.fixture(scope="module")
def forecast_servers(weather):
    _, _, summary = weather
    with ModelServerDouble("forecast", serving_dir(summary)) as server:
        yield summary, {"local": serving_dir(summary), "rest": server.rest_url, "grpc": f"grpc://{server.grpc_address}"}


def reviews_csv(path):
    rows = [["r1", "A moving, beautifully acted film."], ["r2", ""], ["r3", ONE_MEGABYTE_TEXT],
            ["r4", "Dull, predictable and far too long."]]
    write_csv(path, ["id", "text", "stars"], [[i, t, 3] for i, t in rows])
    # Line 6: a review whose bytes are not UTF-8.
    with open(path, "ab") as f:
        f.write(b'r5,"caf\xe9 scene was fine",4\n')
    return str(path)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_predict_scores_reviews_with_ids_and_reports_the_unscorable_row_by_line(sentiment_servers, transport,
                                                                               tmp_path):
    _, targets = sentiment_servers
    output = tmp_path / "scored.jsonl"
    report = predict_file(targets[transport], reviews_csv(tmp_path / "reviews.csv"), str(output),
                          model_name="sentiment", batch_size=3, progress=False)
    rows = read_jsonl(output)
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4"]
    for row in rows:
        assert set(row) == {"id", "probabilities", "label"}
        assert len(row["probabilities"]) == 2 and abs(sum(row["probabilities"]) - 1) < 1e-5
        assert row["label"] in ("0", "1")
    assert report.scored == 4
    assert report.failed == [("line 6", "column `text`: invalid UTF-8 (byte 0xe9 at character 3)")]


def _same_answers_on_every_transport(targets, name, inputs) -> dict:
    answers = {}
    for transport, target in targets.items():
        with open_model(target, name) as model:
            assert set(model.inputs) == set(inputs)
            answers[transport] = model.predict(inputs)
    for transport in ("rest", "grpc"):
        for key, value in answers["local"].items():
            if value.dtype == object:
                assert [to_text(v) for v in answers[transport][key]] == [to_text(v) for v in value]
            else:
                np.testing.assert_allclose(answers[transport][key], value, rtol=1e-5, atol=1e-6)
    return answers


# One test per task, so each reads one shared run (conftest groups tests by the run they read).
def test_the_three_transports_answer_the_same_for_a_classifier(sentiment_servers):
    _, targets = sentiment_servers
    answers = _same_answers_on_every_transport(targets, "sentiment", {"text": ["A fine film.", "", "Awful."]})
    assert answers["local"]["probabilities"].shape == (3, 2)


def test_the_three_transports_answer_the_same_for_a_forecaster(forecast_servers, weather_config):
    _, targets = forecast_servers
    answers = _same_answers_on_every_transport(targets, "forecast", last_window_request(weather_config))
    assert answers["local"]["forecast"].shape == (1, weather_config.task.horizon, 1)


def to_text(value):
    return value.decode() if isinstance(value, bytes) else value


def forecast_windows(config, path, fmt):
    """Three windows; the second has a `wind` window 5 steps long."""
    request = last_window_request(config)
    rows = []
    for k in range(3):
        row = {"id": f"w{k}", **{c: v[0] for c, v in request.items()}}
        if k == 1:
            row["wind"] = row["wind"][:5]
        rows.append(row)
    if fmt == "jsonl":
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif fmt == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:  # a CSV cell holds a window as space-separated numbers
        pd.DataFrame([{k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()}
                      for r in rows]).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("transport, fmt", [("local", "jsonl"), ("rest", "parquet"), ("grpc", "csv")])
def test_predict_forecasts_windows_and_names_the_row_with_the_wrong_window_length(forecast_servers, weather_config,
                                                                                transport, fmt, tmp_path):
    _, targets = forecast_servers
    output = tmp_path / "forecasts.parquet"
    report = predict_file(targets[transport], forecast_windows(weather_config, tmp_path / f"windows.{fmt}", fmt),
                          str(output), model_name="forecast", progress=False)
    frame = pd.read_parquet(output)
    assert list(frame["id"]) == ["w0", "w2"]
    forecasts = np.stack([np.stack(f) for f in frame["forecast"]])
    assert forecasts.shape == (2, weather_config.task.horizon, 1)
    assert 0.0 < forecasts.mean() < 15.0  # late-December Seattle, degrees Celsius
    [(where, why)] = report.failed
    assert where == ("row 2" if fmt == "parquet" else "line 2" if fmt == "jsonl" else "line 3")
    assert f"input `wind` has 5 steps; this model takes {weather_config.task.lookback}" in why


def test_predict_cli_exits_3_when_rows_are_skipped_and_strict_writes_nothing(sentiment_servers, tmp_path):
    _, targets = sentiment_servers
    reviews = reviews_csv(tmp_path / "reviews.csv")
    output = tmp_path / "out.csv"
    result = run_cli(["predict", "--model", targets["rest"], "--input", reviews, "--output", str(output)])
    assert result.returncode == 3, result.stderr
    assert "scored 4 rows" in result.stderr and "line 6: column `text`: invalid UTF-8" in result.stderr
    assert pd.read_csv(output)["id"].tolist() == ["r1", "r2", "r3", "r4"]
    strict = tmp_path / "strict.csv"
    result = run_cli(["predict", "--model", targets["local"], "--input", reviews, "--output", str(strict), "--strict"])
    assert result.returncode == 1
    assert "line 6: column `text`: invalid UTF-8" in result.stderr and "--strict: nothing written" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "reviews.csv"]  # no strict.csv, no partial file


def test_predict_reads_jsonl_from_stdin_and_writes_jsonl_to_stdout(sentiment_servers):
    import subprocess
    import sys

    _, targets = sentiment_servers
    lines = "".join(json.dumps({"text": t}) + "\n" for t in ["Great.", "Bad."])
    result = subprocess.run([sys.executable, "-m", "rnnflow.pipeline.cli", "predict", "--model", targets["grpc"],
                             "--model-name", "sentiment", "--input", "-"], input=lines, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2] and all(len(r["probabilities"]) == 2 for r in rows)


@pytest.mark.parametrize("content, message", [
    ("review,stars\nfine,3\n", "no column `text` for the input of model"),
    ("", "empty file (no header row, no rows to score)"),
    ("id,text\n", "no rows to score"),
])
def test_a_file_that_cannot_be_scored_stops_before_writing_anything(sentiment_servers, tmp_path, content, message):
    _, targets = sentiment_servers
    path = tmp_path / "in.csv"
    path.write_text(content)
    with pytest.raises(InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        predict_file(targets["local"], str(path), str(tmp_path / "out.jsonl"), progress=False)
    assert os.listdir(tmp_path) == ["in.csv"]


def test_unreachable_servers_and_missing_signatures_name_the_model(sentiment_servers):
    from conftest import free_port

    _, targets = sentiment_servers
    port = free_port()
    with pytest.raises(ServingError, match=rf"cannot reach model http://127.0.0.1:{port}/v1/models/sentiment: "
                                           r"\[Errno 111\] Connection refused"):
        open_model(f"http://127.0.0.1:{port}/v1/models/sentiment")
    with pytest.raises(ServingError, match=rf"cannot reach model sentiment at grpc://127.0.0.1:{port}: UNAVAILABLE"):
        open_model(f"127.0.0.1:{port}", "sentiment", timeout=5)
    with pytest.raises(ServingError, match=r"has no signature 'predict' \(it has evaluation_examples, "
                                           r"serving_default, serving_examples, transform_features\)"):
        open_model(targets["local"], signature="predict")
    with pytest.raises(ServingError, match="has no signature 'predict'"):
        open_model(targets["rest"], signature="predict")


def test_predict_through_a_real_model_server(sentiment_servers, tmp_path):
    summary, _ = sentiment_servers
    with real_model_server(serving_dir(summary), "sentiment") as (url, grpc_address):
        for target in (url, f"grpc://{grpc_address}"):
            output = tmp_path / "out.jsonl"
            report = predict_file(target, reviews_csv(tmp_path / "reviews.csv"), str(output), model_name="sentiment",
                                  progress=False)
            assert report.scored == 4 and len(read_jsonl(output)) == 4
