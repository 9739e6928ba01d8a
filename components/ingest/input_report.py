"""Data facts computed inside the pipeline, at run time, from the data each run ingests.

A compiled spec holds the config, never facts about one day's data (class names, row
counts, a series' frequency and split dates). The task's input check
(`Task.preflight`) runs in the ExampleGen on the files of the span being ingested and
its `InputReport` travels with the artifacts:

- ExampleGen: the report as a custom property of the Examples (`input_report`);
- Transform: added to `custom_config["input"]` for `preprocessing_fn`, and written
  into the transform graph (`input_report.json`) for the Tuner and Trainer;
- Trainer: the config and the report next to the model (`rnnflow_facts.json`), from
  which the Evaluator builds its `EvalConfig` (`Task.eval_config`) and later
  components read the facts of the model they judge; and its own predictions on a sample
  of raw eval examples Transform keeps (`serving_reference.json`), which serving validation
  compares with the exported signatures'.

Transform and Evaluator are TFX's components and executors, subclassed only to do
the above before TFX's own `Do`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from rnnflow.components.ingest import csv_example_gen

from rnnflow.components.common import run_facts
from rnnflow.components.ingest.ingest_config import config_from, example_gen_custom_config
from rnnflow.components.ingest.package_filesystem import local_path
from rnnflow.components.tasks import InputReport, get_task
from rnnflow.components.tasks.base import DataError, has_span, latest_spans, split_input_path
from rnnflow.components.tasks import splits as splits_lib
from rnnflow.pipeline.config import PipelineConfig, parse_config, replace_fields

REPORT_PROPERTY = "input_report"  # custom property of ExampleGen's Examples (JSON)
SPANS_PROPERTY = "spans_read"  # custom property of ExampleGen's Examples (JSON list)
REFERENCE_EXAMPLES_KEY = "reference_examples"  # Transform's custom_config: how many to keep

# Python logging (not absl, whose level Beam resets mid-run): reaches the run log.
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# ExampleGen: the input check on the ingested span.
# ---------------------------------------------------------------------------

def span_input(exec_properties: dict[str, Any]) -> tuple[str, list[str]]:
    """(input_base, files) of the span the driver resolved, as local paths where the
    executor runs (pkg:// resolved), so Beam's and TFX's readers open them."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    pattern = os.path.join(input_base, input_config.splits[0].pattern)
    return local_path(input_base), sorted(local_path(f) for f in fileio.glob(pattern))


def predefined_input(exec_properties: dict[str, Any]) -> dict[str, list[str]]:
    """split -> files of the predefined splits (`data.eval_path`, `data.test_path`): the input
    Splits after the first (train), each pattern resolved by the driver to the same span."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    found = {}
    for split in input_config.splits[1:]:
        files = sorted(local_path(f) for f in fileio.glob(os.path.join(input_base, split.pattern)))
        if not files:
            raise DataError(f"{splits_lib.FIELDS[split.name]}: matches no files: {os.path.join(input_base, split.pattern)}")
        found[split.name] = files
    return found


def driver_span(exec_properties: dict[str, Any]) -> int:
    """The span the ExampleGen driver resolved (0 for a data.path without a span spec)."""
    return exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME) or 0


def window_input(exec_properties: dict[str, Any], config: PipelineConfig) -> tuple[list[int], list[str]]:
    """(spans, files) an ExampleGen whose task's spans form one series reads: the span the
    driver resolved and, with `data.rolling_spans: K`, the K-1 spans before it (TFX's span
    resolution on the same pattern), oldest first."""
    input_base, files = span_input(exec_properties)
    span = driver_span(exec_properties)
    if config.data.rolling_spans == 1 or not has_span(config.data.path):
        return [span], files
    _, pattern = split_input_path(config.data.path)
    window = latest_spans(os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], pattern),
                          config.data.rolling_spans, last=span)
    return [number for number, _ in window], [f for _, span_files in window for f in span_files]


def set_report(examples, report: InputReport, spans: list[int]) -> None:
    """Attaches the input report and the spans read (JSON lists) to ExampleGen's Examples."""
    examples.set_string_custom_property(REPORT_PROPERTY, json.dumps(dataclasses.asdict(report)))
    examples.set_string_custom_property(SPANS_PROPERTY, json.dumps(spans))


def report_of(examples_artifacts: list, task) -> dict:
    """The input report of the Examples a component reads: one span's, or for the latest K
    spans (`data.rolling_spans`) their reports merged by the task, oldest span first."""
    reports = []
    for examples in sorted(examples_artifacts, key=lambda e: e.get_int_custom_property("span")):
        raw = examples.get_string_custom_property(REPORT_PROPERTY)
        if not raw:
            raise ValueError(f"Examples at {examples.uri} carry no '{REPORT_PROPERTY}': "
                             "they were not written by an rnnflow ExampleGen")
        reports.append(json.loads(raw))
    if not reports:
        raise ValueError("no Examples to read an input report from")
    return reports[0] if len(reports) == 1 else task.merge_reports(reports)


class _ReportingExecutor:
    """Runs the task's input check on the span's files (and the predefined splits') before TFX's
    ExampleGen `Do`, and attaches the report to the Examples. A DataError fails the component
    with the message. With a predefined test split but no eval file, the train file is
    hash-split into train and eval (`data.split`'s buckets) by TFX's own partition."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        input_base, files = span_input(exec_properties)
        report = get_task(config.task_type).preflight(config, files, split_files=predefined_input(exec_properties))
        properties = {**exec_properties, standard_component_specs.INPUT_BASE_KEY: input_base}
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        names = [split.name for split in input_config.splits]
        if len(names) > 1 and "eval" not in names:
            # TFX names the output splits after the input's: an eval split read from the train
            # pattern, which GenerateExamplesByBeam hash-splits from train instead.
            train = input_config.splits[0]
            input_config = example_gen_pb2.Input(splits=[
                train, example_gen_pb2.Input.Split(name="eval", pattern=train.pattern), *input_config.splits[1:]])
            properties[standard_component_specs.INPUT_CONFIG_KEY] = proto_utils.proto_to_json(input_config)
            properties[_HASH_SPLIT_TRAIN] = True
        super().Do(input_dict, output_dict, properties)
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
            set_report(examples, report, [driver_span(exec_properties)])

    def GenerateExamplesByBeam(self, pipeline, exec_properties):  # noqa: N802 (TFX's name)
        if not exec_properties.get(_HASH_SPLIT_TRAIN):
            return super().GenerateExamplesByBeam(pipeline, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        split = config_from(exec_properties).data.split
        hashed = {**exec_properties,
                  standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
                      example_gen_pb2.Input(splits=input_config.splits[:1])),
                  standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(_hash_output(
                      {"train": split.train_buckets, "eval": split.eval_buckets}))}
        result = super().GenerateExamplesByBeam(pipeline, hashed)  # TFX's own hash partition
        to_records = self.GetInputSourceToExamplePTransform()
        for other in input_config.splits[2:]:
            result[other.name] = pipeline | f"InputToRecord[{other.name}]" >> to_records(exec_properties, other.pattern)
        return result


# An exec property the executor adds for itself: train and eval hash-split from the train files.
_HASH_SPLIT_TRAIN = "_rnnflow_hash_split_train"


def _hash_output(buckets: dict[str, int]):
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=count) for name, count in buckets.items()]))


class CsvExecutor(_ReportingExecutor, csv_example_gen.Executor):
    pass


class TfrecordExecutor(_ReportingExecutor, import_executor.Executor):
    pass


class ParquetExecutor(_ReportingExecutor, parquet_executor.Executor):
    pass


_EXECUTORS = {"csv": (CsvExecutor, "CsvExampleGen"), "tfrecord": (TfrecordExecutor, "ImportExampleGen"),
              "parquet": (ParquetExecutor, "FileBasedExampleGen")}


def reporting_example_gen(config: PipelineConfig, data_paths: dict[str, str], *,
                          buckets: dict[str, int]) -> FileBasedExampleGen:
    """TFX's FileBasedExampleGen (driver: spans, fingerprints) for `data.format` over
    `data_paths` (split -> path): one file set hash-split into `buckets` (split name -> hash
    buckets), or TFX's predefined splits, one input Split per path."""
    executor, node_id = _EXECUTORS[config.data.format]
    if len(data_paths) == 1:
        input_base, pattern = split_input_path(data_paths["train"])
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split",
                                                                                 pattern=pattern)])
        output_config = _hash_output(buckets)
    else:
        input_base, input_config = splits_lib.example_gen_input(data_paths)
        output_config = example_gen_pb2.Output()
    return FileBasedExampleGen(
        input_base=input_base, input_config=input_config, output_config=output_config,
        custom_config=example_gen_custom_config(config),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor)).with_id(node_id)


# ---------------------------------------------------------------------------
# Transform: the report into preprocessing_fn and the transform graph.
# ---------------------------------------------------------------------------

class _TransformExecutor(transform_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802
        custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}")
        config = parse_config(custom_config["config"])
        task = get_task(config.task_type)
        examples = input_dict[standard_component_specs.EXAMPLES_KEY]
        report = report_of(examples, task)
        custom_config["input"] = report
        train_files = sorted(f for e in examples for f in fileio.glob(
            os.path.join(artifact_utils.get_split_uri([e], "train"), "*")))
        resolved = task.resolve_data_defaults(config, train_files, report)
        if resolved["values"]:
            # preprocessing_fn parses the same config back (`config_of`), auto fields resolved.
            custom_config["config"] = replace_fields(config, resolved["values"]).to_dict()
            log.info("auto: %s (measured: %s)", _fields_text(resolved["values"]), resolved["measured"])
        super().Do(input_dict, output_dict, {
            **exec_properties, standard_component_specs.CUSTOM_CONFIG_KEY: json.dumps(custom_config)})
        graph = artifact_utils.get_single_uri(output_dict[standard_component_specs.TRANSFORM_GRAPH_KEY])
        run_facts.write_json(os.path.join(graph, run_facts.INPUT_REPORT_FILE), report)
        run_facts.write_json(os.path.join(graph, run_facts.RESOLVED_FILE), resolved)
        _write_raw_eval_sample(examples[-1], os.path.join(graph, run_facts.RAW_EVAL_SAMPLE_FILE),
                               custom_config.get(REFERENCE_EXAMPLES_KEY, 0))


def _write_raw_eval_sample(examples, path: str, count: int) -> None:
    """The first `count` serialized eval examples of the newest span (gzipped TFRecord)."""
    import tensorflow as tf

    files = sorted(fileio.glob(os.path.join(artifact_utils.get_split_uri([examples], "eval"), "*")))
    if not files or count < 1:
        return
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record.numpy())


def read_raw_eval_sample(transform_graph_path: str) -> list[bytes]:
    import tensorflow as tf

    path = os.path.join(transform_graph_path, run_facts.RAW_EVAL_SAMPLE_FILE)
    if not fileio.exists(path):
        return []
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def write_serving_reference(serving_model_dir: str, examples: list[bytes], outputs: dict) -> None:
    """Called by run_fn: the Trainer's own predictions (`outputs`: serving output name -> one
    value per example) on the raw `examples`, next to the model."""
    import base64

    run_facts.write_json(run_facts.beside_model(serving_model_dir, run_facts.REFERENCE_FILE),
                         {"examples": [base64.b64encode(e).decode() for e in examples], "outputs": outputs})


def serving_reference_path(model_uri: str) -> str:
    return run_facts.of_model(model_uri, run_facts.REFERENCE_FILE)


class Transform(tfx.components.Transform):
    """TFX's Transform; `preprocessing_fn` finds the input report in `custom_config["input"]`."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(_TransformExecutor)


def _fields_text(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


# ---------------------------------------------------------------------------
# Trainer -> Evaluator and later: the facts of a trained model.
# ---------------------------------------------------------------------------

def write_model_facts(serving_model_dir: str, config: dict, report: dict, compatibility: dict) -> None:
    """Called by run_fn: the config (tuned values applied), input report and the data facts a
    later warm start must match (`compatibility`: vocabulary, columns) of this model."""
    run_facts.write_json(run_facts.beside_model(serving_model_dir, run_facts.FACTS_FILE),
                         {"config": config, "input": report, "compatibility": compatibility})


def read_model_facts(model_uri: str) -> tuple[PipelineConfig, InputReport]:
    facts = run_facts.read_facts(model_uri)
    return parse_config(facts["config"]), InputReport(**facts["input"])


class _EvaluatorExecutor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802
        config, report = read_model_facts(
            artifact_utils.get_single_uri(input_dict[standard_component_specs.MODEL_KEY]))
        eval_config = get_task(config.task_type).eval_config(config, report)
        super().Do(input_dict, output_dict, {
            **exec_properties, standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config)})


class Evaluator(tfx.components.Evaluator):
    """TFX's Evaluator with the EvalConfig built at run time from the candidate model's facts
    (`Task.eval_config`); the compiled eval_config holds the facts-free part only."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(_EvaluatorExecutor)


TEST_SPLIT = "test"


def without_thresholds(eval_config):
    """The EvalConfig's metrics with no blessing thresholds: the test split reports, never decides."""
    eval_config = type(eval_config).FromString(eval_config.SerializeToString())
    for spec in eval_config.metrics_specs:
        spec.ClearField("thresholds")
        for metric in spec.metrics:
            metric.ClearField("threshold")
            metric.ClearField("per_slice_thresholds")
            metric.ClearField("cross_slice_thresholds")
    return eval_config


class _TestEvaluatorExecutor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802
        config, report = read_model_facts(
            artifact_utils.get_single_uri(input_dict[standard_component_specs.MODEL_KEY]))
        eval_config = without_thresholds(get_task(config.task_type).eval_config(config, report))
        super().Do(input_dict, output_dict, {
            **exec_properties, standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config)})


class TestEvaluator(tfx.components.Evaluator):
    """The candidate model scored once on the test split (`data.test_path`) through TFMA with the
    task's own metrics, after the Evaluator has blessed or not on eval; no baseline, no
    thresholds: its numbers (the run summary's `test_metrics`) decide nothing."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(_TestEvaluatorExecutor)


def test_evaluator(task, config: PipelineConfig, *, examples, model, after) -> TestEvaluator:
    component = TestEvaluator(examples=examples, model=model,
                              eval_config=without_thresholds(task.eval_config(config, None)),
                              example_splits=[TEST_SPLIT]).with_id("TestEvaluator")
    component.add_upstream_node(after)
    return component

