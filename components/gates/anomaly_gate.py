"""A gate after ExampleValidator: anomalies stop the run before Transform and training.

ExampleValidator only records anomalies; nothing downstream reads them. This
component fails the pipeline with a readable list instead of letting a model
train on data that broke the schema.
"""


import os

import tensorflow as tf

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"


class DataValidationError(RuntimeError):
    """ExampleValidator found anomalies in the input examples."""


def describe_anomalies(anomalies: anomalies_pb2.Anomalies, split: str) -> list[str]:
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason) \
            or f"{info.short_description}: {info.description}"
        lines.append(f"split '{split}', feature '{feature}': {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"split '{split}', dataset: {info.short_description}: {info.description}")
    return lines


def read_anomalies(artifact) -> list[str]:
    lines = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE)
        with tf.io.gfile.GFile(path, "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        lines.extend(describe_anomalies(anomalies, split))
    return lines


@component
def AnomalyGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):  # noqa: N802 (TFX component naming)
    """Raises DataValidationError listing every anomaly, if there are any."""
    problems = read_anomalies(anomalies)
    if problems:
        raise DataValidationError(
            "ExampleValidator found anomalies; fix the data or the schema:\n  " + "\n  ".join(problems))
