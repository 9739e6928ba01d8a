"""Text classification (sentiment, topic, intent): many-to-one over tokens."""

from __future__ import annotations

import collections
import csv
import dataclasses
import sys
from typing import Literal, Optional

from rnnflow.components.tasks.base import (DataError, InputReport, Task, blessing_threshold,
                                           resolve_input_files)
from rnnflow.pipeline.config import ConfigError, DataFormat, SplitConfig, constraint

# Feature names produced by Transform, named once here.
TOKEN_IDS = "token_ids"
LABEL_ID = "label_id"
LABEL_VOCABULARY = "label"
TOKEN_VOCABULARY = "tokens"
# Token id layout: 0 is padding, 1 marks an empty text, vocabulary and OOV ids follow.
PAD_ID = 0
EMPTY_TEXT_ID = 1
FIRST_VOCAB_ID = 2

# Metric names in configs -> (TFMA metric class, whether it is computed per class and macro-averaged).
METRICS = {
    "accuracy": ("SparseCategoricalAccuracy", False),
    "auc": ("AUC", True),
    "precision": ("Precision", True),
    "recall": ("Recall", True),
}
# Evaluate through these exported signatures (see export.py).
EVAL_SIGNATURE = "serving_examples"
TRANSFORM_SIGNATURE = "transform_features"
PROBABILITIES = "probabilities"


@dataclasses.dataclass(frozen=True)
class TextDataConfig:
    path: str
    format: DataFormat = "csv"
    text_column: str = "text"
    label_column: str = "label"
    # Optional curated schema (schema.pbtxt): ImportSchemaGen replaces SchemaGen.
    schema_path: Optional[str] = None
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig:
    type: Literal["text_classification"]
    tokenizer: Literal["word", "char"] = "word"
    # Sequences are truncated, then right-padded, to this many tokens.
    max_tokens: int = constraint(256, min=1, max=100_000)
    vocab_size: int = constraint(20_000, min=1)
    oov_buckets: int = constraint(10, min=1)
    # Tokens seen fewer times than this in the train split map to OOV buckets.
    min_frequency: int = constraint(1, min=1)


class TextClassificationTask(Task):
    name = "text_classification"
    task_config_cls = TextClassificationConfig
    data_config_cls = TextDataConfig
    preprocessing_fn = "rnnflow.components.text_classification.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.text_classification.trainer.run_fn"
    tuner_fn = "rnnflow.components.text_classification.trainer.tuner_fn"

    def validate_config(self, config) -> None:
        data = config.data
        if data.text_column == data.label_column:
            raise ConfigError(f"data.label_column: '{data.label_column}' is also data.text_column")
        if config.evaluation.slice_feature == data.text_column:
            raise ConfigError("evaluation.slice_feature: cannot slice by the free-text column "
                              f"'{data.text_column}'")

    def preflight(self, config) -> InputReport:
        files = resolve_input_files(config.data)
        reader = {"csv": _scan_csv, "tfrecord": _scan_tfrecord, "parquet": _scan_parquet}[config.data.format]
        columns = [config.data.text_column, config.data.label_column]
        if config.evaluation.slice_feature:
            columns.append(config.evaluation.slice_feature)
        labels: collections.Counter = collections.Counter()
        rows = empty_texts = invalid_utf8 = 0
        for file in files:
            for where, text, label in reader(file, columns):
                rows += 1
                if label is None or label == "":
                    raise DataError(f"{where}: empty label in column '{config.data.label_column}'")
                labels[label] += 1
                if not text:
                    empty_texts += 1
                elif "\ufffd" in text:
                    invalid_utf8 += 1
        described = ", ".join(files) if len(files) < 4 else f"{files[0]} and {len(files) - 1} more files"
        if rows == 0:
            raise DataError(f"{described}: no data rows")
        if empty_texts == rows:
            raise DataError(f"{described}: text column '{config.data.text_column}' is empty in all {rows} rows")
        if len(labels) < 2:
            raise DataError(f"{described}: label column '{config.data.label_column}' has a single class "
                            f"{list(labels)}; a classifier needs at least two")
        warnings = []
        if empty_texts:
            warnings.append(f"{empty_texts} of {rows} rows have an empty text; they are kept and "
                            "encoded as a dedicated empty-text token")
        if invalid_utf8:
            warnings.append(f"{invalid_utf8} of {rows} texts contain invalid UTF-8; the bytes are "
                            "replaced by U+FFFD in training and serving alike")
        return InputReport(files=files, rows=rows, label_values=sorted(labels),
                           label_counts=dict(sorted(labels.items())), warnings=warnings)

    def eval_config(self, config, report: InputReport):
        import tensorflow_model_analysis as tfma

        evaluation = config.evaluation
        threshold = blessing_threshold(evaluation.lower_bound, evaluation.max_regression)

        def metric(name):
            class_name, _ = METRICS[name]
            return tfma.MetricConfig(class_name=class_name,
                                     threshold=threshold if name == evaluation.metric else None)

        overall = [metric(n) for n, (_, per_class) in METRICS.items() if not per_class]
        per_class = [metric(n) for n, (_, per_class) in METRICS.items() if per_class]
        slicing = [tfma.SlicingSpec()]
        if evaluation.slice_feature:
            slicing.append(tfma.SlicingSpec(feature_keys=[evaluation.slice_feature]))
        class_ids = list(range(len(report.label_values)))
        return tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(
                signature_name=EVAL_SIGNATURE, label_key=LABEL_ID, prediction_key=PROBABILITIES,
                preprocessing_function_names=[TRANSFORM_SIGNATURE])],
            slicing_specs=slicing,
            metrics_specs=[
                tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount"), *overall,
                                          tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")]),
                # One-vs-rest per class, macro-averaged: for two classes this is plain binary
                # AUC, and it needs no "positive class" convention.
                tfma.MetricsSpec(
                    metrics=per_class,
                    binarize=tfma.BinarizationOptions(class_ids={"values": class_ids}),
                    aggregate=tfma.AggregationOptions(
                        macro_average=True, class_weights={i: 1.0 for i in class_ids})),
            ])


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


def _scan_csv(path: str, columns: list[str]):
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        yield from _scan_csv_rows(path, csv.reader(f), columns)


def _scan_csv_rows(path: str, reader, columns: list[str]):
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{path}: empty CSV file (no header row)")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: column '{missing[0]}' not found; columns: {', '.join(header)}")
    index = [header.index(c) for c in columns]
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise DataError(f"{path} line {line}: malformed row with {len(row)} fields; "
                            f"the header has {len(header)}")
        label = row[index[1]].strip()
        if label and _looks_like_float(label):
            label = _label_text(float(label))
        yield f"{path} line {line}", row[index[0]].strip(), label


def _looks_like_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return not value.lstrip("-+").isdigit()


def _scan_parquet(path: str, columns: list[str]):
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(f"{path}: column '{missing[0]}' not found; columns: {', '.join(names)}")
    table = pq.read_table(path, columns=columns[:2]).to_pydict()
    for i, (text, label) in enumerate(zip(table[columns[0]], table[columns[1]])):
        yield f"{path} row {i}", _text(text), _label_text(label)


def _scan_tfrecord(path: str, columns: list[str]):
    import tensorflow as tf

    for i, record in enumerate(tf.data.TFRecordDataset(path, compression_type=_compression(path))):
        example = tf.train.Example.FromString(record.numpy())
        features = example.features.feature
        missing = [c for c in columns if c not in features]
        if missing:
            raise DataError(f"{path} record {i}: feature '{missing[0]}' not found; "
                            f"features: {', '.join(sorted(features))}")
        yield f"{path} record {i}", _text(_first_value(features[columns[0]])), \
            _label_text(_first_value(features[columns[1]]))


def _compression(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def _first_value(feature):
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    return values[0] if values else None


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


TASK = TextClassificationTask()
