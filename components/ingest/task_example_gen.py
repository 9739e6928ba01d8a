"""The one ingest scaffold: the ExampleGen of every task that reads its own input format (a
series, CoNLL sentences, plain text), as `train_and_export` is the one `run_fn`.

A task supplies an `Ingest`: how to read a span's files, report on what it read, split it and
turn one record into a tf.Example. The scaffold owns the rest, the same for every task: TFX's
FileBasedExampleGen (whose driver resolves spans and fingerprints the input), the executor that
reads the span's files once, runs the task's input check on that very read (its report travels
with the Examples), writes each split's examples with Beam and records the counts; and the
pre-flight check before a local run, which is the same read and report (`Ingest.preflight`).

Predefined splits (`data.eval_path`, `data.test_path`: TFX's `Input` with one `Split` per
file, `rnnflow.components.tasks.splits`): each split's files are read on their own; the train
file is all train when eval is given (`Ingest.records`), else split as before; each given split
is checked against the train report (`Ingest.check_split`) and for records shared with an
earlier split (leakage, a warning: an error under --strict-data).
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
from rnnflow.components.ingest.input_report import driver_span, predefined_input, set_report, span_input
from rnnflow.components.tasks import get_task, splits as splits_lib
from rnnflow.components.tasks.base import (InputReport, naming_field, predefined_split_files, resolve_input_files,
                                           same_files, split_input_path)

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

    def records(self, config, read) -> list:
        """Every record of a read, unsplit: a predefined split's files, and the train files when
        the eval split is predefined."""
        raise NotImplementedError

    def record_text(self, record) -> str | None:
        """What the leakage check compares between splits (a sentence's tokens, a window's
        text); None: records are not compared (a task whose `check_split` does its own)."""
        raise NotImplementedError

    def record_texts(self, config, record) -> list[str]:
        """The texts of `record` the leakage check compares (default: its `record_text`, if any);
        a task whose splits cut records of different sizes returns pieces of one size."""
        text = self.record_text(record)
        return [] if text is None else [text]

    def resolve(self, config, train_read):
        """`config` with the fields the input decides (`auto` values the task resolves at ingest,
        e.g. a forecaster's lookback) resolved on the train read; every later step (the other
        splits' reads, the report, the examples) uses it. Default: unchanged."""
        return config

    def read_split(self, config, split: str, files: list[str]) -> Any:
        """A predefined split's files, read (default: as `read` reads the train files)."""
        return self.read(config, files)

    def check_split(self, config, split: str, files: list[str], read, report: InputReport, train) -> None:
        """A predefined split's read against the train report and read (`train`): adds what
        differs from train (an unknown tag or class is counted and named) to `report`; a
        DataError for what cannot be scored (no records)."""

    def properties(self, config, reads: dict[str, Any], rows: dict[str, list]) -> dict[str, int | str]:
        """Custom properties of the Examples beyond the input report."""
        return {f"{split}_{self.unit}": len(split_rows) for split, split_rows in rows.items()}

    def rows(self, config, reads: dict[str, Any]) -> dict[str, list]:
        """split -> its records: the train read split by the task (or all train when eval is
        predefined), and each predefined split's read whole."""
        rows = {"train": self.records(config, reads["train"])} if "eval" in reads else self.split(config, reads["train"])
        for split in splits_lib.PREDEFINED:
            if split in reads:
                rows[split] = self.records(config, reads[split])
        return rows

    def read_splits(self, config, files: dict[str, list[str]]) -> tuple[Any, dict[str, Any]]:
        """(the config resolved on the train read (`resolve`), split -> its read)."""
        same_files(files)
        reads = {"train": self.read(config, files["train"])}
        config = self.resolve(config, reads["train"])
        for split in splits_lib.PREDEFINED:
            if split in files:
                with naming_field(split):
                    reads[split] = self.read_split(config, split, files[split])
        return config, reads

    def report_splits(self, config, files: dict[str, list[str]], reads: dict[str, Any]) -> tuple[InputReport, dict]:
        """(the input report, split -> records): the train report first (its checks name the
        problem before any split is made), the rows, then each predefined split's check and the
        leakage between splits."""
        report = self.report(config, files["train"], reads["train"])
        rows = self.rows(config, reads)
        given = [split for split in splits_lib.PREDEFINED if split in reads]
        for split in given:
            self.check_split(config, split, files[split], reads[split], report, reads["train"])
            report.notes.append(f"{split} split: {len(rows[split])} {self.unit} from "
                                f"{splits_lib.described(files[split])} ({splits_lib.FIELDS[split]})")
        if given:
            report.details["split_files"] = files
            report.warnings.extend(splits_lib.leakage(self.unit, {
                split: self._texts(config, split, split_rows) for split, split_rows in rows.items()}))
        return report, rows

    def _texts(self, config, split: str, records: list):
        for i, record in enumerate(records):
            for text in self.record_texts(config, record):
                yield text, f"{split} {self.unit[:-1]} {i + 1}"

    def preflight(self, config, files: list[str] | None = None) -> InputReport:
        files = {"train": files or self.preflight_files(config),
                 **{split: predefined_split_files(config.data, split) for split in splits_lib.predefined(config.data)}}
        config, reads = self.read_splits(config, files)
        return self.report_splits(config, files, reads)[0]


def write_splits(pipeline: beam.Pipeline, rows: dict[str, list], to_examples: dict[str, Callable],
                 output_uri: str) -> None:
    """Each split's rows -> `to_examples[split](row)` tf.Examples, serialized into `Split-<name>/`."""
    for split, split_rows in rows.items():
        to_example = to_examples[split]
        _ = (pipeline
             | f"Rows[{split}]" >> beam.Create(split_rows, reshuffle=False)
             | f"ToExample[{split}]" >> beam.Map(lambda row, to_example=to_example: to_example(row).SerializeToString())
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(output_uri, f"Split-{split}", EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"))


class Executor(BaseBeamExecutor):
    """The span's files -> the task's splits of tf.Examples, with the input report
    (`input_report.REPORT_PROPERTY`) and the task's counts as custom properties."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        ingest = get_task(config.task_type).ingest()
        spans, files = ingest.input_files(exec_properties, config)
        files = {"train": files, **predefined_input(exec_properties)}
        config, reads = ingest.read_splits(config, files)
        report, rows = ingest.report_splits(config, files, reads)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        # The train read turns the records split from it into examples; a predefined split's, its own.
        to_examples = {split: ingest.to_example(config, reads.get(split, reads["train"])) for split in rows}
        with self._make_beam_pipeline() as pipeline:
            write_splits(pipeline, rows, to_examples, examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(rows))
        for key, value in ingest.properties(config, reads, rows).items():
            if isinstance(value, int):
                examples.set_int_custom_property(key, value)
            else:
                examples.set_string_custom_property(key, value)
        set_report(examples, report, spans)


def task_example_gen(config, data_paths: dict[str, str]) -> FileBasedExampleGen:
    """`data_paths`: split -> its path as the components see it (`splits.split_paths`)."""
    ingest = get_task(config.task_type).ingest()
    if len(data_paths) == 1:
        input_base, pattern = split_input_path(data_paths["train"])
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="input", pattern=pattern)])
        # The executor writes these splits; the driver only needs their names.
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=split, hash_buckets=1) for split in ingest.splits]))
    else:  # one input Split per file; the executor names the output splits
        input_base, input_config = splits_lib.example_gen_input(data_paths)
        output_config = example_gen_pb2.Output()
    return FileBasedExampleGen(
        input_base=input_base, input_config=input_config, output_config=output_config,
        custom_config=example_gen_custom_config(config),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor)).with_id(ingest.node_id)
