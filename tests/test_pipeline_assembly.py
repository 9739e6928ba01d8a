"""Pipeline assembly, the anomaly gate, packaging and the Kubeflow compile, without training."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from conftest import imdb_sample_path, run_cli, write_csv
from rnnflow.components.gates.anomaly_gate import describe_anomalies
from rnnflow.pipeline.config import ConfigError, load_config
from rnnflow.pipeline.pipeline import create_pipeline
from rnnflow.pipeline.run_state import RunPaths

REPO = pathlib.Path(__file__).resolve().parent.parent

def _components(*overrides):
    config = load_config("sentiment", list(overrides))
    pipeline = create_pipeline(config, "/tmp/root", "/tmp/serving", "/tmp/m.sqlite")
    return {c.id: c for c in pipeline.components}, pipeline


def test_standard_pipeline_components():
    components, pipeline = _components()
    assert set(components) == {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "AnomalyGate",
                               "previous_statistics_resolver", "DriftGate", "Transform", "Trainer",
                               "latest_blessed_model_resolver", "Evaluator", "ServingValidator", "Pusher",
                               "DriftBaselinePublish"}
    assert "AnomalyGate" in {n.id for n in components["Transform"].upstream_nodes}
    # The Pusher needs the serving validation's blessing as well as the Evaluator's.
    assert components["Pusher"].inputs["infra_blessing"].producer_component_id == "ServingValidator"
    assert components["ServingValidator"].exec_properties["tf_serving_version"] == "2.16"
    params = components["Transform"].exec_properties
    assert params["preprocessing_fn"].endswith("text_classification.preprocessing.preprocessing_fn")
    assert not params.get("module_file")
    custom = json.loads(params["custom_config"])
    # Data facts are computed when the pipeline runs, never frozen into the pipeline.
    assert "input" not in custom and len(custom["code_version"]) == 16
    assert "--direct_running_mode=in_memory" in pipeline.beam_pipeline_args


@pytest.mark.parametrize("fmt, component", [("tfrecord", "ImportExampleGen"), ("parquet", "FileBasedExampleGen")])
def test_example_gen_follows_data_format(fmt, component):
    components, _ = _components(f"data.format={fmt}")
    assert component in components and "CsvExampleGen" not in components


def test_previous_schema_mode_resolves_the_last_runs_schema():
    components, _ = _components("validation.schema=previous")
    assert {"SchemaGen", "previous_schema_resolver", "SchemaChoice"} <= set(components)
    for consumer in ("ExampleValidator", "Transform", "Trainer", "DriftGate"):
        assert "SchemaChoice" in {n.id for n in components[consumer].upstream_nodes}, consumer


def test_drift_gate_sits_before_transform_and_compares_with_the_last_accepted_run():
    components, _ = _components("validation.drift.action=fail", "validation.drift.categorical_threshold=0.1")
    gate = components["DriftGate"]
    assert "DriftGate" in {n.id for n in components["Transform"].upstream_nodes}
    assert "previous_statistics_resolver" in {n.id for n in gate.upstream_nodes}
    assert gate.exec_properties["action"] == "fail" and gate.exec_properties["categorical_threshold"] == 0.1
    assert json.loads(gate.exec_properties["excluded_json"]) == ["text"]  # free text is never compared
    components, _ = _components("validation.drift.action=none")
    assert "DriftGate" not in components and "DriftBaselinePublish" not in components


def test_the_drift_baseline_is_published_last_so_a_failed_run_publishes_none():
    components, pipeline = _components("inference.path=/data/rows.csv")
    publish = components["DriftBaselinePublish"]
    assert publish.inputs["baseline"].producer_component_id == "DriftGate"
    assert pipeline.components[-1] is publish  # after the Pusher and batch scoring: the run got that far
    assert {"Pusher", "BulkInferrer"} <= {n.id for n in publish.upstream_nodes}
    # The next run's gate compares with a published baseline, never with a gate's own output.
    resolved = components["previous_statistics_resolver"].outputs["statistics"]
    assert resolved.type.TYPE_NAME == "rnnflow.PublishedDriftBaseline"


def test_curated_schema_uses_import_schema_gen(tmp_path):
    components, _ = _components(f"validation.schema={tmp_path}/schema.pbtxt")
    assert "ImportSchemaGen" in components and "SchemaGen" not in components


def test_beam_settings_come_from_typed_fields():
    from rnnflow.pipeline.pipeline import beam_pipeline_args

    config = load_config("sentiment", ["runner.beam.direct_mode=multi_processing", "runner.beam.direct_workers=0"])
    assert beam_pipeline_args(config) == ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                          "--direct_num_workers=0"]
    config = load_config("sentiment", [
        "runner.beam.runner=dataflow", "runner.beam.project=p", "runner.beam.region=europe-west4",
        "runner.beam.temp_location=gs://b/tmp", "runner.beam.setup_file=/rnnflow/setup.py",
        "runner.beam.max_workers=8"])
    assert beam_pipeline_args(config) == [
        "--runner=DataflowRunner", "--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp",
        "--setup_file=/rnnflow/setup.py", "--max_num_workers=8"]


def test_user_beam_args_come_last_and_win():
    _, pipeline = _components("runner.beam_args=[--direct_num_workers=2]")
    assert pipeline.beam_pipeline_args[-1] == "--direct_num_workers=2"


def test_serving_dir_relative_to_output_dir():
    config = load_config("sentiment", ["serving.model_name=imdb"])
    assert RunPaths("/out").serving_dir(config) == "/out/serving/imdb"
    config = load_config("sentiment", ["serving.base_dir=/models"])
    assert RunPaths("/out").serving_dir(config) == "/models/sentiment"


def test_anomalies_are_described_readably():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["label"]
    reason = info.reason.add()
    reason.short_description = "Unexpected string values"
    reason.description = "Examples contain values missing from the schema: maybe (<1%)."
    lines = describe_anomalies(anomalies, "eval")
    assert lines == ["split 'eval', feature 'label': Unexpected string values: "
                     "Examples contain values missing from the schema: maybe (<1%)."]


SCHEMA_WITH_LABEL_DOMAIN = """
feature { name: "text" type: BYTES }
feature { name: "label" type: BYTES domain: "label" presence { min_fraction: 1.0 } }
string_domain { name: "label" value: "neg" value: "pos" }
"""


def test_anomalies_stop_the_run_before_transform(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["text", "label"],
                     [["good film", "pos"], ["bad film", "neg"], ["odd film", "maybe"], ["fine", "pos"]] * 5)
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(SCHEMA_WITH_LABEL_DOMAIN)
    output_dir = tmp_path / "run"
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(output_dir),
                      "--set", f"data.path={data}", "--set", f"validation.schema={schema}"])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert "DataValidationError" in summary["error"]
    assert "feature 'label'" in summary["error"] and "maybe" in summary["error"]
    states = {c["name"]: c["state"] for c in summary["components"]}
    assert states["AnomalyGate"] == "failed"
    assert states["Transform"] == states["Trainer"] == states["Pusher"] == "not_run"
    assert "feature 'label'" in result.stdout
    assert any("AnomalyGate" in line and "failed" in line for line in result.stdout.splitlines())
    assert not (output_dir / "serving").exists()


@pytest.mark.parametrize("config, task_components", [
    ("sentiment", {"CsvExampleGen"}),
    ("forecast", {"TimeSeriesExampleGen", "ForecastReport"}),
    ("charlm", {"TextWindowExampleGen"}),
])
def test_kubeflow_v2_spec_compiles(tmp_path, config, task_components):
    output = tmp_path / "spec.json"
    result = run_cli(["compile", "--config", config, "--pipeline-root", "gs://bucket/root",
                      "--output", str(output), "--set", "runner.image=gcr.io/p/rnnflow:1"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Unable to register" not in result.stderr  # native import noise is filtered
    spec = json.loads(output.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"Transform", "Trainer", "Evaluator", "ServingValidator", "Pusher", "AnomalyGate",
            *task_components} <= set(tasks)
    assert "gcr.io/p/rnnflow:1" in output.read_text()
    # Every step runs the command the pipeline image's entrypoint names.
    entrypoint = json.loads(_dockerfile_instructions("ENTRYPOINT")[0])
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"].values()
    assert {tuple(e["container"]["command"]) for e in executors if "container" in e} == {tuple(entrypoint)}


def _compile(config_name: str, pipeline_root: str, output, *overrides) -> str:
    from rnnflow.pipeline.kubeflow import compile_kubeflow_v2

    config = load_config(config_name, ["runner.image=gcr.io/p/rnnflow:1", *overrides])
    return pathlib.Path(compile_kubeflow_v2(config, pipeline_root, str(output))).read_text()


def _machine_paths(scratch) -> list[str]:
    """Paths that exist only on the compiling machine."""
    import site
    import sysconfig
    import tempfile

    return sorted({str(scratch), str(REPO), os.path.expanduser("~"), sysconfig.get_paths()["purelib"],
                   *site.getsitepackages(), tempfile.gettempdir(), sys.prefix})


@pytest.mark.parametrize("config_name", ["sentiment", "forecast", "charlm"])
def test_compiled_spec_holds_no_path_of_the_compiling_machine(tmp_path, monkeypatch, config_name):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    text = _compile(config_name, "gs://bucket/pipelines", scratch / "spec.json")
    leaked = [path for path in _machine_paths(scratch) if path in text]
    assert not leaked, f"the spec names paths of this machine: {leaked}"
    # Built-in data stays a pkg:// URI, read where each step runs.
    assert "pkg://" in text


@pytest.mark.parametrize("config_name, data", [("sentiment", "gs://data-bucket/reviews/*.csv"),
                                               ("forecast", "gs://data-bucket/weather/weather.csv"),
                                               ("ner", "gs://data-bucket/conll/train.txt")])
def test_spec_for_gs_data_references_only_those_uris(tmp_path, monkeypatch, config_name, data):
    import re

    monkeypatch.chdir(tmp_path)
    text = _compile(config_name, "gs://bucket/pipelines", tmp_path / "spec.json", f"data.path={data}")
    uris = set(re.findall(r"[a-z][a-z0-9+.-]*://[^\"\\\s,]*", text))
    assert uris and all(u.startswith(("gs://bucket/pipelines", "gs://data-bucket/")) for u in uris), uris
    assert not [path for path in _machine_paths(tmp_path) if path in text]


def test_portable_compile_rejects_relative_paths(tmp_path):
    from rnnflow.pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="data.path: 'reviews.csv' is relative to this machine"):
        _compile("sentiment", "gs://bucket/root", tmp_path / "spec.json", "data.path=reviews.csv")
    with pytest.raises(ConfigError, match="validation.schema: 'schema.pbtxt' is relative"):
        _compile("sentiment", "gs://bucket/root", tmp_path / "spec.json", "validation.schema=schema.pbtxt")


def test_kubeflow_serving_dir_keeps_absolute_and_uri_base_dirs():
    from rnnflow.pipeline.kubeflow import serving_dir

    root = "gs://bucket/root/"
    assert serving_dir(load_config("sentiment"), root) == "gs://bucket/root/serving/sentiment"
    assert serving_dir(load_config("sentiment", ["serving.base_dir=/models"]), root) == "/models/sentiment"
    assert serving_dir(load_config("sentiment", ["serving.base_dir=gs://other/models/"]), root) == \
        "gs://other/models/sentiment"


def test_kubeflow_compile_requires_an_image(tmp_path):
    result = run_cli(["compile", "--config", "sentiment", "--pipeline-root", "gs://b/r",
                      "--output", str(tmp_path / "s.json")])
    assert result.returncode == 2 and "runner.image: required" in result.stderr
    assert "make image" in result.stderr


def _dockerfile_instructions(name: str) -> list[str]:
    """Arguments of each `name` instruction of the Dockerfile, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_dockerfile_installs_exactly_the_lock_and_the_package():
    import shlex

    installs = [shlex.split(command.split("&&")[0]) for command in _dockerfile_instructions("RUN")
                if "pip install" in command]
    assert len(installs) == 2, installs  # nothing installed beside the lock and rnnflow
    lock, package = installs
    # The lock goes in with the flags `make setup` uses, hash-checked and without resolution.
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    make_flags = {f for f in shlex.split(makefile.split("-r requirements/lock.txt")[0].splitlines()[-1])
                  if f.startswith("--") and f not in ("--quiet", "--disable-pip-version-check")}
    assert make_flags <= set(lock) and {"--no-deps", "--require-hashes"} <= set(lock)
    assert lock[lock.index("-r") + 1] == "requirements/lock.txt"
    assert package[-1] == "." and "--no-deps" in package
    copied = " ".join(_dockerfile_instructions("COPY"))
    assert "requirements/lock.txt" in copied and "setup.py" in copied
    for directory in {path.split("/")[0] for path in setup_packages().values()}:
        assert f"COPY {directory} {directory}" in (REPO / "Dockerfile").read_text(), directory
    # The same Python as `make setup` requires.
    assert _dockerfile_instructions("FROM")[0].startswith("python:3.11-")
    assert "sys.version_info[:2] == (3, 11)" in makefile


def setup_packages() -> dict[str, str]:
    """setup.py's package_dir: what `setup()` is called with, in this checkout."""
    import runpy
    from unittest import mock

    with mock.patch("setuptools.setup") as setup:
        cwd = os.getcwd()
        try:
            os.chdir(REPO)
            runpy.run_path(str(REPO / "setup.py"))
        finally:
            os.chdir(cwd)
    return setup.call_args.kwargs["package_dir"]


def test_package_builds_with_configs_for_beam_workers(tmp_path):
    root = os.path.join(os.path.dirname(__file__), "..")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), root], check=True, capture_output=True)
    wheel = next(p for p in os.listdir(tmp_path) if p.endswith(".whl"))
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    for required in ("rnnflow/pipeline/cli.py", "rnnflow/pipeline/configs/sentiment.yaml",
                     "rnnflow/components/text_classification/preprocessing.py", "rnnflow/models/recurrent.py",
                     "rnnflow/pipeline/configs/forecast.yaml", "rnnflow/components/forecasting/ingest.py"):
        assert required in names
    assert imdb_sample_path()  # the default config's data ships with tfx
    # Every module of the source tree is in the wheel: packages are discovered, not listed.
    sources = {f"rnnflow/{path.relative_to(REPO).as_posix()}" for top in ("pipeline", "components", "models")
               for path in (REPO / top).rglob("*.py") if "__pycache__" not in path.parts}
    assert sources <= set(names), sorted(sources - set(names))
    # ... and the sample data a task package ships for its built-in config (with its licence).
    shipped = {f"rnnflow/{path.relative_to(REPO).as_posix()}" for path in (REPO / "components").glob("*/data/*")}
    assert "rnnflow/components/translation/data/eng_fra_sample.tsv" in shipped
    assert shipped <= set(names), sorted(shipped - set(names))


def test_tuning_adds_the_tuner_and_feeds_the_trainer():
    components, _ = _components("tuning.enabled=true", "tuning.search_space.model.cell=[gru, mingru]")
    assert "Tuner" in components
    assert components["Tuner"].exec_properties["tuner_fn"].endswith("text_classification.trainer.tuner_fn")
    assert "Tuner" in {n.id for n in components["Trainer"].upstream_nodes}


def test_forecasting_plugs_in_its_own_example_gen_splits_and_report():
    config = load_config("forecast")
    pipeline = create_pipeline(config, "/tmp/root", "/tmp/serving", "/tmp/m.sqlite")
    components = {c.id: c for c in pipeline.components}
    assert "TimeSeriesExampleGen" in components and "CsvExampleGen" not in components
    splits = json.loads(components["Transform"].exec_properties["splits_config"])
    assert splits == {"analyze": ["train"], "transform": ["train", "eval", "test"]}
    assert {"Trainer", "Evaluator", "TimeSeriesExampleGen"} <= {n.id for n in components["ForecastReport"].upstream_nodes}
    assert components["Trainer"].exec_properties["run_fn"].endswith("forecasting.trainer.run_fn")


def test_reuse_from_imports_earlier_best_hyperparameters(tmp_path):
    from rnnflow.pipeline.config import ConfigError

    best = tmp_path / "pipeline_root" / "Tuner" / "best_hyperparameters"
    for version in ("7", "12"):
        (best / version).mkdir(parents=True)
        (best / version / "best_hyperparameters.txt").write_text("{}")
    components, _ = _components(f"tuning.reuse_from={tmp_path}")
    assert "hyperparameters_importer" in components and "Tuner" not in components
    assert components["hyperparameters_importer"].exec_properties["artifact_uri"] == str(best / "12")
    with pytest.raises(ConfigError, match="tuning.reuse_from: no best_hyperparameters.txt"):
        _components(f"tuning.reuse_from={tmp_path / 'empty'}")


@pytest.mark.parametrize("config_name, example_gen", [
    ("sentiment", "CsvExampleGen"), ("forecast", "TimeSeriesExampleGen"), ("ner", "SentenceExampleGen"),
    ("charlm", "TextWindowExampleGen")])
def test_model_and_training_changes_keep_examples_and_transform_cached(config_name, example_gen):
    def properties(*overrides):
        config = load_config(config_name, list(overrides))
        components = {c.id: c for c in create_pipeline(config, "/r", "/s", "/m.sqlite").components}
        return {node: components[node].exec_properties for node in (example_gen, "Transform", "Trainer")}

    base = properties()
    changed = properties("training.epochs=1", "model.units=7", "training.learning_rate=0.01")
    assert changed[example_gen] == base[example_gen]
    assert changed["Transform"] == base["Transform"]
    assert changed["Trainer"] != base["Trainer"]
    data_change = {"forecast": "data.split.train_fraction=0.6", "charlm": "task.window=50"}
    assert properties(data_change.get(config_name, "task.max_tokens=9"))["Transform"] != base["Transform"]
    # Batch scoring settings reach no component that shapes the model.
    assert properties("inference.path=/data/new.jsonl") == base


def test_inference_path_adds_batch_scoring_gated_on_the_evaluator_and_serving_validation():
    components, _ = _components()
    assert "BulkInferrer" not in components and "InferenceExamples" not in components
    components, _ = _components("inference.path=/data/new_reviews.jsonl")
    bulk = components["BulkInferrer"]
    assert bulk.inputs["examples"].producer_component_id == "InferenceExamples"
    assert bulk.inputs["model"].producer_component_id == "Trainer"
    # Blessed by the Evaluator and servable: the ServingValidator's ModelBlessing says both.
    assert bulk.inputs["model_blessing"].producer_component_id == "ServingValidator"
    assert json.loads(bulk.exec_properties["model_spec"])["model_signature_name"] == ["serving_examples"]
    assert components["InferenceExamples"].exec_properties["path"] == "/data/new_reviews.jsonl"


def test_inference_file_without_a_known_extension_needs_a_format():
    with pytest.raises(ConfigError, match=r"inference.format: '/data/new.dat' has no .csv, .jsonl or .parquet"):
        load_config("sentiment", ["inference.path=/data/new.dat"])
    assert load_config("sentiment", ["inference.path=/data/new.dat", "inference.format=jsonl"]).inference.format == \
        "jsonl"


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_blessing_thresholds_follow_the_metrics_direction(higher_is_better):
    import tensorflow_model_analysis as tfma

    from rnnflow.components.tasks.base import blessing_threshold

    threshold = blessing_threshold(0.8, 0.05, higher_is_better=higher_is_better)
    bound = threshold.value_threshold
    # Accuracy must reach 0.8 and lose at most 0.05; a loss must stay under 0.8 and grow at most 0.05.
    assert (bound.lower_bound.value, bound.HasField("upper_bound")) == (0.8, False) if higher_is_better else \
        (bound.upper_bound.value, bound.HasField("lower_bound")) == (0.8, False)
    change = threshold.change_threshold
    assert change.direction == (tfma.MetricDirection.HIGHER_IS_BETTER if higher_is_better
                                else tfma.MetricDirection.LOWER_IS_BETTER)
    assert change.absolute.value == pytest.approx(-0.05 if higher_is_better else 0.05)
