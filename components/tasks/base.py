"""The interface between a task (text classification, forecasting, ...) and the pipeline."""

from __future__ import annotations

import abc
import dataclasses
import glob
import os
from typing import Any

from rnnflow.pipeline import config as config_lib


# Written by every task's Trainer into its model_run directory; read into the run summary.
TRAINING_SUMMARY_FILE = "training_summary.json"


class DataError(ValueError):
    """The input data cannot train a correct model; the message names the file, column or row."""


@dataclasses.dataclass
class InputReport:
    """What the pre-flight check learned about the input, passed on to the components."""
    files: list[str]
    rows: int
    # Sorted class names (classification tasks): fixes class ids before training.
    label_values: list[str] = dataclasses.field(default_factory=list)
    label_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    # Data that was fixed up or looks unable to train a good model (errors under --strict-data).
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Informational findings (e.g. columns left out).
    notes: list[str] = dataclasses.field(default_factory=list)
    # Task-specific facts (e.g. a series' frequency and split boundaries); JSON-serializable.
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


class Task(abc.ABC):
    """One RNN job. The pipeline asks the task only the questions below."""

    name: str
    task_config_cls: type
    data_config_cls: type
    evaluation_config_cls: type = config_lib.EvaluationConfig
    # Example splits Transform materializes; Transform analyzes "train" only.
    splits: tuple[str, ...] = ("train", "eval")
    # Dotted paths of the TFX user functions on the installed package.
    preprocessing_fn: str
    run_fn: str
    tuner_fn: str

    def validate_config(self, config: config_lib.PipelineConfig) -> None:
        """Cross-field checks that types and ranges alone cannot express."""

    @abc.abstractmethod
    def preflight(self, config: config_lib.PipelineConfig) -> InputReport:
        """Reads the input once and raises DataError before any component runs."""

    @abc.abstractmethod
    def eval_config(self, config: config_lib.PipelineConfig, report: InputReport):
        """The tfma.EvalConfig with the metrics and blessing thresholds."""

    def example_gen(self, config: config_lib.PipelineConfig, report: InputReport):
        """The ExampleGen for `data.format`; tasks with their own ingestion override this."""
        return standard_example_gen(config.data)

    def after_evaluation(self, config: config_lib.PipelineConfig, report: InputReport, *,
                         examples, model, blessing) -> list:
        """Extra components that run once the model is evaluated (e.g. a held-out test report)."""
        return []

    def summarize(self, summary: dict[str, Any], outputs: dict[str, dict[str, list]]) -> None:
        """Adds task-specific results to the run summary; `outputs` maps node id -> output
        key -> artifacts of this run."""

    def custom_config(self, config: config_lib.PipelineConfig, report: InputReport) -> dict[str, Any]:
        """JSON passed to Transform (its name/task/data sections only) and Trainer: the
        resolved config plus the input report."""
        return {"config": config.to_dict(), "input": dataclasses.asdict(report)}


def blessing_threshold(lower_bound: float, max_regression: float):
    """TFMA threshold on a higher-is-better metric: at least `lower_bound`, and at most
    `max_regression` below the last blessed model (ignored while there is none)."""
    import tensorflow_model_analysis as tfma

    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_regression}))


def resolve_input_files(data_config) -> list[str]:
    """The files `data.path` names (a file or a glob), or a DataError naming the path."""
    path = config_lib.resolve_path(data_config.path)
    if glob.has_magic(os.path.dirname(path)):
        raise DataError(f"data.path: only the file name may contain wildcards: {path}")
    files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if os.path.isfile(path) else [])
    if not files:
        what = "matches no files" if glob.has_magic(path) else "file not found"
        raise DataError(f"data.path: {what}: {path}")
    return files


def standard_example_gen(data_config):
    """CSV ExampleGen (`data.encoding`/`data.delimiter`) / ImportExampleGen (TFRecord) /
    Parquet ExampleGen with a hash split."""
    from tfx import v1 as tfx
    from tfx.components import FileBasedExampleGen
    from tfx.components.example_gen.custom_executors import parquet_executor
    from tfx.dsl.components.base import executor_spec
    from tfx.proto import example_gen_pb2

    from rnnflow.components.csv_example_gen import csv_example_gen
    from rnnflow.components.csv_input import CsvOptions

    path = config_lib.resolve_path(data_config.path)
    input_base, pattern = os.path.dirname(path), os.path.basename(path)
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=data_config.split.train_buckets),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=data_config.split.eval_buckets),
    ]))
    kwargs = dict(input_base=input_base, input_config=input_config, output_config=output_config)
    if data_config.format == "csv":
        return csv_example_gen(CsvOptions(data_config.encoding, data_config.delimiter), **kwargs)
    if data_config.format == "tfrecord":
        return tfx.components.ImportExampleGen(**kwargs)
    return FileBasedExampleGen(
        custom_executor_spec=executor_spec.BeamExecutorSpec(parquet_executor.Executor), **kwargs)
