"""Text classification (sentiment, topic, intent): many-to-one over tokens."""

from __future__ import annotations

import codecs
import collections
import contextlib
import dataclasses
import math

from rnnflow.components.ingest.csv_input import (CsvFormatError, CsvOptions, delimiter_hint,
                                         format_hint, read_head, read_records)
from rnnflow.components.tasks import splits
from rnnflow.components.tasks.base import (DataError, InputReport, Task, blessing_threshold, bound_over_trivial,
                                           is_candidate, naming_field, open_input, predefined_split_files,
                                           resolve_input_files, same_files)
from rnnflow.components.text_classification.schema import (EVAL_SIGNATURE, EXAMPLES_SIGNATURE, LABEL_COUNTS, LABEL_ID,
                                                           LABEL_VALUES, METRICS, PROBABILITIES, TRANSFORM_SIGNATURE,
                                                           SplitConfig, TextClassificationConfig, TextDataConfig)
from rnnflow.pipeline.config import AUTO, ConfigError


_SHOWN = 5  # classes named in a warning
class TextClassificationTask(Task):
    name = "text_classification"
    task_config_cls = TextClassificationConfig
    data_config_cls = TextDataConfig
    preprocessing_fn = "rnnflow.components.text_classification.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.text_classification.trainer.run_fn"
    tuner_fn = "rnnflow.components.text_classification.trainer.tuner_fn"
    examples_signature = EXAMPLES_SIGNATURE
    tuning_objectives = ("val_loss", "val_accuracy")  # every shared field is honoured
    metric_renames = {"sparse_categorical_accuracy": "accuracy"}
    # Weight averaging over about the last two epochs: a classifier's best epoch comes early, at a
    # high learning rate, where the averaged weights generalize better (benchmarks/imdb_full_run.py).
    section_defaults = {"training": {"ema_momentum": AUTO}}

    def metric_sub_key_labels(self, summary) -> list[str]:
        return (summary.get("training") or {}).get("classes", [])

    def headline_metrics(self, metrics: dict) -> dict:
        """Overall metrics; per-class ones ("auc[pos]") stay in run_summary.json."""
        return {k: v for k, v in metrics.items() if "[" not in k}

    def summarize(self, summary, outputs) -> None:
        """The confusion matrix of the eval split (TFMA's MultiClassConfusionMatrixPlot)."""
        evaluation = outputs.get("Evaluator", {}).get("evaluation")
        if evaluation:
            matrix = read_confusion_matrix(evaluation[0].uri, self.metric_sub_key_labels(summary))
            if matrix is not None:
                summary["confusion_matrix"] = matrix

    plot_file = "confusion_matrix.png"

    def plot(self, summary):
        from rnnflow.components.text_classification.plots import confusion_matrix_figure

        matrix = summary.get("confusion_matrix")
        return confusion_matrix_figure(matrix) if matrix else None

    def validate_config(self, config) -> None:
        data = config.data
        if data.text_column == data.label_column:
            raise ConfigError(f"data.label_column: '{data.label_column}' is also data.text_column")
        if config.evaluation.slice_feature == data.text_column:
            raise ConfigError("evaluation.slice_feature: cannot slice by the free-text column "
                              f"'{data.text_column}'")

    def preflight(self, config, files=None, split_files: dict[str, list[str]] | None = None) -> InputReport:
        """The train files' report; with predefined splits (`split_files`, default: those
        `data.eval_path`/`data.test_path` name) each is checked against train (classes train
        never saw are counted and named) and for texts shared with an earlier split."""
        data = config.data
        if split_files is None:
            split_files = {split: predefined_split_files(data, split) for split in splits.predefined(data)}
        files = {"train": files or resolve_input_files(data), **split_files}
        same_files(files)
        scans = {}
        for split, names in files.items():
            with contextlib.nullcontext() if split == "train" else naming_field(split):
                scans[split] = _scan(config, names, keep_texts=len(files) > 1)
        report = _train_report(config, files["train"], scans["train"])
        for split in splits.PREDEFINED:
            if split not in scans:
                continue
            scan = scans[split]
            report.notes.append(f"{split} split: {scan.rows} rows from {splits.described(files[split])} "
                                f"({splits.FIELDS[split]})")
            unknown = {label: n for label, n in scan.labels.items() if label not in scans["train"].labels}
            if unknown:
                shown = ", ".join(f"'{label}' ({n})" for label, n in sorted(unknown.items())[:_SHOWN])
                report.warnings.append(f"{sum(unknown.values())} rows of the {split} split have a class the train "
                                       f"split never has: {shown}; no prediction can be right on them")
        if len(files) > 1:
            report.details["split_files"] = files
            report.warnings.extend(splits.leakage("texts", {split: scan.texts for split, scan in scans.items()}))
        return report

    def merge_details(self, details: list[dict]) -> dict:
        """Every span's classes, and their rows summed."""
        counts: dict[str, int] = {}
        for spans in details:
            for label, count in spans[LABEL_COUNTS].items():
                counts[label] = counts.get(label, 0) + count
        return {**details[-1], LABEL_VALUES: sorted(counts), LABEL_COUNTS: dict(sorted(counts.items()))}

    def example_gen(self, config, data_paths: dict[str, str]):
        """TFX's ExampleGen for `data.format` (csv with `data.encoding`/`data.delimiter`, tfrecord,
        parquet) with a hash split into `data.split`'s buckets (of the train file, when the eval
        split is not given as its own file); it runs the input check too."""
        from rnnflow.components.ingest.input_report import reporting_example_gen

        return reporting_example_gen(config, data_paths, buckets={
            "train": config.data.split.train_buckets, "eval": config.data.split.eval_buckets})

    def unbounded_features(self, config) -> list[str]:
        return [config.data.text_column]

    def resolve_data_defaults(self, config, train_files: list[str], report) -> dict:
        if not any(getattr(config.task, f) == AUTO for f in ("max_tokens", "vocab_size", "min_frequency")):
            return {"values": {}, "measured": {}}
        from rnnflow.components.text_classification import data_scale

        texts = data_scale.read_texts(train_files, config.data.text_column)
        return data_scale.resolve(config.task, texts)

    trivial_predictor = "the most frequent class"

    def trivial_scores(self, config, report: InputReport | None) -> dict[str, float]:
        """Always answering the most frequent class: its accuracy is that class's share (of all
        the data read), its AUC 0.5."""
        if report is None or not report.details.get(LABEL_COUNTS):
            return {}
        counts = report.details[LABEL_COUNTS]
        return {"accuracy": max(counts.values()) / sum(counts.values()), "auc": 0.5}

    def eval_config(self, config, report: InputReport | None):
        import tensorflow_model_analysis as tfma

        evaluation = config.evaluation
        trivial = self.trivial_scores(config, report)

        def metric(name):
            class_name, _ = METRICS[name]
            bound = bound_over_trivial(evaluation.lower_bound if name == evaluation.metric else 0.0,
                                       trivial.get(name), evaluation.baseline_margin, ceiling=1.0)
            if name == evaluation.metric:
                threshold = blessing_threshold(bound, evaluation.max_regression)
            elif name == "accuracy" and name in trivial and config.task.class_weight != "balanced":
                # Whatever the blessing metric, beat the majority class (unless balanced class
                # weights trade accuracy for the rare classes on purpose).
                threshold = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": bound}))
            else:
                threshold = None
            return tfma.MetricConfig(class_name=class_name, threshold=threshold)

        overall = [metric(n) for n, (_, per_class) in METRICS.items() if not per_class]
        per_class = [metric(n) for n, (_, per_class) in METRICS.items() if per_class]
        slicing = [tfma.SlicingSpec()]
        if evaluation.slice_feature:
            slicing.append(tfma.SlicingSpec(feature_keys=[evaluation.slice_feature]))
        overall_spec = tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"), *overall,
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")])
        if report is None:  # compiling: the classes are known once the data is read
            return tfma.EvalConfig(model_specs=[_model_spec()], slicing_specs=slicing,
                                   metrics_specs=[overall_spec])
        class_ids = list(range(len(report.details[LABEL_VALUES])))
        return tfma.EvalConfig(
            model_specs=[_model_spec()],
            slicing_specs=slicing,
            metrics_specs=[
                overall_spec,
                # One-vs-rest per class, macro-averaged: for two classes this is plain binary
                # AUC, and it needs no "positive class" convention.
                tfma.MetricsSpec(
                    metrics=per_class,
                    binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
                    aggregate=tfma.AggregationOptions(
                        macro_average=True, class_weights={i: 1.0 for i in class_ids})),
            ])


@dataclasses.dataclass
class _Scan:
    rows: int
    labels: collections.Counter
    empty_texts: int
    invalid_rows: int
    first_invalid: str | None
    texts: list[tuple[str, str]]  # (text, where), kept for the leakage check between splits


def _scan(config, files: list[str], *, keep_texts: bool) -> _Scan:
    data = config.data
    reader = {"csv": _scan_csv, "tfrecord": _scan_tfrecord, "parquet": _scan_parquet}[data.format]
    columns = [data.text_column, data.label_column]
    if config.evaluation.slice_feature:
        columns.append(config.evaluation.slice_feature)
    scan = _Scan(0, collections.Counter(), 0, 0, None, [])
    for file in files:
        for row in reader(file, columns, data):
            scan.rows += 1
            if row.label is None or row.label == "":
                raise DataError(f"{row.where}: empty label in column '{data.label_column}'")
            scan.labels[row.label] += 1
            if not row.text:
                scan.empty_texts += 1
            elif keep_texts:
                scan.texts.append((row.text, row.where))
            if row.invalid:
                scan.invalid_rows += 1
                scan.first_invalid = scan.first_invalid or row.invalid
    if scan.rows == 0:
        raise DataError(f"{splits.described(files)}: no data rows")
    return scan


def _train_report(config, files: list[str], scan: _Scan) -> InputReport:
    data, rows, labels = config.data, scan.rows, scan.labels
    described = splits.described(files)
    if scan.empty_texts == rows:
        raise DataError(f"{described}: text column '{data.text_column}' is empty in all {rows} rows")
    if len(labels) < 2:
        raise DataError(f"{described}: label column '{data.label_column}' has a single class "
                        f"{list(labels)}; a classifier needs at least two")
    warnings = []
    if scan.empty_texts:
        warnings.append(f"{scan.empty_texts} of {rows} rows have an empty text; they are kept and "
                        "encoded as a dedicated empty-text token")
    if scan.invalid_rows:
        encoding = data.encoding if data.format == "csv" else "utf-8"
        warnings.append(f"{scan.invalid_rows} of {rows} rows contain bytes that are not valid {encoding} "
                        f"(first: {scan.first_invalid}); they are replaced by U+FFFD in training and serving "
                        f"alike{_encoding_hint(data, files)}")
    rare = None if data.eval_path else _rare_classes(labels, data.split)
    if rare:
        warnings.append(rare)
    return InputReport(files=files, rows=rows, warnings=warnings, details={
        LABEL_VALUES: sorted(labels), LABEL_COUNTS: dict(sorted(labels.items()))})


def _model_spec():
    import tensorflow_model_analysis as tfma

    return tfma.ModelSpec(signature_name=EVAL_SIGNATURE, label_key=LABEL_ID, prediction_key=PROBABILITIES,
                          preprocessing_function_names=[TRANSFORM_SIGNATURE])


@dataclasses.dataclass(frozen=True)
class _Row:
    where: str  # file and line/row/record
    text: str
    label: str | None
    invalid: str | None = None  # where the first byte invalid in the encoding is, if any


def _rare_classes(labels: collections.Counter, split: SplitConfig) -> str | None:
    """A warning when some classes are too rare to be expected in the eval split."""
    total_buckets = split.train_buckets + split.eval_buckets
    needed = max(2, math.ceil(total_buckets / split.eval_buckets))
    rare = sorted((n, label) for label, n in labels.items() if n < needed)
    if not rare:
        return None
    shown = ", ".join(f"'{label}' ({n})" for n, label in rare[:_SHOWN])
    more = f" and {len(rare) - _SHOWN} more" if len(rare) > _SHOWN else ""
    return (f"{len(rare)} of {len(labels)} classes have fewer than {needed} examples: {shown}{more}; "
            f"with {split.eval_buckets} of {total_buckets} hash buckets in eval, each is expected to have "
            "no eval example and too few to learn from (merge rare classes or add data)")


def _encoding_hint(data, files: list[str]) -> str:
    """Which encoding would read the files cleanly, when the configured one does not."""
    if data.format != "csv":
        return ""
    configured = codecs.lookup(data.encoding).name
    for encoding in ("utf-8", "cp1252", "latin-1"):
        if codecs.lookup(encoding).name == configured:
            continue
        if all(_decodes(file, encoding) for file in files):
            return f"; if the file is {encoding}, set data.encoding: {encoding}"
    return ""


def _decodes(path: str, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open_input(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _label_text(value) -> str | None:
    """Labels as the strings Transform will see: ints as decimal text, strings stripped."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        if value != value:
            return None
        if not value.is_integer():
            raise DataError(f"label value {value} is a non-integer number; use integer or string labels")
        value = int(value)
    return str(value).strip()


def _scan_csv(path: str, columns: list[str], data):
    options = CsvOptions.of(data)
    with open_input(path) as f:
        try:
            header, records = read_records(path, f, options)
            missing = [c for c in columns if c not in header]
            if missing:
                f.seek(0)
                raise DataError(f"{path}: column '{missing[0]}' not found; columns: {', '.join(header)}"
                                f"{delimiter_hint(path, f.readline(), options)}")
            index = [header.index(c) for c in columns]
            for record in records:
                label = record.fields[index[1]].strip()
                if label and _looks_like_float(label):
                    label = _label_text(float(label))
                invalid = (f"{path} line {record.invalid_at[0]}, byte offset {record.invalid_at[1]}"
                           if record.invalid_at else None)
                yield _Row(f"{path} line {record.line}", record.fields[index[0]].strip(), label, invalid)
        except CsvFormatError as e:
            raise DataError(str(e)) from None


def _looks_like_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return not value.lstrip("-+").isdigit()


def _scan_parquet(path: str, columns: list[str], data):
    import pyarrow
    import pyarrow.parquet as pq

    try:
        with open_input(path) as f:
            names = pq.read_schema(f).names
            f.seek(0)
            table = pq.read_table(f, columns=[c for c in columns[:2] if c in names]).to_pydict()
    except (pyarrow.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read as parquet ({e})"
                        f"{format_hint(read_head(path), 'parquet')}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(f"{path}: column '{missing[0]}' not found; columns: {', '.join(names)}")
    for i, (text, label) in enumerate(zip(table[columns[0]], table[columns[1]])):
        where = f"{path} row {i}"
        yield _Row(where, _text(text), _label_text(label), where if _invalid_utf8(text) else None)


def _scan_tfrecord(path: str, columns: list[str], data):
    import tensorflow as tf

    records = iter(tf.data.TFRecordDataset(path, compression_type=_compression(path)))
    i = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except tf.errors.DataLossError as e:
            raise DataError(f"{path}: not a readable TFRecord file (record {i}: {e.message})"
                            f"{format_hint(read_head(path), 'tfrecord')}") from None
        example = tf.train.Example.FromString(record.numpy())
        features = example.features.feature
        missing = [c for c in columns if c not in features]
        if missing:
            raise DataError(f"{path} record {i}: feature '{missing[0]}' not found; "
                            f"features: {', '.join(sorted(features))}")
        text = _first_value(features[columns[0]])
        where = f"{path} record {i}"
        yield _Row(where, _text(text), _label_text(_first_value(features[columns[1]])),
                   where if _invalid_utf8(text) else None)
        i += 1


def _compression(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def _first_value(feature):
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    return values[0] if values else None


def _invalid_utf8(value) -> bool:
    if not isinstance(value, bytes):
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


def read_confusion_matrix(evaluation_uri: str, class_names: list[str]) -> dict | None:
    """{"classes", "counts": [actual][predicted], ...} of the candidate, overall slice."""
    import tensorflow_model_analysis as tfma

    for slice_plots in tfma.load_plots(evaluation_uri):
        if slice_plots.slice_key.single_slice_keys:
            continue
        for item in slice_plots.plot_keys_and_values:
            if not is_candidate(item.key):
                continue
            matrices = item.value.multi_class_confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            n = len(class_names)
            counts = [[0] * n for _ in range(n)]
            for entry in matrices[0].entries:
                if entry.actual_class_id < n and entry.predicted_class_id < n:
                    counts[entry.actual_class_id][entry.predicted_class_id] = int(entry.num_weighted_examples)
            return {"classes": class_names, "counts": counts, "rows": "actual", "columns": "predicted"}
    return None


TASK = TextClassificationTask()
