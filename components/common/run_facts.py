"""The facts one component leaves for a later one: every side file named once, with one JSON
read and write (gfile, so `gs://` and local paths alike) and a reader per file.

| file                       | written by              | where                                | read by                      |
|----------------------------|-------------------------|--------------------------------------|------------------------------|
| input_report.json          | Transform               | transform graph                      | Tuner, Trainer               |
| resolved_config.json       | Transform               | transform graph                      | Trainer (the `auto` fields)  |
| raw_eval_sample.tfrecord.gz| Transform               | transform graph                      | Trainer                      |
| rnnflow_facts.json         | Trainer                 | beside the Format-Serving model      | Evaluator, gates, warm start |
| rnnflow_weights.weights.h5 | Trainer                 | beside the Format-Serving model      | the next warm start          |
| serving_reference.json     | Trainer                 | beside the Format-Serving model      | ServingValidator             |
| linear_baseline.npy        | Trainer (forecasting)   | beside the Format-Serving model      | Evaluator, test report       |
| training_summary.json      | Trainer                 | model_run                            | run summary                  |
| drift.json                 | DriftGate               | its baseline output                  | run summary                  |
| serving_validation.json    | ServingValidator        | its blessing                         | Pusher, run summary          |
| run_summary.json           | the runner              | --output-dir                         | CLI, notebooks               |

The signature and input names every task's export shares live here too, beside the warmup file
TF Serving replays. This module imports nothing of rnnflow and TensorFlow only when it reads or
writes, so the CLI can name a file without loading TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Transform's transform graph.
INPUT_REPORT_FILE = "input_report.json"
RESOLVED_FILE = "resolved_config.json"  # the task's `auto` fields: {"values": ..., "measured": ...}
# The first `serving.validation_examples` raw eval examples, which the Trainer scores with its
# in-memory model (REFERENCE_FILE) for serving validation's training/serving skew check.
RAW_EVAL_SAMPLE_FILE = "raw_eval_sample.tfrecord.gz"
# Beside the Trainer's Format-Serving model.
FACTS_FILE = "rnnflow_facts.json"  # config, input report, what a warm start must match
WEIGHTS_FILE = "rnnflow_weights.weights.h5"  # Keras weights, for warm starts
REFERENCE_FILE = "serving_reference.json"
LINEAR_BASELINE_FILE = "linear_baseline.npy"  # forecasting's linear baseline; the facts name its path
# The Trainer's model_run directory.
TRAINING_SUMMARY_FILE = "training_summary.json"
TUNER_RESULTS_FILE = "tuner_results.json"  # written by TFX's Tuner
# Gates and validators.
DRIFT_FILE = "drift.json"
SERVING_VALIDATION_FILE = "serving_validation.json"
SERVING_VALIDATION_TEXT_FILE = "report.txt"
# The run's output directory.
RUN_SUMMARY_FILE = "run_summary.json"
PREVIOUS_RUN_SUMMARY_FILE = "run_summary.previous.json"

# Every export: the requests TF Serving replays when it loads a version, and the signature and
# input names every task shares (serialized tf.Examples in, answered as serving answers them,
# and for TFMA).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
EXAMPLES_INPUT = "examples"
SERVING_EXAMPLES_SIGNATURE = "serving_examples"
EVALUATION_EXAMPLES_SIGNATURE = "evaluation_examples"


def write_json(path: str, value: Any) -> None:
    """`value` as JSON at `path` (its folder created), whole or not at all: written beside it,
    then renamed over it."""
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        f.write(json.dumps(value, indent=2))
    tf.io.gfile.rename(partial, path, overwrite=True)


def read_json(path: str) -> Any:
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def exists(path: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.exists(path)


def beside_model(serving_model_dir: str, name: str) -> str:
    """A side file next to the Trainer's Format-Serving model directory."""
    return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), name)


def of_model(model_uri: str, name: str) -> str:
    """A side file of the Trainer's Model artifact at `model_uri`."""
    from tfx.utils import path_utils

    return beside_model(path_utils.serving_model_dir(model_uri), name)


def read_input_report(transform_graph_path: str) -> dict:
    """The input report of the data a transform graph was analyzed on."""
    return read_json(os.path.join(transform_graph_path, INPUT_REPORT_FILE))


def read_resolved(transform_graph_path: str) -> dict:
    """The task's `auto` fields as Transform resolved them: {"values": ..., "measured": ...}."""
    return read_json(os.path.join(transform_graph_path, RESOLVED_FILE))


def read_facts(model_uri: str) -> dict:
    """{"config", "input", "compatibility"} of the model at `model_uri`."""
    return read_json(of_model(model_uri, FACTS_FILE))


def read_training_summary(model_run_uri: str) -> dict | None:
    path = os.path.join(model_run_uri, TRAINING_SUMMARY_FILE)
    return read_json(path) if exists(path) else None
