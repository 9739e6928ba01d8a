"""The one ingest scaffold: the ExampleGen of every task that reads its own input format (a
series, CoNLL sentences, plain text), as `train_and_export` is the one `run_fn`.

A task supplies an `Ingest`: how to read a span's files, report on what it read, split it and
turn one record into a tf.Example. The scaffold owns the rest, the same for every task: TFX's
FileBasedExampleGen (whose driver resolves spans and fingerprints the input), the executor that
reads the span's files once, runs the task's input check on that very read (its report travels
with the Examples), writes each split's examples with Beam and records the counts; and the
pre-flight check before a local run, which is the same read and report (`Ingest.preflight`).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import apache_beam as beam
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from rnnflow.components.ingest.ingest_config import config_from, example_gen_custom_config
from rnnflow.components.ingest.input_report import driver_span, set_report, span_input
from rnnflow.components.tasks import get_task
from rnnflow.components.tasks.base import InputReport, resolve_input_files

EXAMPLES_FILE_PREFIX = "data_tfrecord"


class Ingest:
    """How a task turns the files of one span into split tf.Examples."""

    node_id: str = "TaskExampleGen"
    splits: tuple[str, ...] = ("train", "eval")
    unit: str = "rows"  # the Examples record `<split>_<unit>`: how many records each split holds

    def input_files(self, exec_properties: dict[str, Any], config) -> tuple[list[int], list[str]]:
        """(spans, files) the executor reads: the span the driver resolved."""
        return [driver_span(exec_properties)], span_input(exec_properties)[1]

    def preflight_files(self, config) -> list[str]:
        """The files a local run's pre-flight check reads: those `data.path` names."""
        return resolve_input_files(config.data)

    def read(self, config, files: list[str]) -> Any:
        """The files, read once (a DataError names the file and line of a problem)."""
        raise NotImplementedError

    def report(self, config, files: list[str], read) -> InputReport:
        raise NotImplementedError

    def split(self, config, read) -> dict[str, list]:
        """split name -> its records, in `splits` order."""
        raise NotImplementedError

    def to_example(self, config, read) -> Callable[[Any], Any]:
        """record -> tf.train.Example (pickled to Beam's workers)."""
        raise NotImplementedError

    def feature_spec(self, config, report: InputReport) -> dict:
        """The parse spec of every feature `to_example` writes (the task's features module)."""
        raise NotImplementedError

    def properties(self, config, read, rows: dict[str, list]) -> dict[str, int | str]:
        """Custom properties of the Examples beyond the input report."""
        return {f"{split}_{self.unit}": len(split_rows) for split, split_rows in rows.items()}

    def preflight(self, config, files: list[str] | None = None) -> InputReport:
        files = files or self.preflight_files(config)
        return self.report(config, files, self.read(config, files))


def write_splits(pipeline: beam.Pipeline, rows: dict[str, list], to_example, output_uri: str) -> None:
    """Each split's rows -> `to_example(row)` tf.Examples, serialized into `Split-<name>/`."""
    for split, split_rows in rows.items():
        _ = (pipeline
             | f"Rows[{split}]" >> beam.Create(split_rows, reshuffle=False)
             | f"ToExample[{split}]" >> beam.Map(lambda row: to_example(row).SerializeToString())
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(output_uri, f"Split-{split}", EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"))


class Executor(BaseBeamExecutor):
    """The span's files -> the task's splits of tf.Examples, with the input report
    (`input_report.REPORT_PROPERTY`) and the task's counts as custom properties."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        ingest = get_task(config.task_type).ingest()
        spans, files = ingest.input_files(exec_properties, config)
        read = ingest.read(config, files)
        report = ingest.report(config, files, read)
        rows = ingest.split(config, read)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        with self._make_beam_pipeline() as pipeline:
            write_splits(pipeline, rows, ingest.to_example(config, read), examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(ingest.splits))
        for key, value in ingest.properties(config, read, rows).items():
            if isinstance(value, int):
                examples.set_int_custom_property(key, value)
            else:
                examples.set_string_custom_property(key, value)
        set_report(examples, report, spans)


def task_example_gen(config, input_base: str, pattern: str) -> FileBasedExampleGen:
    ingest = get_task(config.task_type).ingest()
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="input", pattern=pattern)]),
        # The executor writes these splits; the driver only needs their names.
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=split, hash_buckets=1) for split in ingest.splits])),
        custom_config=example_gen_custom_config(config),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor)).with_id(ingest.node_id)
