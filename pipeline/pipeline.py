"""Assembles the TFX pipeline for any task, in one readable function."""

from __future__ import annotations

import glob
import json
import os

from tfx import v1 as tfx

from rnnflow.components.gates.anomaly_gate import AnomalyGate
from rnnflow.components.serving.atomic_pusher import KEEP_VERSIONS_PROPERTY, Pusher
from rnnflow.components.gates.data_gates import (AcceptedSchema, DriftBaselinePublish, DriftGate, PublishedDriftBaseline,
                                           SchemaChoice)
from rnnflow.components.ingest.input_report import (REFERENCE_EXAMPLES_KEY, TEST_SPLIT, Evaluator, Transform,
                                                   test_evaluator)
from rnnflow.components.serving.batch_inference import SPLIT as INFERENCE_SPLIT
from rnnflow.components.serving.batch_inference import BulkInferrer, InferenceExamples
from rnnflow.components.serving.serving_validation import ServingValidator
from rnnflow.components.ingest.span_window import rolling_spans_resolver
from rnnflow.components.tasks import get_task, splits
from rnnflow.pipeline.config import (
    DATA_SECTIONS, SCHEMA_MODES, ConfigError, PipelineConfig, code_version, pipeline_path, portable_path)

BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"  # written by TFX's Tuner


def create_pipeline(config: PipelineConfig, pipeline_root: str, serving_dir: str,
                    metadata_path: str | None = None, *, portable: bool = False) -> tfx.dsl.Pipeline:
    """The pipeline; every data fact is computed by its components at run time. `portable`:
    for a spec that runs on other machines (Kubeflow/Vertex), where relative paths are errors."""
    task = get_task(config.task_type)
    custom_config = {**task.custom_config(config), "code_version": code_version()}
    # Batch scoring does not change the model: changing or adding inference.path keeps the
    # Transform, Trainer and Evaluator cached (their configs read the default section).
    custom_config["config"].pop("inference", None)

    def path(value: str, field: str) -> str:
        return portable_path(value, field) if portable else pipeline_path(value)

    example_gen = task.example_gen(config, {split: path(value, splits.FIELDS[split])
                                            for split, value in splits.split_paths(config.data).items()})
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_components, schema = _schema(config, statistics_gen, path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema)
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    drift_components = _drift_gate(config, statistics_gen, schema)

    # The data every later step learns from: the ingested span, or the latest
    # data.rolling_spans spans (tasks whose spans form one series read those in the ExampleGen).
    span_components, training_examples = [], example_gen.outputs["examples"]
    if config.data.rolling_spans > 1 and not task.spans_form_one_series:
        if portable:
            raise ConfigError(
                "data.rolling_spans: needs TFX's SpanRangeStrategy resolver, which TFX 1.16's Kubeflow V2 "
                "compiler cannot compile (it supports the latest-artifact and latest-blessed-model "
                "resolvers only); use 1 for Kubeflow/Vertex runs")
        resolver = rolling_spans_resolver(example_gen, config.data.rolling_spans)
        span_components, training_examples = [resolver], resolver.outputs["examples"]

    transform = Transform(
        examples=training_examples, schema=schema,
        preprocessing_fn=task.preprocessing_fn,
        # The raw eval examples Transform keeps for the Trainer's reference predictions (serving
        # validation's skew check) are as many as serving validation scores.
        custom_config={**data_only(custom_config), REFERENCE_EXAMPLES_KEY: config.serving.validation_examples},
        # Fixed costs a run does not need (issue 10; before/after in benchmarks/pipeline_run.py):
        # StatisticsGen has already described the raw data and nothing reads TFT's pre- and
        # post-transform statistics; no later run reads an analyzer cache (none is wired in);
        # TFT's TF1 graph mode traces preprocessing_fn once instead of once per phase and save,
        # and gives the same transform graph (the Trainer and serving load it as before).
        disable_statistics=True, disable_analyzer_cache=True, force_tf_compat_v1=True,
        splits_config=tfx.proto.SplitsConfig(analyze=["train"], transform=list(task.splits))).with_id("Transform")
    for gate in (anomaly_gate, *drift_components[-1:]):
        transform.add_upstream_node(gate)

    tuning_components = []
    hyperparameters = None
    if config.tuning.enabled:
        tuner = tfx.components.Tuner(
            tuner_fn=task.tuner_fn,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema,
            train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(),
            custom_config=custom_config)
        tuning_components, hyperparameters = [tuner], tuner.outputs["best_hyperparameters"]
    elif config.tuning.reuse_from:
        importer = tfx.dsl.Importer(
            source_uri=find_best_hyperparameters(config.tuning.reuse_from),
            artifact_type=tfx.types.standard_artifacts.HyperParameters,
        ).with_id("hyperparameters_importer")
        tuning_components, hyperparameters = [importer], importer.outputs["result"]

    latest_blessed_model = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    trainer = tfx.components.Trainer(
        run_fn=task.run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        hyperparameters=hyperparameters,
        # training.warm_start: the run_fn decides whether the weights can be reused.
        base_model=latest_blessed_model.outputs["model"] if config.training.warm_start != "none" else None,
        custom_config=custom_config)

    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],  # judged on the newest span's data
        model=trainer.outputs["model"],
        baseline_model=latest_blessed_model.outputs["model"],
        eval_config=task.eval_config(config, None)).with_id("Evaluator")

    # The job of TFX's InfraValidator (which needs Docker or Kubernetes), in a clean subprocess.
    serving_validator = ServingValidator(
        model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
        model_blessing=evaluator.outputs["blessing"], tf_serving_version=config.serving.tf_serving_version,
        examples_signature=task.examples_signature, served_signature=task.served_signature,
        sample=config.serving.validation_examples).with_id("ServingValidator")

    pusher = Pusher(  # atomic, strictly increasing versions (components/serving/atomic_pusher.py)
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
        custom_config={KEEP_VERSIONS_PROPERTY: config.serving.keep_versions}).with_id("Pusher")

    inference_components = []
    if config.inference.path:  # batch scoring with the blessed, servable model
        inference_examples = InferenceExamples(
            model=trainer.outputs["model"], path=path(config.inference.path, "inference.path"),
            input_format=config.inference.format or "", id_column=config.inference.id_column or "",
            delimiter=config.inference.delimiter, signature=task.served_signature).with_id("InferenceExamples")
        bulk_inferrer = BulkInferrer(
            examples=inference_examples.outputs["examples"], model=trainer.outputs["model"],
            model_blessing=serving_validator.outputs["serving_blessing"],
            data_spec=tfx.proto.DataSpec(example_splits=[INFERENCE_SPLIT]),
            model_spec=tfx.proto.ModelSpec(model_signature_name=[task.examples_signature])).with_id("BulkInferrer")
        inference_components = [inference_examples, bulk_inferrer]

    reports = task.after_evaluation(config, examples=example_gen.outputs["examples"],
                                    model=trainer.outputs["model"], blessing=evaluator.outputs["blessing"])
    if config.data.test_path and TEST_SPLIT not in task.splits:
        # A task whose own splits hold a test split reports on it in after_evaluation (forecasting).
        reports.append(test_evaluator(task, config, examples=example_gen.outputs["examples"],
                                      model=trainer.outputs["model"], after=evaluator))
    publish = []
    if drift_components:  # last: the next run's drift baseline only if this run got this far
        publish = [DriftBaselinePublish(baseline=drift_components[-1].outputs["baseline"]).with_id(
            "DriftBaselinePublish")]
        for node in (pusher, *inference_components, *reports):
            publish[0].add_upstream_node(node)

    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, *schema_components, example_validator, anomaly_gate,
                    *drift_components, *span_components, transform, *tuning_components, latest_blessed_model, trainer, evaluator,
                    serving_validator, pusher, *inference_components, *reports, *publish],
        enable_cache=config.runner.enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path else None),
        beam_pipeline_args=beam_pipeline_args(config))


def beam_pipeline_args(config: PipelineConfig) -> list[str]:
    """Beam flags from `runner.beam`, then the raw `runner.beam_args` (which win)."""
    beam = config.runner.beam
    if beam.runner == "direct":
        args = ["--runner=DirectRunner", f"--direct_running_mode={beam.direct_mode}",
                f"--direct_num_workers={beam.direct_workers}"]
    else:
        args = ["--runner=DataflowRunner", f"--project={beam.project}", f"--region={beam.region}",
                f"--temp_location={beam.temp_location}"]
        if beam.sdk_container_image:
            args.append(f"--sdk_container_image={beam.sdk_container_image}")
        if beam.setup_file:
            args.append(f"--setup_file={beam.setup_file}")
        if beam.max_workers:
            args.append(f"--max_num_workers={beam.max_workers}")
    return [*args, *config.runner.beam_args]


def _schema(config: PipelineConfig, statistics_gen, path) -> tuple[list, object]:
    """The schema components for `validation.schema`, and the schema channel they produce."""
    mode = config.validation.schema
    if mode not in SCHEMA_MODES:
        importer = tfx.components.ImportSchemaGen(schema_file=path(mode, "validation.schema"))
        return [importer], importer.outputs["schema"]
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                          infer_feature_shape=True)
    if mode == "infer":
        return [schema_gen], schema_gen.outputs["schema"]
    previous = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        schema=tfx.dsl.Channel(type=AcceptedSchema, producer_component_id="SchemaChoice", output_key="accepted"),
    ).with_id("previous_schema_resolver")
    choice = SchemaChoice(inferred=schema_gen.outputs["schema"], previous=previous.outputs["schema"],
                          unbounded_json=json.dumps(get_task(config.task_type).unbounded_features(config)),
                          ).with_id("SchemaChoice")
    return [schema_gen, previous, choice], choice.outputs["schema"]


def _drift_gate(config: PipelineConfig, statistics_gen, schema) -> list:
    """The drift gate against the last accepted run's statistics, unless drift.action is none."""
    drift = config.validation.drift
    if drift.action == "none":
        return []
    previous = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        statistics=tfx.dsl.Channel(type=PublishedDriftBaseline, producer_component_id="DriftBaselinePublish",
                                   output_key="published"),
    ).with_id("previous_statistics_resolver")
    gate = DriftGate(
        statistics=statistics_gen.outputs["statistics"], schema=schema,
        previous=previous.outputs["statistics"], action=drift.action,
        categorical_threshold=drift.categorical_threshold, numeric_threshold=drift.numeric_threshold,
        excluded_json=json.dumps(get_task(config.task_type).unbounded_features(config))).with_id("DriftGate")
    return [previous, gate]


def data_only(custom_config: dict) -> dict:
    """Transform sees only the sections that shape the data, so changing the model or the
    training settings reuses the cached Transform."""
    sections = {k: v for k, v in custom_config["config"].items() if k in DATA_SECTIONS}
    return {**custom_config, "config": sections}


def find_best_hyperparameters(reuse_from: str) -> str:
    """The directory holding best_hyperparameters.txt: given directly, or the newest Tuner
    output under an earlier run's --output-dir."""
    path = os.path.abspath(os.path.expanduser(reuse_from))
    if os.path.isfile(path) and os.path.basename(path) == BEST_HYPERPARAMETERS_FILE:
        return os.path.dirname(path)
    if os.path.isfile(os.path.join(path, BEST_HYPERPARAMETERS_FILE)):
        return path
    found = glob.glob(os.path.join(path, "pipeline_root", "Tuner", "best_hyperparameters", "*",
                                   BEST_HYPERPARAMETERS_FILE))
    if not found:
        raise ConfigError(f"tuning.reuse_from: no {BEST_HYPERPARAMETERS_FILE} under {path} "
                          "(give a run's --output-dir where tuning was enabled, or the file itself)")
    return os.path.dirname(max(found, key=lambda f: int(f.split(os.sep)[-2])))
