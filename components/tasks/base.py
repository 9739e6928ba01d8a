"""The interface between a task (text classification, forecasting, ...) and the pipeline."""

from __future__ import annotations

import abc
import dataclasses
import glob
import os
import re
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
    def preflight(self, config: config_lib.PipelineConfig, files: list[str] | None = None) -> InputReport:
        """Reads the input once (`files`, or those `data.path` names) and raises DataError.

        It runs twice with the same code: before any component on a local run, and inside
        the pipeline's ExampleGen on the files of the span it ingests, whose report the
        later components read (`rnnflow.components.input_report`).
        """

    @abc.abstractmethod
    def eval_config(self, config: config_lib.PipelineConfig, report: InputReport | None):
        """The tfma.EvalConfig with the metrics and blessing thresholds. The Evaluator builds
        it at run time from the report; `report` is None when compiling, where only the
        facts-free parts matter."""

    def example_gen(self, config: config_lib.PipelineConfig, data_path: str):
        """The ExampleGen for `data.format`, reading `data_path` (`data.path` as the pipeline's
        components see it); tasks with their own ingestion override this."""
        return standard_example_gen(config, data_path)

    def after_evaluation(self, config: config_lib.PipelineConfig, *, examples, model, blessing) -> list:
        """Extra components that run once the model is evaluated (e.g. a held-out test report)."""
        return []

    def drift_excluded(self, config: config_lib.PipelineConfig) -> list[str]:
        """Features the drift gate never compares: free text (every value unique) and
        timestamps (new every run)."""
        return []

    def summarize(self, summary: dict[str, Any], outputs: dict[str, dict[str, list]]) -> None:
        """Adds task-specific results to the run summary; `outputs` maps node id -> output
        key -> artifacts of this run."""

    def custom_config(self, config: config_lib.PipelineConfig) -> dict[str, Any]:
        """JSON passed to Transform (its name/task/data sections only) and Trainer; the input
        report is added at run time (`rnnflow.components.input_report`)."""
        return {"config": config.to_dict()}


def blessing_threshold(lower_bound: float, max_regression: float):
    """TFMA threshold on a higher-is-better metric: at least `lower_bound`, and at most
    `max_regression` below the last blessed model (ignored while there is none)."""
    import tensorflow_model_analysis as tfma

    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_regression}))


# TFX span and date specs a data.path may contain (`{SPAN}`, `{SPAN:2}`, `{YYYY}{MM}{DD}`, `{VERSION}`).
_SPAN_SPEC = re.compile(r"\{(SPAN(:\d+)?|YYYY|MM|DD|VERSION(:\d+)?)\}")


def has_span(path: str) -> bool:
    return bool(_SPAN_SPEC.search(path))


def split_input_path(path: str) -> tuple[str, str]:
    """(input_base, pattern) for TFX's ExampleGen: the directories before the first one that
    holds a span/date spec, and the rest (`data/span-{SPAN}/*.csv` -> `data`, `span-{SPAN}/*.csv`)."""
    parts = path.split("/")
    first = next((i for i, part in enumerate(parts[:-1]) if has_span(part)), len(parts) - 1)
    return "/".join(parts[:first]), "/".join(parts[first:])


def resolve_input_files(data_config) -> list[str]:
    """The files `data.path` names (a file or a glob, with TFX span/date specs resolved to the
    latest span; a local path or any URI tf.io.gfile reads), or a DataError naming the path."""
    path = config_lib.resolve_path(data_config.path)
    if has_span(path):
        return latest_span(path)[0]
    if glob.has_magic(os.path.dirname(path)):
        raise DataError(f"data.path: only the file name may contain wildcards: {path}")
    if config_lib.is_uri(path):
        files = _remote_files(path)
    else:
        files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if os.path.isfile(path) else [])
    if not files:
        what = "matches no files" if glob.has_magic(path) else "file not found"
        raise DataError(f"data.path: {what}: {path}")
    return files


def latest_span(path: str) -> tuple[list[str], int]:
    """The files and number of the latest span a span/date pattern matches, found by TFX's own
    span resolution (the one the ExampleGen driver runs)."""
    from tfx.components.example_gen import utils
    from tfx.dsl.io import fileio
    from tfx.proto import example_gen_pb2

    from rnnflow.components import package_filesystem  # noqa: F401 (pkg:// for fileio)

    input_base, pattern = split_input_path(path)
    split = example_gen_pb2.Input.Split(name="single_split", pattern=pattern)
    try:
        _, span, _ = utils.calculate_splits_fingerprint_span_and_version(input_base, [split])
    except ValueError as e:
        raise DataError(f"data.path: no span matches {path}: {e}") from None
    files = sorted(fileio.glob(os.path.join(input_base, split.pattern)))
    if not files:
        raise DataError(f"data.path: span {span} of {path} has no files ({split.pattern})")
    return [package_filesystem.local_path(f) for f in files], span


def _remote_files(path: str) -> list[str]:
    import tensorflow as tf

    try:
        if glob.has_magic(path):
            return sorted(tf.io.gfile.glob(path))
        return [path] if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path) else []
    except tf.errors.OpError as e:  # no credentials, unknown bucket, unreachable host
        raise DataError(f"data.path: cannot read {path}: {e.message}") from None


def open_input(path: str):
    """A binary file object for a local path or a URI (gs://, s3://, ...)."""
    if not config_lib.is_uri(path):
        return open(path, "rb")
    import tensorflow as tf

    try:
        return tf.io.gfile.GFile(path, "rb")
    except tf.errors.OpError as e:
        raise DataError(f"{path}: cannot read: {e.message}") from None


def standard_example_gen(config: config_lib.PipelineConfig, data_path: str):
    """ExampleGen for csv (`data.encoding`/`data.delimiter`), tfrecord and parquet files with
    a hash split; each also runs the task's input check on the files it ingests."""
    from rnnflow.components.input_report import reporting_example_gen

    data_config = config.data
    input_base, pattern = split_input_path(data_path)
    return reporting_example_gen(config, input_base=input_base, pattern=pattern, splits={
        "train": data_config.split.train_buckets, "eval": data_config.split.eval_buckets})
