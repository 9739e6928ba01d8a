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
- scores a sample of eval examples through the tf.Example signature and through the served
  signature (the task's `served_signature`, `serving_default` unless the task serves something
  the examples cannot feed, such as a language model's generation; each of its inputs read from
  the example's feature of the same name) and checks that both answer the same;
- scores the raw eval examples the Trainer scored with its in-memory Keras model, fed as in
  training (`serving_reference.json` next to the model), through the served signature, and checks
  both agree within SKEW_ATOL + SKEW_RTOL * |value|: training/serving skew;
- measures p50/p99 latency of the served signature at batch 1 and batch 64.

Then, when `tensorflow_model_server` is on PATH and the model is on this machine's filesystem,
it serves the candidate on free localhost ports (retrying when a port is taken) and sends a few
of the same rows over REST and gRPC with rnnflow's client (`model_server_round_trip`): a
server that refuses the model, or answers differently, fails the step with its own words.

It writes `serving_validation.json` and a readable `report.txt`, and an InfraBlessing that the
Pusher requires (TFX's Pusher checks it as it checks InfraValidator's), plus a ModelBlessing
(`serving_blessing`: blessed by the Evaluator and servable) for BulkInferrer. A model the Evaluator did
not bless is not validated (nothing would be pushed anyway).
"""


import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from rnnflow.components.ingest.input_report import serving_reference_path
from rnnflow.components.common import run_facts
from rnnflow.components.common.run_facts import WARMUP_FILE
from rnnflow.pipeline.config import tf_serving_release

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
# The exported model may answer the Trainer's own predictions only this far off (float32 kernels
# differ between training and the portable serving graph by rounding, nothing more).
SKEW_ATOL, SKEW_RTOL = 1e-4, 1e-4


def missing_text_ops(version: str, text_ops: set[str]) -> set[str]:
    """The TF Text ops among `text_ops` that TF Serving `version` does not bundle."""
    release = tf_serving_release(version)
    if release <= (2, 1):
        return set(text_ops) - TF_TEXT_SUBSET_2_0
    if release < (2, 20):
        return set(text_ops) & TF_TEXT_ADDED_AFTER_2_12_1
    return set()


# Runs in the clean subprocess: argv = model dir, eval example file, sample size, examples
# signature, warmup file (relative to the model dir), the Trainer's reference predictions ("" if
# none), the skew tolerances (absolute, relative), the served signature.
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
    # What loading and calling the model imports beyond TF and TF Text (TF itself may import
    # Keras, depending on TF_USE_LEGACY_KERAS, which TFT sets in the processes that import it).
    baseline = set(sys.modules)
    model_dir, examples_file, sample, examples_signature, warmup, reference_file = sys.argv[1:7]
    SKEW_ATOL, SKEW_RTOL, served = float(sys.argv[7]), float(sys.argv[8]), sys.argv[9]
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

    serve = model.signatures[served]
    by_example = model.signatures[examples_signature]
    specs = serve.structured_input_signature[1]

    def serving_inputs(serialized):  # the served signature's inputs, each from the examples' feature of its name
        parsed = tf.io.parse_example(serialized, {name: tf.io.VarLenFeature(spec.dtype) for name, spec in specs.items()})
        inputs = {}
        for name, values in parsed.items():
            dense = tf.sparse.to_dense(values)
            # One value per example (a text, a timestamp): a [batch] input; float lists stay [batch, n].
            scalar = int(tf.reduce_max(tf.math.bincount(tf.cast(values.indices[:, 0], tf.int32)))) <= 1
            inputs[name] = dense[:, 0] if scalar and not values.dtype.is_floating else dense
        return inputs

    serialized = [r.numpy() for r in tf.data.TFRecordDataset(examples_file, compression_type="GZIP").take(sample)]
    inputs = serving_inputs(serialized)
    direct, through_examples = serve(**inputs), by_example(examples=tf.constant(serialized))
    differences = {}
    for key, value in direct.items():
        if key in through_examples and value.dtype.is_floating:
            differences[key] = float(tf.reduce_max(tf.abs(value - through_examples[key])))
        elif key in through_examples:
            differences[key] = 0.0 if bool(tf.reduce_all(value == through_examples[key])) else 1.0
    report["agreement"] = {"examples": len(serialized), "max_abs_difference": differences}

    if reference_file:  # the Trainer's own predictions on raw eval examples (training/serving skew)
        import base64
        with tf.io.gfile.GFile(reference_file) as f:  # a clean process: TensorFlow only
            reference = json.load(f)
        examples = [base64.b64decode(e) for e in reference["examples"]]
        served = serve(**serving_inputs(examples))
        skew = {}
        for key, expected in reference["outputs"].items():
            expected = np.asarray(expected, np.float64)
            got = served[key].numpy().astype(np.float64)
            error = np.abs(got - expected)
            skew[key] = {"max_abs_difference": float(error.max()),
                         "within_tolerance": bool(np.all(error <= SKEW_ATOL + SKEW_RTOL * np.abs(expected)))}
        report["skew"] = {"examples": len(examples), "outputs": skew}

    # A few rows as JSON (what a REST client sends) and the served signature's answer to exactly those,
    # for the round trip through a real model server.
    def jsonable(tensor):
        values = tensor.numpy().tolist()
        decode = lambda v: [decode(x) for x in v] if isinstance(v, list) else (
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v)
        return decode(values)
    request = {k: jsonable(v[:8]) for k, v in inputs.items()}
    request_tensors = {k: tf.constant(v, specs[k].dtype) for k, v in request.items()}
    report["round_trip"] = {"request": request,
                            "outputs": {k: jsonable(v) for k, v in serve(**request_tensors).items()}}

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
    leaked = sorted(m for m in set(sys.modules) - baseline
                    if m.split(".")[0] in ("rnnflow", "tensorflow_transform", "tfx", "keras", "tf_keras"))
    report["imported_beyond_tensorflow"] = leaked
    print("RNNFLOW_REPORT " + json.dumps(report))
""")


def check(model_dir: str, examples_file: str, *, tf_serving_version: str, examples_signature: str,
          sample: int, reference_file: str = "", served_signature: str = "serving_default") -> dict:
    """Runs the checks in a clean subprocess; returns the report with `problems` (empty: servable)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    result = subprocess.run([sys.executable, "-c", _CHECK, model_dir, examples_file, str(sample), examples_signature,
                             WARMUP_FILE, reference_file, str(SKEW_ATOL), str(SKEW_RTOL), served_signature],
                            capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RNNFLOW_REPORT ")]
    if result.returncode != 0 or not lines:
        error = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        return {"model": model_dir, "problems": [f"the model does not load and answer in a clean TensorFlow "
                                                   f"process: {error}"]}
    report = json.loads(lines[-1][len("RNNFLOW_REPORT "):])
    report["model"], report["tf_serving_version"] = model_dir, tf_serving_version
    report["served_signature"] = served_signature
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
        problems.append(f"{served_signature} and {examples_signature} disagree on the same examples: {disagreeing}")
    skewed = {k: v["max_abs_difference"] for k, v in (report.get("skew") or {}).get("outputs", {}).items()
              if not v["within_tolerance"]}
    if skewed:
        problems.append(f"training/serving skew: {served_signature} answers the Trainer's own predictions on the same "
                        f"{report['skew']['examples']} eval examples differently (largest difference {skewed})")
    if report["imported_beyond_tensorflow"]:
        problems.append(f"loading the model imported {report['imported_beyond_tensorflow']}")
    report["problems"] = problems
    return report


MODEL_SERVER = "tensorflow_model_server"
MODEL_SERVER_NAME = "candidate"
SERVER_START_SECONDS = 120
SERVER_PORT_ATTEMPTS = 3
_PORT_IN_USE = re.compile(r"address already in use|failed to start server|could not bind|bind.*failed", re.I)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_server_round_trip(model_dir: str, round_trip: dict, binary: str | None = None,
                            signature: str = "serving_default") -> dict:
    """Serves `model_dir` with a real tensorflow_model_server on free localhost ports and sends
    `round_trip["request"]` over REST and gRPC (rnnflow's client); each answer must equal
    `round_trip["outputs"]`, the `signature`'s own answer in the clean process. Returns
    {"binary", "rest", "grpc", "problems"} or {"skipped": why}."""
    binary = binary or shutil.which(MODEL_SERVER)
    if binary is None:
        return {"skipped": f"{MODEL_SERVER} is not on PATH"}
    if "://" in model_dir:
        return {"skipped": f"{model_dir} is not on this machine's filesystem"}
    with tempfile.TemporaryDirectory(prefix="rnnflow-model-server-") as base:
        versions = os.path.join(base, MODEL_SERVER_NAME)
        os.makedirs(versions)
        os.symlink(os.path.abspath(model_dir), os.path.join(versions, "1"))  # TF Serving wants numbered versions
        for attempt in range(SERVER_PORT_ATTEMPTS):
            rest, grpc_port = _free_port(), _free_port()
            log_path = os.path.join(base, f"server-{attempt}.log")
            with open(log_path, "wb") as log:
                server = subprocess.Popen([binary, f"--port={grpc_port}", f"--rest_api_port={rest}",
                                           f"--model_name={MODEL_SERVER_NAME}", f"--model_base_path={versions}"],
                                          stdout=log, stderr=subprocess.STDOUT)
            try:
                problem = _wait_until_available(server, rest, log_path)
                if problem == "port in use":
                    continue
                if problem:
                    return {"binary": binary, "problems": [problem]}
                return _round_trips(binary, rest, grpc_port, round_trip, signature)
            finally:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
        return {"binary": binary, "problems": [f"{MODEL_SERVER} could not bind free localhost ports in "
                                               f"{SERVER_PORT_ATTEMPTS} attempts (ports in use)"]}


def _log_tail(path: str, lines: int = 5) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return " | ".join(line.strip() for line in f.read().splitlines()[-lines:] if line.strip())


def _wait_until_available(server: subprocess.Popen, rest_port: int, log_path: str) -> str | None:
    """None once the model is AVAILABLE; "port in use"; or the problem, with the server's words."""
    url = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_SERVER_NAME}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = _log_tail(log_path)
            if _PORT_IN_USE.search(tail):
                return "port in use"
            return f"{MODEL_SERVER} exited with code {server.returncode} before serving the model: {tail}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status = json.loads(response.read())["model_version_status"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.5)
            continue
        if any(v.get("state") == "AVAILABLE" for v in status):
            return None
        failed = [v for v in status if v.get("state") == "END"]
        if failed:
            error = failed[0].get("status", {})
            return (f"{MODEL_SERVER} refused the model: {error.get('error_code', '')}: "
                    f"{error.get('error_message', '')}").rstrip(": ")
        time.sleep(0.5)
    return f"{MODEL_SERVER} did not make the model available within {SERVER_START_SECONDS} s: {_log_tail(log_path)}"


def _round_trips(binary: str, rest_port: int, grpc_port: int, round_trip: dict, signature: str) -> dict:
    import numpy as np

    from rnnflow.components.serving.serving_client import GrpcModel, RestModel, ServingError

    result, problems = {"binary": binary}, []
    for transport, connect in (
            ("rest", lambda: RestModel(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_SERVER_NAME}",
                                       signature=signature)),
            ("grpc", lambda: GrpcModel(f"127.0.0.1:{grpc_port}", MODEL_SERVER_NAME, signature=signature))):
        try:
            with connect() as model:
                answer = model.predict(round_trip["request"])
        except ServingError as e:
            problems.append(f"{MODEL_SERVER} over {transport.upper()}: {e}")
            continue
        differences = {}
        for key, expected in round_trip["outputs"].items():
            got = answer.get(key)
            if got is None:
                differences[key] = "missing"
            elif np.asarray(expected).dtype.kind in "fc":
                differences[key] = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(expected))))
            else:
                same = [v.decode() if isinstance(v, bytes) else v for v in np.asarray(got).ravel()] == \
                    list(np.asarray(expected).ravel())
                differences[key] = 0.0 if same else "different"
        result[transport] = {"rows": len(next(iter(round_trip["request"].values()))), "differences": differences}
        off = {k: v for k, v in differences.items() if isinstance(v, str) or v > SKEW_ATOL}
        if off:
            problems.append(f"{MODEL_SERVER} over {transport.upper()} answers differently from the model "
                            f"loaded in TensorFlow: {off}")
    result["problems"] = problems
    return result


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
        skew = report.get("skew")
        lines.append("training/serving skew: " + (
            f"{skew['examples']} eval examples against the Trainer's own predictions, largest difference "
            + ", ".join(f"{k} {v['max_abs_difference']:.2g}" for k, v in skew["outputs"].items())
            if skew else "not checked (the Trainer recorded no predictions)"))
        server = report.get("model_server") or {}
        lines.append(f"{MODEL_SERVER}: " + (
            f"not run ({server['skipped']})" if "skipped" in server else
            ", ".join(f"{t.upper()} {v['rows']} rows, differences {v['differences']}"
                      for t, v in server.items() if t in ("rest", "grpc")) or "failed"))
        lines += [f"latency {batch.replace('_', ' ')}: p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms"
                  for batch, v in report["latency"].items()]
    return "\n".join(lines) + "\n"


def read_report(blessing_uri: str) -> dict | None:
    path = os.path.join(blessing_uri, run_facts.SERVING_VALIDATION_FILE)
    return run_facts.read_json(path) if run_facts.exists(path) else None


@component
def ServingValidator(  # noqa: N802 (TFX component naming)
        model: InputArtifact[standard_artifacts.Model],
        examples: InputArtifact[standard_artifacts.Examples],
        model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
        blessing: OutputArtifact[standard_artifacts.InfraBlessing],
        serving_blessing: OutputArtifact[standard_artifacts.ModelBlessing],
        tf_serving_version: Parameter[str],
        examples_signature: Parameter[str],
        sample: Parameter[int] = 64,
        served_signature: Parameter[str] = "serving_default"):
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
        reference = serving_reference_path(model.uri)
        report = check(model_dir, files[0], tf_serving_version=tf_serving_version,
                       examples_signature=examples_signature, sample=sample, served_signature=served_signature,
                       reference_file=reference if tf.io.gfile.exists(reference) else "")
        if not report["problems"] and "round_trip" in report:
            report["model_server"] = model_server_round_trip(model_dir, report["round_trip"],
                                                             signature=served_signature)
            report["problems"] += report["model_server"].get("problems", [])
    run_facts.write_json(os.path.join(blessing.uri, run_facts.SERVING_VALIDATION_FILE), report)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, run_facts.SERVING_VALIDATION_TEXT_FILE), "w") as f:
        f.write(describe(report))
    servable = not report["problems"]
    with tf.io.gfile.GFile(os.path.join(blessing.uri, BLESSED_FILE if servable else NOT_BLESSED_FILE), "w") as f:
        f.write("")
    blessing.set_int_custom_property("blessed", int(servable))
    # Blessed by the Evaluator and servable: what BulkInferrer (a ModelBlessing reader) requires.
    both = servable and bool(model_blessing.get_int_custom_property("blessed"))
    tf.io.gfile.makedirs(serving_blessing.uri)
    with tf.io.gfile.GFile(os.path.join(serving_blessing.uri, "BLESSED" if both else "NOT_BLESSED"), "w") as f:
        f.write("")
    serving_blessing.set_int_custom_property("blessed", int(both))
