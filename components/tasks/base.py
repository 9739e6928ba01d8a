"""The interface between a task (text classification, forecasting, ...) and the pipeline."""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import glob
import importlib
import os
import sys
from typing import Any, Callable

from rnnflow.components.tasks.splits import FIELDS, check_paths, described, has_span, split_input_path  # noqa: F401 (has_span, split_input_path: re-exported)
from rnnflow.pipeline import config as config_lib




class DataError(ValueError):
    """The input data cannot train a correct model; the message names the file, column or row."""


@dataclasses.dataclass(frozen=True)
class TaskCommand:
    """A CLI verb a task adds (`rnnflow generate` for language models): `add_arguments(parser)`
    declares its flags, `run(args)` does it and returns the exit code (EXIT_USAGE for bad
    arguments); the generic CLI names no task's verb."""
    name: str
    help: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int]


# The exit code of a usage error (bad flag, bad config): the same for every command.
EXIT_USAGE = 2


def refused(verb: str, errors: list[str]) -> int | None:
    """A task verb's bad settings, each printed as `rnnflow VERB: ...` on stderr: EXIT_USAGE when
    there are any, else None (go on)."""
    for error in errors:
        print(f"rnnflow: {verb}: {error}", file=sys.stderr)
    return EXIT_USAGE if errors else None


@dataclasses.dataclass
class InputReport:
    """What the pre-flight check learned about the input, passed on to the components."""
    files: list[str]
    rows: int
    # Data that was fixed up or looks unable to train a good model (errors under --strict-data).
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Informational findings (e.g. columns left out).
    notes: list[str] = dataclasses.field(default_factory=list)
    # Task-specific facts (a classifier's class names and counts, a series' frequency and split
    # boundaries); JSON-serializable.
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
    # The exported signature that takes serialized tf.Examples and answers as serving_default
    # does (serving validation scores the same examples through both).
    examples_signature: str
    # The signature whose inputs are the examples' features of the same names, and whose answers
    # `examples_signature` repeats: serving validation checks agreement, skew and latency on it
    # and batch inference types its rows by it. A task whose serving_default the examples cannot
    # feed (a language model's generation) serves another one here.
    served_signature: str = "serving_default"
    # The task's own defaults for fields of shared sections ({"model": {"bidirectional": False}}),
    # used where the config leaves them out.
    section_defaults: dict[str, dict[str, Any]] = {}

    # How `data.rolling_spans: K` trains on the latest K spans. False (rows are independent
    # examples): TFX's SpanRangeStrategy resolver hands Transform, and so the Tuner and
    # Trainer, the Examples of the latest K spans. True (the spans are consecutive stretches of
    # one series): the ExampleGen reads the latest K spans as one series, so windows and the
    # chronological split run across span boundaries.
    spans_form_one_series: bool = False

    # Capabilities (NeuralForecast's pattern), checked in one place (`check_capabilities`): the
    # fields of the shared sections the task's model, training and serving use ({"model":
    # ("cell", ...)}; a section left out: all of its fields), and the tuning objectives its models
    # report. A field the task ignores, set to anything but its default, is a config error.
    honoured_fields: dict[str, tuple[str, ...]] = {}
    tuning_objectives: tuple[str, ...] = ("val_loss",)

    def honours(self, field: str) -> bool:
        """Whether the dotted shared field ("model.pooling") changes what this task does."""
        section, _, name = field.partition(".")
        return section not in self.honoured_fields or name in self.honoured_fields[section]

    def check_config(self, config: config_lib.PipelineConfig) -> None:
        """Checks every task shares, then the task's own (`validate_config`)."""
        if config.data.rolling_spans > 1 and not has_span(config.data.path):
            raise config_lib.ConfigError(
                f"data.rolling_spans: {config.data.rolling_spans} needs spans, but data.path has no "
                f"{{SPAN}} or {{YYYY}}{{MM}}{{DD}} spec: {config.data.path}")
        check_paths(config, series=self.spans_form_one_series)
        if isinstance(config.data, config_lib.CsvFields):
            from rnnflow.components.ingest.csv_input import CsvOptions, check_options

            problem = check_options(CsvOptions.of(config.data))
            if problem:
                raise config_lib.ConfigError(problem)
        self.check_capabilities(config)
        self.validate_config(config)

    def section_default(self, config: config_lib.PipelineConfig, section: str):
        """`config`'s section as this task defaults it: the shared dataclass's defaults with the
        task's `section_defaults`."""
        return dataclasses.replace(type(getattr(config, section))(), **self.section_defaults.get(section, {}))

    def check_capabilities(self, config: config_lib.PipelineConfig) -> None:
        """A shared field this task ignores, set to anything but its default, and a tuning
        objective or searched field it cannot honour: a ConfigError naming the field and the task."""
        for section in sorted(self.honoured_fields):
            value = getattr(config, section)
            default = self.section_default(config, section)
            for field in dataclasses.fields(value):
                given = getattr(value, field.name)
                if not self.honours(f"{section}.{field.name}") and given != getattr(default, field.name):
                    raise config_lib.ConfigError(
                        f"{section}.{field.name}: {given!r} does nothing for the {self.name} task, which does not use "
                        f"this field; remove it (default {getattr(default, field.name)!r})")
        if config.tuning.objective not in self.tuning_objectives:
            raise config_lib.ConfigError(f"tuning.objective: the {self.name} task tunes on "
                                         f"{' or '.join(self.tuning_objectives)}, not {config.tuning.objective}")
        for field in config.tuning.search_space:
            if not self.honours(field):
                raise config_lib.ConfigError(f"tuning.search_space.{field}: the {self.name} task does not use {field}")

    def validate_config(self, config: config_lib.PipelineConfig) -> None:
        """Cross-field checks that types and ranges alone cannot express."""

    def merge_reports(self, reports: list[dict]) -> dict:
        """One input report (as a dict) for several spans' Examples, oldest span first:
        files, rows and findings combined; task details by `merge_details`."""
        return {**reports[-1],
                "files": [f for r in reports for f in r["files"]],
                "rows": sum(r["rows"] for r in reports),
                "warnings": list(dict.fromkeys(w for r in reports for w in r["warnings"])),
                "notes": list(dict.fromkeys(n for r in reports for n in r["notes"])),
                "details": self.merge_details([r.get("details") or {} for r in reports])}

    def merge_details(self, details: list[dict]) -> dict:
        """The task details of several spans' reports, oldest first (default: the newest's)."""
        return details[-1]

    # Dotted path of the task's `Ingest` (`rnnflow.components.ingest.task_example_gen`) when it reads its
    # own input format; the ingest scaffold then owns its ExampleGen and its pre-flight check.
    ingest_class: str | None = None

    def ingest(self):
        if self.ingest_class is None:
            raise NotImplementedError(f"the {self.name} task has no Ingest (it overrides example_gen and preflight)")
        return load_dotted(self.ingest_class)()

    def preflight(self, config: config_lib.PipelineConfig, files: list[str] | None = None) -> InputReport:
        """Reads the input once (`files`, or those `data.path` names) and raises DataError.

        It runs twice with the same code: before any component on a local run, and inside
        the pipeline's ExampleGen on the files of the span it ingests, whose report the
        later components read (`rnnflow.components.ingest.input_report`).
        """
        return self.ingest().preflight(config, files)

    @abc.abstractmethod
    def eval_config(self, config: config_lib.PipelineConfig, report: InputReport | None):
        """The tfma.EvalConfig with the metrics and blessing thresholds. The Evaluator builds
        it at run time from the report; `report` is None when compiling, where only the
        facts-free parts matter."""

    def example_gen(self, config: config_lib.PipelineConfig, data_paths: dict[str, str]):
        """The ExampleGen reading `data_paths` (split -> `data.path`, and `data.eval_path` /
        `data.test_path` where given, as the pipeline's components see them) into the task's
        `splits` (and "test" when given); it also runs `preflight` on the files it ingests and
        attaches the report (`rnnflow.components.ingest.input_report`). Default: the ingest
        scaffold's."""
        from rnnflow.components.ingest.task_example_gen import task_example_gen

        return task_example_gen(config, data_paths)

    def after_evaluation(self, config: config_lib.PipelineConfig, *, examples, model, blessing) -> list:
        """Extra components that run once the model is evaluated (e.g. a held-out test report)."""
        return []

    def unbounded_features(self, config: config_lib.PipelineConfig) -> list[str]:
        """Features whose values are new every run: free text (every value unique) and
        timestamps. The drift gate never compares them, and a schema kept for later runs
        (`validation.schema: previous`) gives them no value domain."""
        return []

    def resolve_data_defaults(self, config: config_lib.PipelineConfig, train_files: list[str],
                              report: dict[str, Any]) -> dict[str, Any]:
        """The task's `auto` fields resolved on the training data, which Transform reads before
        it analyzes: {"values": {dotted field: value}, "measured": {what they came from}}.
        `config` is the run's config as Transform parsed it; `train_files` are the train
        split's gzipped tf.Example TFRecords; `report` the input report (a dict) of the
        Examples, where the ingest records what it resolved itself (`Ingest.resolve`). Tasks
        without such fields resolve nothing.
        `config_lib.replace_fields` applies the values, in Transform and in the Trainer alike."""
        return {"values": {}, "measured": {}}

    # TFMA metric names -> the names the run summary and console use.
    metric_renames: dict[str, str] = {}

    def metric_sub_key_labels(self, summary: dict[str, Any]) -> list[str]:
        """Names for TFMA's class-id sub keys in metric names (`recall[pos]`); default: the ids."""
        return []

    def headline_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The metrics the console summary prints (the rest stay in run_summary.json)."""
        return metrics

    def summarize(self, summary: dict[str, Any], outputs: dict[str, dict[str, list]]) -> None:
        """Adds task-specific results to the run summary; `outputs` maps node id -> output
        key -> artifacts of this run."""

    # CLI verbs the task adds beside the generic ones (`rnnflow generate` for language models).
    commands: tuple[TaskCommand, ...] = ()

    # The trivial predictor of the task, which a model must beat by `evaluation.baseline_margin`
    # to be blessed (the eval_config's thresholds use `trivial_scores`; the summary shows them).
    trivial_predictor: str = ""

    def trivial_scores(self, config: config_lib.PipelineConfig, report: InputReport | None) -> dict[str, float]:
        """The trivial predictor's score per metric (the summary's names), from the input report;
        empty when there is no report (compiling) or the task has no such predictor."""
        return {}

    # The PNG `plot` draws, written next to run_summary.json; None: the task draws none there.
    plot_file: str | None = None

    def plot(self, summary: dict[str, Any]):
        """A matplotlib Figure of the run's results (the notebooks show the same), or None."""
        return None

    def training_data(self):
        """The TaskData subclass of the module holding `run_fn`, for notebooks and benchmarks
        that train as the Trainer does."""
        return importlib.import_module(self.run_fn.rpartition(".")[0]).TrainingData

    def custom_config(self, config: config_lib.PipelineConfig) -> dict[str, Any]:
        """JSON passed to Transform (its name/task/data sections only) and Trainer; the input
        report is added at run time (`rnnflow.components.ingest.input_report`)."""
        return {"config": config.to_dict()}


def load_dotted(path: str):
    """The object a dotted path names ("package.module.name"): user functions, Ingest classes."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def is_candidate(metric_key) -> bool:
    """TFMA names the models "candidate" and "baseline" when a baseline exists, "" otherwise."""
    return metric_key.model_name in ("", "candidate")


def blessing_threshold(bound: float, max_regression: float, *, higher_is_better: bool = True):
    """TFMA threshold on a metric: at least `bound` (at most, for a lower-is-better metric such
    as a loss or a perplexity), and at most `max_regression` worse than the last blessed model
    (ignored while there is none)."""
    import tensorflow_model_analysis as tfma

    if higher_is_better:
        value = tfma.GenericValueThreshold(lower_bound={"value": bound})
        direction, allowed_change = tfma.MetricDirection.HIGHER_IS_BETTER, -max_regression
    else:
        value = tfma.GenericValueThreshold(upper_bound={"value": bound})
        direction, allowed_change = tfma.MetricDirection.LOWER_IS_BETTER, max_regression
    return tfma.MetricThreshold(value_threshold=value, change_threshold=tfma.GenericChangeThreshold(
        direction=direction, absolute={"value": allowed_change}))


def bound_over_trivial(bound: float, trivial: float | None, margin: float, *, higher_is_better: bool = True,
                       ceiling: float | None = None) -> float:
    """The blessing bound once the trivial predictor of the task (the majority class, all-O tags,
    unigram frequencies) is counted: a model must beat that predictor's score by `margin`
    (`evaluation.baseline_margin`), whatever `bound` the config sets. None: no trivial score known.
    `ceiling`: the best score there is (1.0 for an accuracy); the margin shrinks to half the gap
    left, so a trivial score of 0.995 never asks for a perfect model."""
    if trivial is None:
        return bound
    if not higher_is_better:
        return min(bound, trivial - margin)
    wanted = trivial + margin if ceiling is None else min(trivial + margin, (trivial + ceiling) / 2)
    return max(bound, wanted)


def check_split_sizes(config, files: list[str], keys: list, split_of: Callable[[Any, int], str],
                      minimums: dict[str, int], unit: str, learner: str, by: str = "") -> None:
    """Enough records for each split of `data.path`: all train when `data.eval_path` is given
    (the eval file is checked on its own), else the hash split of `data.split.eval_percent` over
    the records' split `keys` (`split_of(key, percent)` -> "train" or "eval"). A DataError names
    the files, the counts and the minimums: a too-small split would train or measure nothing."""
    if config.data.eval_path:
        if len(keys) < minimums["train"]:
            raise DataError(f"{described(files)}: {len(keys)} {unit}; {learner} needs at least {minimums['train']} "
                            f"train {unit}: add {unit}")
        return
    percent = config.data.split.eval_percent
    sizes = collections.Counter(split_of(key, percent) for key in keys)
    if any(sizes[split] < least for split, least in minimums.items()):
        raise DataError(
            f"{described(files)}: {len(keys)} {unit} give the train split {sizes['train']} and the eval split "
            f"{sizes['eval']} (data.split.eval_percent={percent}{', ' + by if by else ''}); {learner} needs at least "
            f"{minimums['train']} train and {minimums['eval']} eval {unit}: add {unit}")


def resolve_input_files(data_config, spans: int = 1, field: str = "path") -> list[str]:
    """The files `data.<field>` (`data.path`, or a predefined split's `eval_path`/`test_path`)
    names (a file or a glob, with TFX span/date specs resolved to the latest span, or the
    latest `spans` spans; a local path or any URI tf.io.gfile reads), or a DataError naming it."""
    path = config_lib.resolve_path(getattr(data_config, field))
    if has_span(path):
        return [f for _, files in latest_spans(path, spans, field=field) for f in files]
    if glob.has_magic(os.path.dirname(path)):
        raise DataError(f"data.{field}: only the file name may contain wildcards: {path}")
    if config_lib.is_uri(path):
        files = _remote_files(path, field)
    else:
        files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if os.path.isfile(path) else [])
    if not files:
        what = "matches no files" if glob.has_magic(path) else "file not found"
        raise DataError(f"data.{field}: {what}: {path}")
    return files


# Predefined splits' files (`data.eval_path`, `data.test_path`; `splits.py` has the rest).

def predefined_split_files(data, split: str, spans: int = 1) -> list[str]:
    """The files the split's path names, or a DataError naming its field."""
    return resolve_input_files(data, spans=spans, field=FIELDS[split].split(".", 1)[1])


@contextlib.contextmanager
def naming_field(split: str):
    """A DataError raised reading a predefined split's files, prefixed with its field."""
    try:
        yield
    except DataError as e:
        if str(e).startswith(FIELDS[split]):
            raise
        raise DataError(f"{FIELDS[split]}: {e}") from None


def same_files(files_by_split: dict[str, list[str]]) -> None:
    """A DataError when two splits resolve to the same file (globs can overlap)."""
    owner: dict[str, str] = {}
    for split, files in files_by_split.items():
        for file in files:
            key = os.path.abspath(file) if "://" not in file else file
            if key in owner:
                raise DataError(f"{FIELDS[split]}: {file} is also read as the {owner[key]} split "
                                f"({FIELDS[owner[key]]}); a file belongs to one split")
            owner[key] = split


def latest_spans(path: str, count: int, last: int | None = None, field: str = "path") -> list[tuple[int, list[str]]]:
    """(span number, files) of the latest `count` spans a span/date pattern matches (up to
    span `last` when given, as the ExampleGen driver resolved it), oldest first; fewer where
    fewer exist (missing span numbers are skipped, as TFX's
    SpanRangeStrategy clips its rolling range). Found by TFX's own span resolution (the one
    the ExampleGen driver runs); a DataError names the path or the empty span."""
    from tfx.components.example_gen import utils
    from tfx.dsl.io import fileio
    from tfx.proto import example_gen_pb2, range_config_pb2

    from rnnflow.components.ingest import package_filesystem  # noqa: F401 (pkg:// for fileio)

    input_base, pattern = split_input_path(path)

    def resolve(span: int | None):
        split = example_gen_pb2.Input.Split(name="single_split", pattern=pattern)
        range_config = None if span is None else range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span))
        _, number, _ = utils.calculate_splits_fingerprint_span_and_version(input_base, [split], range_config)
        files = sorted(fileio.glob(os.path.join(input_base, split.pattern)))
        if not files:
            raise DataError(f"data.{field}: span {number} of {path} has no files ({split.pattern})")
        return number, [package_filesystem.local_path(f) for f in files]

    try:
        latest = resolve(last)
    except ValueError as e:
        raise DataError(f"data.{field}: no span {'' if last is None else f'{last} '}matches {path}: {e}") from None
    found = [latest]
    for span in range(latest[0] - 1, max(latest[0] - count, -1), -1):
        try:
            found.insert(0, resolve(span))
        except ValueError:  # no such span
            continue
    return found


def _remote_files(path: str, field: str) -> list[str]:
    import tensorflow as tf

    try:
        if glob.has_magic(path):
            return sorted(tf.io.gfile.glob(path))
        return [path] if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path) else []
    except tf.errors.OpError as e:  # no credentials, unknown bucket, unreachable host
        raise DataError(f"data.{field}: cannot read {path}: {e.message}") from None


def open_input(path: str):
    """A binary file object for a local path or a URI (gs://, s3://, ...)."""
    if not config_lib.is_uri(path):
        return open(path, "rb")
    import tensorflow as tf

    try:
        return tf.io.gfile.GFile(path, "rb")
    except tf.errors.OpError as e:
        raise DataError(f"{path}: cannot read: {e.message}") from None


BOM = "\ufeff"


def decode_text(path: str, raw: bytes, *, first_line: int = 1) -> str:
    """`raw` as UTF-8 text without a leading byte-order mark; a DataError naming the file, the
    line and the byte otherwise, that says when the bytes look binary or UTF-16/32 rather than
    text with a stray byte. `first_line`: the line number `raw` starts at (a reader decoding
    line by line passes each line's number)."""
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        line = first_line + raw.count(b"\n", 0, at)
        raise DataError(f"{path}: line {line}: a NUL byte: not UTF-8 text (a binary file, or text saved as "
                        "UTF-16/32: save it as UTF-8)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw.count(b"\n", 0, e.start)
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1)
        sample = raw[:4096]
        invalid = len(sample) - len(sample.decode("utf-8", errors="ignore").encode("utf-8"))
        kind = ("; most of its bytes are not text: is it a binary or compressed file?" if invalid > len(sample) // 4
                else "; re-encode the file as UTF-8")
        raise DataError(f"{path}: line {line}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {column} of the "
                        f"line){kind}") from None
    return text[1:] if first_line == 1 and text.startswith(BOM) else text


def json_objects(path: str, fields: tuple[str, ...]):
    """(line number, object) for each non-blank line of a JSON Lines file (local or a URI),
    decoded line by line (`decode_text`); a line that is not JSON, or not an object, is a
    DataError naming the file, the line and the `fields` an object should have."""
    import json

    with open_input(path) as f:
        for number, raw in enumerate(iter(f.readline, b""), start=1):
            line = decode_text(path, raw, first_line=number)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {number}: not JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {number}: expected a JSON object with "
                                f"{' and '.join(repr(f) for f in fields)}, got {type(record).__name__}")
            yield number, record
