"""Serving validation between the Evaluator and the Pusher: the job of TFX's InfraValidator,
which needs Docker or Kubernetes, done in a clean subprocess.

The candidate SavedModel is loaded in a fresh Python process that imports only tensorflow and
tensorflow_text (as TF Serving links in TF and TF Text ops, and nothing of rnnflow, TFT or
Keras), which:

- lists every op in the graph and its functions and checks it against the ops of the TF
  Serving release `serving.tf_serving_version` (TF's own ops, plus the TF Text ops that release
  bundles: `missing_text_ops`), and that no Cudnn op is left (CPU model servers have none);
- replays the model's warmup requests (assets.extra/tf_serving_warmup_requests), the ones TF
  Serving itself replays on load;
- scores a sample of eval examples through the tf.Example signature and through
  `serving_default` (each of its inputs read from the example's feature of the same name) and
  checks that both answer the same;
- measures p50/p99 latency of `serving_default` at batch 1 and batch 64.

It writes `serving_validation.json` and a readable `report.txt`, and an InfraBlessing that the
Pusher requires (TFX's Pusher checks it as it checks InfraValidator's). A model the Evaluator did
not bless is not validated (nothing would be pushed anyway). A real `tensorflow_model_server`
round trip is not part of this step (no binary here); tests run one when it is on PATH.
"""


import json
import os
import subprocess
import sys
import textwrap

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from rnnflow.components.tasks.base import WARMUP_FILE
from rnnflow.pipeline.config import tf_serving_release

REPORT_FILE = "serving_validation.json"
TEXT_REPORT_FILE = "report.txt"
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # as TFX's InfraValidator writes
# TF Text ops each stock TF Serving release lacks, among those tensorflow_text 2.16 registers.
# 2.0-2.1 linked a subset (constrained sequence, sentence breaking, unicode script, whitespace
# and wordpiece tokenizers); 2.12-2.19 bundle TF Text 2.12.1, which lacks what 2.13-2.16 added
# (from the tensorflow/text sources at tags v2.12.1 and v2.16.1: TFText>Utf8Binarize); 2.20
# bundles TF Text 2.20 (tensorflow/serving's workspace history).
TF_TEXT_SUBSET_2_0 = frozenset({"ConstrainedSequence", "SentenceFragments", "UnicodeScriptTokenizeWithOffsets",
                                "WhitespaceTokenizeWithOffsets", "WordpieceTokenizeWithOffsets"})
TF_TEXT_ADDED_AFTER_2_12_1 = frozenset({"TFText>Utf8Binarize"})
TIMEOUT_SECONDS = 600


def missing_text_ops(version: str, text_ops: set[str]) -> set[str]:
    """The TF Text ops among `text_ops` that TF Serving `version` does not bundle."""
    release = tf_serving_release(version)
    if release <= (2, 1):
        return set(text_ops) - TF_TEXT_SUBSET_2_0
    if release < (2, 20):
        return set(text_ops) & TF_TEXT_ADDED_AFTER_2_12_1
    return set()


# Runs in the clean subprocess: argv = model dir, eval example file, sample size, examples
# signature, warmup file (relative to the model dir).
_CHECK = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.client import pywrap_tf_session

    def registered():
        buffer = pywrap_tf_session.TF_GetAllOpList()
        ops = op_def_pb2.OpList.FromString(bytes(pywrap_tf_session.TF_GetBuffer(buffer)))
        return {op.name for op in ops.op}

    core = registered()
    import tensorflow_text  # noqa: F401
    text = registered() - core
    model_dir, examples_file, sample, examples_signature, warmup = sys.argv[1:6]
    sample = int(sample)
    with tf.io.gfile.GFile(model_dir + "/saved_model.pb", "rb") as f:  # gs:// on Kubeflow/Vertex
        saved = saved_model_pb2.SavedModel.FromString(f.read())
    used = set()
    for meta in saved.meta_graphs:
        used |= {n.op for n in meta.graph_def.node}
        for function in meta.graph_def.library.function:
            used |= {n.op for n in function.node_def}
    report = {"ops": sorted(used), "text_ops": sorted(used & text), "unknown_ops": sorted(used - core - text),
              "cudnn_ops": sorted(op for op in used if "Cudnn" in op)}
    model = tf.saved_model.load(model_dir)

    warmup_file = model_dir + "/" + warmup
    replayed = 0
    if tf.io.gfile.exists(warmup_file):
        from tensorflow_serving.apis import prediction_log_pb2
        for record in tf.data.TFRecordDataset(warmup_file):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            signature = model.signatures[request.model_spec.signature_name or "serving_default"]
            signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
            replayed += 1
    report["warmup_requests"] = replayed

    serve = model.signatures["serving_default"]
    by_example = model.signatures[examples_signature]
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(examples_file, compression_type="GZIP").take(sample)]
    specs = serve.structured_input_signature[1]
    parsed = tf.io.parse_example(serialized, {name: tf.io.VarLenFeature(spec.dtype) for name, spec in specs.items()})
    inputs = {}
    for name, values in parsed.items():
        dense = tf.sparse.to_dense(values)
        # One value per example (a text, a timestamp): a [batch] input; float lists stay [batch, n].
        scalar = int(tf.reduce_max(tf.math.bincount(tf.cast(values.indices[:, 0], tf.int32)))) <= 1
        inputs[name] = dense[:, 0] if scalar and not values.dtype.is_floating else dense
    direct, through_examples = serve(**inputs), by_example(examples=tf.constant(serialized))
    differences = {}
    for key, value in direct.items():
        if key in through_examples and value.dtype.is_floating:
            differences[key] = float(tf.reduce_max(tf.abs(value - through_examples[key])))
        elif key in through_examples:
            differences[key] = 0.0 if bool(tf.reduce_all(value == through_examples[key])) else 1.0
    report["agreement"] = {"examples": len(serialized), "max_abs_difference": differences}

    latency = {}
    for batch in (1, 64):  # the latencies the module docstring names
        rows = {k: tf.concat([v] * (batch // int(v.shape[0]) + 1), axis=0)[:batch] for k, v in inputs.items()}
        serve(**rows)
        times = []
        for _ in range(50 if batch == 1 else 10):
            start = time.perf_counter()
            {k: v.numpy() for k, v in serve(**rows).items()}
            times.append((time.perf_counter() - start) * 1000)
        latency[f"batch_{batch}"] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                                     "p99_ms": round(float(np.percentile(times, 99)), 2)}
    report["latency"] = latency
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("rnnflow", "tensorflow_transform", "tfx", "keras"))
    report["imported_beyond_tensorflow"] = leaked
    print("RNNFLOW_REPORT " + json.dumps(report))
""")


def check(model_dir: str, examples_file: str, *, tf_serving_version: str, examples_signature: str,
          sample: int) -> dict:
    """Runs the checks in a clean subprocess; returns the report with `problems` (empty: servable)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    result = subprocess.run([sys.executable, "-c", _CHECK, model_dir, examples_file, str(sample), examples_signature,
                             WARMUP_FILE],
                            capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RNNFLOW_REPORT ")]
    if result.returncode != 0 or not lines:
        error = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        return {"model": model_dir, "problems": [f"the model does not load and answer in a clean TensorFlow "
                                                   f"process: {error}"]}
    report = json.loads(lines[-1][len("RNNFLOW_REPORT "):])
    report["model"], report["tf_serving_version"] = model_dir, tf_serving_version
    problems = []
    missing = sorted(missing_text_ops(tf_serving_version, set(report["text_ops"])))
    if missing:
        problems.append(f"ops TF Serving {tf_serving_version} does not have: {', '.join(missing)} "
                        "(set serving.tf_serving_version to the model server you deploy, or avoid these ops)")
    if report["unknown_ops"]:
        problems.append(f"ops neither TensorFlow nor TF Text registers: {', '.join(report['unknown_ops'])}")
    if report["cudnn_ops"]:
        problems.append(f"Cudnn ops left in the graph (CPU model servers have no kernel): "
                        f"{', '.join(report['cudnn_ops'])}")
    if report["warmup_requests"] == 0:
        problems.append(f"no warmup requests in {WARMUP_FILE}")
    disagreeing = {k: v for k, v in report["agreement"]["max_abs_difference"].items() if v > 1e-4}
    if disagreeing:
        problems.append(f"serving_default and {examples_signature} disagree on the same examples: {disagreeing}")
    if report["imported_beyond_tensorflow"]:
        problems.append(f"loading the model imported {report['imported_beyond_tensorflow']}")
    report["problems"] = problems
    return report


def describe(report: dict) -> str:
    lines = [f"serving validation of {report['model']}",
             f"result: {'servable' if not report['problems'] else 'NOT servable'}"]
    lines += [f"problem: {p}" for p in report["problems"]]
    if "latency" in report:
        lines.append(f"TF Serving release: {report['tf_serving_version']}; {len(report['ops'])} op types, "
                     f"TF Text ops: {', '.join(report['text_ops']) or 'none'}")
        lines.append(f"warmup requests replayed: {report['warmup_requests']}; examples scored both ways: "
                     f"{report['agreement']['examples']}, largest difference "
                     f"{max(report['agreement']['max_abs_difference'].values(), default=0.0):.2g}")
        lines += [f"latency {batch.replace('_', ' ')}: p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms"
                  for batch, v in report["latency"].items()]
    return "\n".join(lines) + "\n"


def read_report(blessing_uri: str) -> dict | None:
    path = os.path.join(blessing_uri, REPORT_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@component
def ServingValidator(  # noqa: N802 (TFX component naming)
        model: InputArtifact[standard_artifacts.Model],
        examples: InputArtifact[standard_artifacts.Examples],
        model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
        blessing: OutputArtifact[standard_artifacts.InfraBlessing],
        tf_serving_version: Parameter[str],
        examples_signature: Parameter[str],
        sample: Parameter[int] = 64):
    """Blesses the candidate for serving when it passes the checks in the module docstring."""
    import tensorflow as tf

    if not model_blessing.get_int_custom_property("blessed"):
        report = {"model": model.uri, "skipped": True,
                  "problems": ["not validated: the Evaluator did not bless the model"]}
    else:
        model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        files = sorted(tf.io.gfile.glob(os.path.join(examples.uri, "Split-eval", "*")))
        if not files:
            raise ValueError(f"{examples.uri}: no eval split to validate the model's serving on")
        report = check(model_dir, files[0], tf_serving_version=tf_serving_version,
                       examples_signature=examples_signature, sample=sample)
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, REPORT_FILE), "w") as f:
        f.write(json.dumps(report, indent=2))
    with tf.io.gfile.GFile(os.path.join(blessing.uri, TEXT_REPORT_FILE), "w") as f:
        f.write(describe(report))
    servable = not report["problems"]
    with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE if servable else NOT_BLESSED_FILE), "w") as f:
        f.write("")
    blessing.set_int_custom_property("blessed", int(servable))
