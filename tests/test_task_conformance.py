"""One set of checks over every registered task (as NeuralForecast runs one test over its model
registry): a new task gets them by registering itself and shipping a built-in config.

Each task is checked for what the pipeline asks of it (config sections, dotted user functions,
its serving signature), its built-in config round trip, and one finished run of that config:
summary fields, a pushed model that serving validation passed without skew, and the export
contract in a fresh process that imports only tensorflow and tensorflow_text. The runs are the
session runs of the harness table (conftest `HARNESS`, one row per registered task), which the
task's own tests and its notebook test share.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import HARNESS
from rnnflow.components.tasks import get_task, task_names
from rnnflow.components.tasks.base import load_dotted
from rnnflow.pipeline.config import builtin_config_names, load_config, parse_config, read_raw_config

def test_the_harness_has_one_row_per_registered_task_and_each_runs_a_builtin_config_of_it():
    assert sorted(HARNESS) == sorted(task_names())
    for task_type, harness in HARNESS.items():
        assert harness.config in builtin_config_names(), harness.config
        assert read_raw_config(harness.config)["task"]["type"] == task_type
        assert load_config(harness.config, list(harness.overrides)).task_type == task_type


@pytest.mark.parametrize("task_type", task_names())
def test_each_task_declares_what_the_pipeline_asks_of_it(task_type):
    task = get_task(task_type)
    assert task.name == task_type
    for cls in (task.task_config_cls, task.data_config_cls, task.evaluation_config_cls):
        assert dataclasses.is_dataclass(cls)
    for dotted in (task.preprocessing_fn, task.run_fn, task.tuner_fn):
        assert callable(load_dotted(dotted)), dotted
    assert isinstance(task.examples_signature, str) and task.examples_signature
    assert "train" in task.splits and "eval" in task.splits


@pytest.mark.parametrize("task_type", task_names())
def test_each_builtin_config_round_trips(task_type):
    config = load_config(HARNESS[task_type].config)
    assert config.task_type == task_type
    assert parse_config(config.to_dict()).to_dict() == config.to_dict()
    assert isinstance(config.task, get_task(task_type).task_config_cls)


@pytest.fixture(scope="module", params=task_names())
def finished_run(request, task_run):
    return request.param, task_run(request.param).summary


@pytest.mark.e2e
def test_each_task_run_reports_its_metrics_and_pushes_a_servable_model(finished_run):
    task_type, summary = finished_run
    task = get_task(task_type)
    assert summary["status"] == "succeeded" and summary["pushed_model"]
    assert summary["metrics"] and set(task.headline_metrics(summary["metrics"])) <= set(summary["metrics"])
    assert summary["resolved"]["values"] is not None and summary["training"]["epochs_run"] >= 1
    validation = summary["serving_validation"]
    assert validation["problems"] == [] and validation["cudnn_ops"] == []
    assert all(v["within_tolerance"] for v in validation["skew"]["outputs"].values())
    if task.plot_file:  # the task's figure, as a PNG next to run_summary.json
        assert summary["plot"] == os.path.join(summary["output_dir"], task.plot_file)
        with open(summary["plot"], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


EXPORT_CONTRACT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    baseline = set(sys.modules)  # TF may import Keras itself (TF_USE_LEGACY_KERAS); the model must not
    from tensorflow_serving.apis import prediction_log_pb2
    model_dir, examples_signature = sys.argv[1:3]
    model = tf.saved_model.load(model_dir)
    answers = []
    for record in tf.data.TFRecordDataset(model_dir + "/assets.extra/tf_serving_warmup_requests"):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        rows = int(next(v for v in inputs.values() if v.shape.rank).shape[0])  # scalars: settings
        outputs = model.signatures[name](**inputs)
        answers.append({"signature": name, "inputs": sorted(inputs), "rows": rows,
                        "outputs": {k: v.shape.as_list() for k, v in outputs.items()}})
    declared = {name: {"inputs": sorted(f.structured_input_signature[1]), "outputs": sorted(f.structured_outputs)}
                for name, f in model.signatures.items()}
    print(json.dumps({"signatures": sorted(model.signatures), "declared": declared,
        "examples_input": sorted(model.signatures[examples_signature].structured_input_signature[1]),
        "answers": answers, "modules": sorted(m for m in set(sys.modules) - baseline
                                                  if m.split(".")[0] in ("rnnflow", "keras", "tf_keras", "tfx"))}))
""")


@pytest.mark.e2e
def test_each_task_export_keeps_the_serving_contract_in_a_fresh_process(finished_run):
    task_type, summary = finished_run
    task = get_task(task_type)
    result = subprocess.run([sys.executable, "-c", EXPORT_CONTRACT, summary["pushed_model"], task.examples_signature],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    contract = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"serving_default", task.examples_signature} <= set(contract["signatures"])
    assert contract["examples_input"] == ["examples"]
    assert "serving_default" in {a["signature"] for a in contract["answers"]}, "no serving_default warmup request"
    for answer in contract["answers"]:  # every declared output, one row per request row
        declared = contract["declared"][answer["signature"]]
        assert answer["inputs"] == declared["inputs"]
        assert sorted(answer["outputs"]) == declared["outputs"]
        assert all(shape and shape[0] == answer["rows"] for shape in answer["outputs"].values())
    assert contract["modules"] == []  # loading needed neither rnnflow nor Keras nor TFX
