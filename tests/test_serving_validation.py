"""Serving validation's knowledge of TF Serving releases (components/serving/serving_validation.py); the
checks on real pushed models run in the end-to-end tests."""

import glob
import json
import os
import shutil
import socket
import sys

import pytest

from rnnflow.components.serving import serving_validation
from rnnflow.components.serving.serving_validation import check, describe, missing_text_ops, model_server_round_trip
from rnnflow.pipeline.config import ConfigError, load_config

OURS = {"NormalizeUTF8", "CaseFoldUTF8", "UnicodeScriptTokenizeWithOffsets"}


def test_each_release_lacks_the_text_ops_it_did_not_bundle():
    assert missing_text_ops("2.1", OURS) == {"NormalizeUTF8", "CaseFoldUTF8"}
    assert missing_text_ops("2.0", {"WordpieceTokenizeWithOffsets"}) == set()
    assert missing_text_ops("2.12", OURS) == set()
    assert missing_text_ops("2.19", OURS | {"TFText>Utf8Binarize"}) == {"TFText>Utf8Binarize"}
    assert missing_text_ops("2.20", OURS | {"TFText>Utf8Binarize"}) == set()


@pytest.mark.parametrize("value, message", [
    ("'2.5'", "serving.tf_serving_version: 2.5: rnnflow knows the TF Text ops of TF Serving 2.0, 2.1, 2.12 to 2.19"),
    ("'latest'", "serving.tf_serving_version: 'latest' is not a TF Serving release such as 2.16"),
    ("2.10", "serving.tf_serving_version: expected a string, got the number 2.1: write it in quotes"),
])
def test_an_unknown_release_is_a_config_error_naming_the_field(value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config("sentiment", [f"serving.tf_serving_version={value}"])
    assert load_config("sentiment", ["serving.tf_serving_version='2.19'"]).serving.tf_serving_version == "2.19"


def test_the_readable_report_says_why_a_model_is_not_servable():
    text = describe({"model": "/m/1", "problems": ["the model does not load and answer in a clean TensorFlow "
                                                     "process: KeyError: 'X'"]})
    assert text.splitlines()[:3] == ["serving validation of /m/1", "result: NOT servable",
                                     "problem: the model does not load and answer in a clean TensorFlow process: "
                                     "KeyError: 'X'"]


# The model-server round trip, over tests/tf_serving_double.py put on PATH as
# `tensorflow_model_server` (the real binary cannot be installed here): a localhost double of the
# server's REST API and gRPC PredictionService on the real protos. The pipeline's own runs find
# no binary and record that they skipped it.

def fake_model_server(tmp_path) -> str:
    double = os.path.join(os.path.dirname(__file__), "tf_serving_double.py")
    path = tmp_path / "bin" / "tensorflow_model_server"
    path.parent.mkdir()
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {double} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def validated(sentiment_run):
    output_dir = sentiment_run.output_dir
    summary = json.loads((output_dir / "run_summary.json").read_text())
    return summary["pushed_model"], summary["serving_validation"]


def artifact_file(sentiment_run, pattern):
    output_dir = sentiment_run.output_dir
    [path] = glob.glob(str(output_dir / "pipeline_root" / pattern))
    return path


@pytest.mark.e2e
def test_the_model_server_round_trip_answers_as_the_clean_process_over_rest_and_grpc(validated, tmp_path):
    model_dir, report = validated
    assert report["model_server"] == {"skipped": "tensorflow_model_server is not on PATH"} or shutil.which(
        "tensorflow_model_server")
    result = model_server_round_trip(model_dir, report["round_trip"], binary=fake_model_server(tmp_path))
    assert result["problems"] == []
    for transport in ("rest", "grpc"):
        assert result[transport]["rows"] == len(report["round_trip"]["request"]["text"]) > 0
        assert result[transport]["differences"]["probabilities"] <= 1e-5
        assert result[transport]["differences"]["label"] == 0.0


@pytest.mark.e2e
def test_a_model_server_that_refuses_the_model_fails_with_its_words(validated, tmp_path):
    model_dir, report = validated
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    result = model_server_round_trip(str(broken), report["round_trip"], binary=fake_model_server(tmp_path))
    [problem] = result["problems"]
    assert problem.startswith("tensorflow_model_server refused the model: UNKNOWN: DecodeError")


@pytest.mark.e2e
def test_a_port_in_use_is_retried_on_another(validated, tmp_path, monkeypatch):
    model_dir, report = validated
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free = serving_validation._free_port
        monkeypatch.setattr(serving_validation, "_free_port", lambda: next(ports, None) or free())
        result = model_server_round_trip(model_dir, report["round_trip"], binary=fake_model_server(tmp_path))
    assert result["problems"] == [] and result["rest"]["differences"]["probabilities"] <= 1e-5


@pytest.mark.e2e
def test_serving_that_disagrees_with_the_trainers_own_predictions_is_skew(validated, sentiment_run, tmp_path):
    model_dir, report = validated
    skew = report["skew"]
    assert skew["examples"] > 0 and skew["outputs"]["probabilities"]["within_tolerance"]
    # The Trainer's record for this model, with its probabilities shifted as a skewed serving
    # graph (another padding, a missing normalization) would shift them.
    recorded = json.loads(open(artifact_file(sentiment_run, "Trainer/model/*/serving_reference.json")).read())
    assert len(recorded["examples"]) == skew["examples"]
    recorded["outputs"]["probabilities"] = [[p[0] - 0.05, p[1] + 0.05] for p in recorded["outputs"]["probabilities"]]
    tampered = tmp_path / "serving_reference.json"
    tampered.write_text(json.dumps(recorded))
    result = check(model_dir, artifact_file(sentiment_run, "CsvExampleGen/examples/*/Split-eval/*"),
                   tf_serving_version="2.16", examples_signature="serving_examples", sample=8,
                   reference_file=str(tampered))
    assert any(p.startswith("training/serving skew: serving_default answers the Trainer's own predictions")
               for p in result["problems"]), result["problems"]
    assert result["skew"]["outputs"]["probabilities"]["max_abs_difference"] == pytest.approx(0.05, abs=1e-4)
