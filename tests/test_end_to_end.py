"""`rnnflow run` end to end, and the exported model's serving contract.

One pipeline run (session fixture) backs every test here; the model is small
and trained for two epochs, so these tests check plumbing and contract, not
accuracy.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import FAST_OVERRIDES, predict_with_model_server, run_cli

pytestmark = pytest.mark.e2e

RAW_TEXTS = ["a wonderful, moving film", "", "terrible"]
PIPELINE_COMPONENTS = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "AnomalyGate",
                       "previous_statistics_resolver", "DriftGate", "Transform", "latest_blessed_model_resolver",
                       "Trainer", "Evaluator", "ServingValidator", "Pusher", "DriftBaselinePublish"]
# TF Text ops that every TF Serving release since 2.2 links in (see PITFALLS.md, section 3).
SERVING_SAFE_TEXT_OPS = {"NormalizeUTF8", "CaseFoldUTF8", "UnicodeScriptTokenizeWithOffsets"}


@pytest.fixture(scope="module")
def run(sentiment_run):
    return sentiment_run


def test_summary_reports_a_succeeded_blessed_pushed_run(run):
    output_dir, result, summary = run
    assert summary["status"] == "succeeded"
    assert summary["blessed"] is True
    pushed = summary["pushed_model"]
    assert os.path.isabs(pushed) and os.path.isfile(os.path.join(pushed, "saved_model.pb"))
    assert os.path.basename(pushed).isdigit()  # a numbered version directory for TF Serving
    assert os.path.dirname(pushed) == str(output_dir / "serving" / "sentiment")
    names = [c["name"] for c in summary["components"]]  # topological order
    assert sorted(names) == sorted(PIPELINE_COMPONENTS)
    assert names[0] == "CsvExampleGen" and names[-2:] == ["Pusher", "DriftBaselinePublish"]
    assert names.index("AnomalyGate") < names.index("Transform") < names.index("Trainer")
    assert names.index("DriftGate") < names.index("Transform")
    # A first run has no earlier drift baseline: TFX's resolver finds nothing, which is no failure.
    states = {c["name"]: c["state"] for c in summary["components"]}
    assert states.pop("previous_statistics_resolver") == "nothing_to_resolve"
    assert set(states.values()) == {"complete"}
    assert summary["config"]["training"]["epochs"] == 2
    assert summary["input"]["rows"] == 100


def test_the_trainers_lines_reach_the_run_log_and_the_summary_reports_training_kernels(run):
    _, _, summary = run
    with open(summary["log_file"], encoding="utf-8") as f:
        log = f.read()
    assert "rnnflow.components.training.trainer: cuDNN: " in log  # per-layer eligibility
    assert "Total params" in log  # the model summary
    # Eligibility as trained, not as exported (export switches to the portable kernel).
    layers = summary["model"]["cudnn"]
    assert layers and all(layer["eligible"] for layer in layers), layers


def test_training_prints_progress_and_records_throughput_per_epoch(run):
    _, result, summary = run
    throughput = summary["training"]["throughput"]
    assert [r["epoch"] for r in throughput] == list(range(1, summary["training"]["epochs_run"] + 1))
    assert all(r["train_examples_per_second"] > 0 and r["eval_examples_per_second"] > 0 for r in throughput)
    assert re.search(r"^      epoch 1/2 done in \d+:\d\d  \d+ ex/s train, \d+ ex/s eval  loss ", result.stdout, re.M)


def test_summary_metrics_come_from_the_evaluator(run):
    _, _, summary = run
    metrics = summary["metrics"]
    for name in ("accuracy", "auc", "precision", "recall", "example_count"):
        assert name in metrics
    assert 0 < metrics["example_count"] < 100  # the eval split only
    assert 0.0 <= metrics["accuracy"] <= 1.0
    matrix = summary["confusion_matrix"]
    assert matrix["classes"] == ["0", "1"]
    assert sum(map(sum, matrix["counts"])) == metrics["example_count"]
    correct = matrix["counts"][0][0] + matrix["counts"][1][1]
    assert correct / metrics["example_count"] == pytest.approx(metrics["accuracy"], abs=1e-6)


def test_progress_lines_and_human_summary(run):
    _, result, _ = run
    for name in PIPELINE_COMPONENTS:
        assert f"] {name} ..." in result.stdout
    assert f"[{len(PIPELINE_COMPONENTS) - 1}/{len(PIPELINE_COMPONENTS)}] Pusher" in result.stdout
    assert "status: succeeded" in result.stdout
    assert "pushed model: " in result.stdout


def _serve_in_fresh_process(model_dir, script):
    """Loads the SavedModel in a process that imports only tensorflow and tensorflow_text."""
    code = textwrap.dedent("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # registers the text ops, as TF Serving links them in
        model = tf.saved_model.load(sys.argv[1])
    """) + textwrap.dedent(script) + textwrap.dedent("""
        leaked = sorted(m for m in sys.modules if m.split('.')[0] in
                        ('rnnflow', 'tensorflow_transform', 'tfx', 'keras_tuner'))
        assert not leaked, leaked
    """)
    result = subprocess.run([sys.executable, "-c", code, model_dir], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_pushed_model_serves_raw_strings_in_a_fresh_process(run):
    _, _, summary = run
    out = _serve_in_fresh_process(summary["pushed_model"], f"""
        texts = {RAW_TEXTS!r} + ["x" * 100000]
        serve = model.signatures["serving_default"]
        result = serve(text=tf.constant(texts + [b"bad \\xff\\xfe bytes"]))
        print(json.dumps({{"probabilities": result["probabilities"].numpy().tolist(),
                          "label": [l.decode() for l in result["label"].numpy()]}}))
    """)
    assert len(out["probabilities"]) == len(RAW_TEXTS) + 2
    for row in out["probabilities"]:
        assert len(row) == 2
        assert sum(row) == pytest.approx(1.0, abs=1e-5)
        assert all(0.0 <= p <= 1.0 for p in row)
    assert set(out["label"]) <= {"0", "1"}
    for row, label in zip(out["probabilities"], out["label"]):
        assert label == ["0", "1"][row.index(max(row))]


def test_a_text_gets_the_same_prediction_alone_or_batched_with_longer_texts(run):
    """Serving pads a batch only to its longest text; padding must never change a row's answer."""
    _, _, summary = run
    out = _serve_in_fresh_process(summary["pushed_model"], """
        serve = model.signatures["serving_default"]
        alone = serve(text=tf.constant(["a fine short film"]))["probabilities"].numpy()
        batched = serve(text=tf.constant(["a fine short film", " ".join(["long"] * 500), "meh"]))
        # A batch of only empty texts: each is the one empty-text token, never a zero-length batch.
        empty_alone = serve(text=tf.constant([""]))["probabilities"].numpy()
        only_empty = serve(text=tf.constant(["", "", ""]))["probabilities"].numpy()
        print(json.dumps({"alone": alone.tolist(), "batched": batched["probabilities"].numpy().tolist(),
                          "empty_alone": empty_alone.tolist(), "only_empty": only_empty.tolist()}))
    """)
    assert out["alone"][0] == pytest.approx(out["batched"][0], abs=1e-5)
    assert len(out["only_empty"]) == 3
    for row in out["only_empty"]:
        assert row == pytest.approx(out["empty_alone"][0], abs=1e-5)


def test_auto_fields_are_resolved_from_the_data_printed_and_recorded(run):
    """The sentiment config leaves vocabulary and training sizes `auto`; the run resolves them on
    its data, uses them (the vocabulary file has that many tokens), prints and records them."""
    output_dir, result, summary = run
    values = summary["resolved"]["values"]
    assert "task.max_tokens" not in values  # given (FAST_OVERRIDES): never resolved over
    # 100 reviews, about 75 in train: the batch and rate the sample was tuned for.
    assert values["training.batch_size"] == 16 and values["training.learning_rate"] == 0.003
    assert values["training.lr_schedule"] == "constant"
    assert values["task.min_frequency"] >= 2
    vocabularies = list(output_dir.glob("pipeline_root/Transform/transform_graph/*/transform_fn/assets/tokens"))
    assert len(vocabularies) == 1
    assert len(vocabularies[0].read_text(encoding="utf-8").splitlines()) == values["task.vocab_size"]
    measured = summary["resolved"]["measured"]
    assert 0 < measured["token_coverage"] <= 1 and measured["train_examples"] > 0
    assert re.search(r"^auto: task.vocab_size=\d+, task.min_frequency=\d+, training.batch_size=16", result.stdout,
                     re.M)
    # The model's facts (what the Evaluator and later warm starts read) hold values, not auto.
    facts = json.loads(next(output_dir.glob("pipeline_root/Trainer/model/*/rnnflow_facts.json")).read_text())
    assert facts["config"]["task"]["vocab_size"] == values["task.vocab_size"]
    assert facts["config"]["training"]["batch_size"] == 16


def test_signature_contract(run):
    _, _, summary = run
    out = _serve_in_fresh_process(summary["pushed_model"], """
        def describe(name):
            fn = model.signatures[name]
            inputs = {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None]
                      for k, v in fn.structured_input_signature[1].items()}
            outputs = {k: [v.dtype.name, v.shape.as_list()] for k, v in fn.structured_outputs.items()}
            return {"inputs": inputs, "outputs": outputs}
        print(json.dumps({name: describe(name) for name in model.signatures}))
    """)
    assert set(out) == {"serving_default", "serving_examples", "evaluation_examples", "transform_features"}
    # Inputs of any shape: the graph checks them and names what they must be (see below).
    assert out["serving_default"] == {
        "inputs": {"text": ["string", None]},
        "outputs": {"probabilities": ["float32", [None, 2]], "label": ["string", [None]]}}
    assert out["serving_examples"]["inputs"] == {"examples": ["string", None]}
    assert out["serving_examples"]["outputs"] == out["serving_default"]["outputs"]
    assert out["evaluation_examples"]["outputs"] == out["serving_default"]["outputs"]
    assert set(out["transform_features"]["outputs"]) == {"token_ids", "label_id"}


def test_example_signature_agrees_with_raw_text_signature(run):
    _, _, summary = run
    out = _serve_in_fresh_process(summary["pushed_model"], f"""
        texts = {RAW_TEXTS!r}
        def example(feature):
            return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        def text_feature(t):
            return {{"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()] if t else []))}}
        examples = [example(text_feature(t)) for t in texts if t]
        raw = model.signatures["serving_default"](text=tf.constant([t for t in texts if t]))["probabilities"]
        parsed = model.signatures["serving_examples"](examples=tf.constant(examples))["probabilities"]
        # TFMA's signature reads an empty value list (an empty CSV cell) and an absent feature as "".
        empty = [example(text_feature("")), example({{}})]
        raw_empty = model.signatures["serving_default"](text=tf.constant(["", ""]))["probabilities"]
        evaluated = model.signatures["evaluation_examples"](examples=tf.constant(empty))["probabilities"]
        print(json.dumps([float(tf.reduce_max(tf.abs(raw - parsed))),
                          float(tf.reduce_max(tf.abs(raw_empty - evaluated)))]))
    """)
    assert out[0] < 1e-6 and out[1] < 1e-6


def test_serving_errors_name_the_input_and_the_shape_it_needs(run):
    _, _, summary = run
    out = _serve_in_fresh_process(summary["pushed_model"], """
        def error(signature, **inputs):
            try:
                model.signatures[signature](**inputs)
            except tf.errors.InvalidArgumentError as e:
                return [line for line in e.message.splitlines() if "assertion failed" in line][0]
            return "accepted"
        misspelt = tf.train.Example(features=tf.train.Features(feature={"txet": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[b"a film"]))})).SerializeToString()
        print(json.dumps({
            "column": error("serving_default", text=tf.constant([["a film"], ["another"]])),
            "matrix": error("serving_default", text=tf.constant([["a", "b"], ["c", "d"]])),
            "scalar": error("serving_default", text=tf.constant("a film")),
            "misspelt": error("serving_examples", examples=tf.constant([misspelt])),
        }))
    """)
    for case, shape in (("column", "2 1"), ("matrix", "2 2"), ("scalar", "")):
        assert "input `text` must be a 1-D batch of strings, shape [batch]" in out[case], out
        assert out[case].endswith(f"got shape] [{shape}]"), out
    assert "example 0 (0-based) has no `text` feature" in out["misspelt"]
    assert "serving.missing_text: empty" in out["misspelt"]


def _length_classifier():
    """A two-class Keras model of the token ids' count: small, deterministic, no training."""
    import keras
    import tensorflow as tf

    from rnnflow.components.text_classification.schema import TOKEN_IDS

    tokens = keras.Input(shape=(None,), dtype="int64", name=TOKEN_IDS)
    lengths = keras.layers.Lambda(lambda t: tf.cast(tf.math.count_nonzero(t, axis=1, keepdims=True), "float32"))
    return keras.Model({TOKEN_IDS: tokens}, keras.layers.Dense(2, activation="softmax")(lengths(tokens)))


def test_missing_text_empty_reads_an_absent_feature_as_empty_text(run, tmp_path):
    import glob

    import tensorflow as tf
    import tensorflow_transform as tft

    from rnnflow.components.text_classification.export import ServingModule

    output_dir, _, summary = run
    transform_output = tft.TFTransformOutput(glob.glob(str(output_dir / "pipeline_root" / "Transform"
                                                           / "transform_graph" / "*"))[0])
    model = _length_classifier()
    module = ServingModule(model, transform_output, "text", ["0", "1"], missing_text="empty")
    tf.saved_model.save(module, str(tmp_path / "m"), signatures=module.signatures())
    out = _serve_in_fresh_process(str(tmp_path / "m"), """
        absent = tf.train.Example().SerializeToString()
        parsed = model.signatures["serving_examples"](examples=tf.constant([absent]))["probabilities"]
        raw = model.signatures["serving_default"](text=tf.constant([""]))["probabilities"]
        print(json.dumps(float(tf.reduce_max(tf.abs(raw - parsed)))))
    """)
    assert out < 1e-6


def test_the_trainers_serving_reference_is_traced_once_not_stepped_eagerly_and_equals_eager_calls(run, tmp_path):
    import glob

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from rnnflow.components.common import run_facts
    from rnnflow.components.text_classification.schema import TOKEN_IDS
    from rnnflow.components.training.trainer import serving_reference

    output_dir, _, _ = run
    graph = glob.glob(str(output_dir / "pipeline_root" / "Transform" / "transform_graph" / "*"))[0]
    transform_output = tft.TFTransformOutput(graph)
    model = _length_classifier()

    def probabilities(model, transformed):
        ids = transformed[TOKEN_IDS]
        return model({TOKEN_IDS: ids.to_tensor() if isinstance(ids, tf.RaggedTensor) else ids}, training=False)

    eagerly = []

    def outputs_fn(model, transformed):
        eagerly.append(tf.executing_eagerly())
        return {"probabilities": probabilities(model, transformed)}

    serving_reference(model, transform_output, graph, str(tmp_path / "m"), outputs_fn)
    with open(run_facts.beside_model(str(tmp_path / "m"), run_facts.REFERENCE_FILE)) as f:
        reference = json.load(f)
    examples = [base64.b64decode(e) for e in reference["examples"]]
    # Each example alone (texts of different lengths), yet traced a few times, never run eagerly.
    assert len(examples) > 3 and eagerly and not any(eagerly) and len(eagerly) <= 3
    transformed = transform_output.transform_features_layer()(
        tf.io.parse_example(examples, transform_output.raw_feature_spec()))
    expected = np.concatenate([probabilities(model, {k: v[i:i + 1] for k, v in transformed.items()}).numpy()
                               for i in range(len(examples))])
    np.testing.assert_allclose(np.array(reference["outputs"]["probabilities"]), expected, atol=1e-6)


def test_exported_graph_is_cpu_and_tf_serving_safe(run):
    _, _, summary = run
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(summary["pushed_model"], "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    graph = saved_model.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for fn in graph.library.function for n in fn.node_def}
    assert not [op for op in ops if "Cudnn" in op]
    text_ops = {op for op in ops if op in SERVING_SAFE_TEXT_OPS or "TFText" in op or "Tokenize" in op
                or "UTF8" in op or "Wordpiece" in op or "Sentencepiece" in op}
    assert text_ops and text_ops <= SERVING_SAFE_TEXT_OPS
    assert os.path.isfile(os.path.join(summary["pushed_model"], "assets.extra", "tf_serving_warmup_requests"))


def _rerun_copy(output_dir, copy, *extra_overrides):
    shutil.copytree(output_dir, copy)
    args = ["run", "--config", "sentiment", "--output-dir", str(copy)]
    for override in [*FAST_OVERRIDES, *extra_overrides]:
        args += ["--set", override]
    result = run_cli(args)
    return result, json.loads((copy / "run_summary.json").read_text())


def test_second_run_reuses_cached_components(run, tmp_path):
    output_dir, _, _ = run
    result, summary = _rerun_copy(output_dir, tmp_path / "copy")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    states = {c["name"]: c["state"] for c in summary["components"]}
    for name in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"):
        assert states[name] == "cached", states
    assert summary["status"] == "succeeded"


def test_serving_validation_checks_ops_signatures_and_latency_in_a_clean_process(run):
    _, result, summary = run
    report = summary["serving_validation"]
    assert report["problems"] == [] and report["tf_serving_version"] == "2.16"
    assert set(report["text_ops"]) == SERVING_SAFE_TEXT_OPS and report["cudnn_ops"] == []
    assert report["imported_beyond_tensorflow"] == []  # only tensorflow and tensorflow_text
    assert report["warmup_requests"] >= 1
    agreement = report["agreement"]
    assert agreement["examples"] == summary["metrics"]["example_count"]  # the eval split (under 64 rows)
    assert set(agreement["max_abs_difference"]) == {"probabilities", "label"}
    assert max(agreement["max_abs_difference"].values()) <= 1e-4
    for batch in ("batch_1", "batch_64"):
        assert 0 < report["latency"][batch]["p50_ms"] <= report["latency"][batch]["p99_ms"]
    assert re.search(r"^serving validation: servable; latency batch 1 p50 [\d.]+ ms", result.stdout, re.M)
    # Training/serving skew: the Trainer's in-memory model, fed each eval text alone as training
    # feeds it, against serving_default on the same raw texts batched together.
    assert report["skew"]["examples"] == agreement["examples"]
    assert report["skew"]["outputs"]["probabilities"]["max_abs_difference"] <= 1e-4


def test_a_candidate_with_ops_the_tf_serving_release_lacks_is_stopped_and_nothing_is_pushed(run, tmp_path):
    """TF Serving 2.0-2.1 linked only a subset of TF Text: no NormalizeUTF8 or CaseFoldUTF8."""
    output_dir, _, first = run
    result, summary = _rerun_copy(output_dir, tmp_path / "old_server", "serving.tf_serving_version='2.1'")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["status"] == "not_blessed" and summary["pushed_model"] is None
    assert summary["blessed"] is True  # the Evaluator blessed it; serving validation stopped it
    problems = summary["serving_validation"]["problems"]
    assert problems and "ops TF Serving 2.1 does not have: CaseFoldUTF8, NormalizeUTF8" in problems[0]
    assert "serving validation: NOT servable, nothing pushed: ops TF Serving 2.1" in result.stdout
    # Only the first run's version is in the serving directory.
    versions = os.listdir(tmp_path / "old_server" / "serving" / "sentiment")
    assert versions == [os.path.basename(first["pushed_model"])]


def test_not_blessed_run_pushes_nothing(run, tmp_path):
    output_dir, _, first = run
    # No model reaches accuracy 1.0 on this sample: the absolute threshold fails.
    result, summary = _rerun_copy(output_dir, tmp_path / "strict", "evaluation.metric=accuracy",
                                  "evaluation.lower_bound=1.0")
    assert result.returncode == 3, result.stdout[-3000:]
    assert summary["status"] == "not_blessed"
    assert summary["blessed"] is False and summary["pushed_model"] is None
    assert summary["metrics"]["accuracy"] < 1.0
    versions = os.listdir(tmp_path / "strict" / "serving" / "sentiment")
    assert versions == [os.path.basename(first["pushed_model"])]  # only the earlier blessed push
    assert "status: not_blessed" in result.stdout


def test_tensorflow_model_server_round_trip(run):
    _, _, summary = run
    response = predict_with_model_server(os.path.dirname(summary["pushed_model"]), "sentiment",
                                         {"instances": RAW_TEXTS})
    predictions = response["predictions"]
    assert len(predictions) == len(RAW_TEXTS)
    for p in predictions:
        assert sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-5)
