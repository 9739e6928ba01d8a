"""Checks that make a scheduled run's data gates mean something across runs.

- `SchemaChoice` (validation.schema: previous): the schema of the last run (inferred on
  the first run), so every later night is validated against the same schema rather than
  one inferred from its own, possibly broken, data.
- `DriftGate`: this run's train statistics against those of the last run whose data
  passed, with TFDV's drift comparators (L-infinity distance for string features,
  Jensen-Shannon divergence for numeric ones). `fail` stops the run before Transform with
  a per-feature report; `warn` records it. The statistics of a run that passes become the
  gate's `baseline` output, and the next run's baseline once `DriftBaselinePublish`, the
  run's last component, has republished them: a run that fails after the gate (in Transform,
  the Trainer, the Pusher...) publishes none.

The previous artifacts come from TFX resolvers (`LatestArtifactStrategy`) over these
components' own outputs, of rnnflow's own artifact types: Kubeflow V2 compiles a resolver
into a query by artifact type alone, so a type no other component produces keeps it from
picking up, say, the statistics of StatisticsGen.
"""

# No `from __future__ import annotations`: TFX reads the components' type hints at runtime.
import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, standard_artifacts
from tfx.utils import io_utils

from rnnflow.components.common import run_facts

SCHEMA_FILE = "schema.pbtxt"  # in a Schema artifact (TFX's SchemaGen layout)
STATS_FILE = "FeatureStats.pb"  # in each Split-<name> of an ExampleStatistics artifact
SPLIT = "train"  # compared split
_MEASURES = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
             anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence"}


class AcceptedSchema(artifact.Artifact):
    """The schema a run validated against, for the next run (validation.schema: previous)."""
    TYPE_NAME = "rnnflow.AcceptedSchema"


class DriftBaseline(artifact.Artifact):
    """Train statistics of a run whose data passed the drift gate, and the gate's findings.
    No PROPERTIES: the Kubeflow V2 compiler gives custom artifact types an empty schema."""
    TYPE_NAME = "rnnflow.DriftBaseline"


class PublishedDriftBaseline(artifact.Artifact):
    """A DriftBaseline of a run that finished: what the next run's drift gate compares with."""
    TYPE_NAME = "rnnflow.PublishedDriftBaseline"


class DataDriftError(RuntimeError):
    """This run's data drifted from the last accepted run's beyond the configured thresholds."""


@component
def SchemaChoice(  # noqa: N802 (TFX component naming)
    inferred: InputArtifact[standard_artifacts.Schema],
    schema: OutputArtifact[standard_artifacts.Schema],
    accepted: OutputArtifact[AcceptedSchema],
    unbounded_json: Parameter[str],
    previous: InputArtifact[AcceptedSchema] = None,
):
    """The previous run's schema when there is one, else this run's inferred schema; also
    kept as `accepted` for the next run. An inferred schema first loses the value domains of
    the task's unbounded features (free text, timestamps): TFDV gives a string feature with
    few distinct values (100 reviews) a domain, and every new review would be an anomaly."""
    if previous is not None:
        for output in (schema, accepted):
            io_utils.copy_dir(previous.uri, output.uri)
            output.set_string_custom_property("source", "previous run")
        return
    kept = without_value_domains(tfdv.load_schema_text(os.path.join(inferred.uri, SCHEMA_FILE)),
                                 json.loads(unbounded_json))
    for output in (schema, accepted):
        tf.io.gfile.makedirs(output.uri)
        tfdv.write_schema_text(kept, os.path.join(output.uri, SCHEMA_FILE))
        output.set_string_custom_property("source", "inferred")


def without_value_domains(schema: schema_pb2.Schema, names: list[str]) -> schema_pb2.Schema:
    """A copy of `schema` where the features `names` accept any value."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    dropped = set()
    for feature in schema.feature:
        if feature.name in names:
            if feature.HasField("domain"):
                dropped.add(feature.domain)
            for field in ("domain", "string_domain", "int_domain", "float_domain", "bool_domain"):
                feature.ClearField(field)
    still_used = {f.domain for f in schema.feature if f.HasField("domain")}
    kept = [d for d in schema.string_domain if d.name not in dropped or d.name in still_used]
    del schema.string_domain[:]
    schema.string_domain.extend(kept)
    return schema


def load_statistics(artifact, split: str = SPLIT):
    return tfdv.load_stats_binary(os.path.join(artifact.uri, f"Split-{split}", STATS_FILE))


def drift_schema(schema: schema_pb2.Schema, statistics, excluded: list[str], categorical_threshold: float,
                 numeric_threshold: float) -> tuple[schema_pb2.Schema, dict[str, str]]:
    """A copy of `schema` with a drift comparator on every compared feature; returns it and
    feature -> comparison kind."""
    compared = {}
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    for feature in statistics.datasets[0].features:
        name = feature.path.step[0] if feature.path.step else feature.name
        if name in excluded:
            continue
        try:
            target = tfdv.get_feature(schema, name)
        except ValueError:
            continue  # not in the schema: ExampleValidator reports it
        if feature.HasField("string_stats"):
            target.drift_comparator.infinity_norm.threshold = categorical_threshold
            compared[name] = "categorical"
        elif feature.HasField("num_stats"):
            target.drift_comparator.jensen_shannon_divergence.threshold = numeric_threshold
            compared[name] = "numeric"
    return schema, compared


def measure_drift(current, previous, schema: schema_pb2.Schema, excluded: list[str],
                  categorical_threshold: float, numeric_threshold: float) -> dict:
    """{"features": {name: {"measure", "value", "threshold", "drifted"}}, "drifted": [...]}."""
    schema, compared = drift_schema(schema, current, excluded, categorical_threshold, numeric_threshold)
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=previous)
    features = {}
    for info in anomalies.drift_skew_info:
        name = info.path.step[0]
        for measurement in info.drift_measurements:
            features[name] = {"measure": _MEASURES.get(measurement.type, "distance"),
                              "value": round(float(measurement.value), 6),
                              "threshold": float(measurement.threshold),
                              "drifted": measurement.value > measurement.threshold}
    for name in compared:
        features.setdefault(name, {"measure": _MEASURES[
            anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY if compared[name] == "categorical"
            else anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE],
            "value": None, "threshold": None, "drifted": False})
    return {"features": dict(sorted(features.items())),
            "drifted": sorted(n for n, f in features.items() if f["drifted"])}


def describe_drift(report: dict) -> list[str]:
    return [f"feature '{name}': {f['measure']} {f['value']:.4g} > threshold {f['threshold']:g}"
            for name, f in report["features"].items() if f["drifted"]]


@component
def DriftGate(  # noqa: N802 (TFX component naming)
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    baseline: OutputArtifact[DriftBaseline],
    action: Parameter[str],
    categorical_threshold: Parameter[float],
    numeric_threshold: Parameter[float],
    excluded_json: Parameter[str],
    previous: InputArtifact[PublishedDriftBaseline] = None,
):
    """Compares train statistics with `previous` (the last accepted run's); raises
    DataDriftError when `action` is "fail" and a feature drifted. On success this run's
    statistics become the `baseline` the next run compares with."""
    report = {"previous": previous.uri if previous else None, "action": action, "features": {}, "drifted": []}
    if previous is not None:
        schema_proto = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
        report.update(measure_drift(load_statistics(statistics), load_statistics(previous), schema_proto,
                                    json.loads(excluded_json), categorical_threshold, numeric_threshold))
    lines = describe_drift(report)
    if lines and action == "fail":
        raise DataDriftError(
            f"the data drifted from the last accepted run's ({previous.uri}):\n  " + "\n  ".join(lines)
            + "\nInspect the new data; if the change is real, rerun with validation.drift.action: warn "
              "(or raise the thresholds) to accept it as the new baseline.")
    io_utils.copy_dir(statistics.uri, baseline.uri)
    run_facts.write_json(os.path.join(baseline.uri, run_facts.DRIFT_FILE), report)


@component
def DriftBaselinePublish(  # noqa: N802 (TFX component naming)
    baseline: InputArtifact[DriftBaseline],
    published: OutputArtifact[PublishedDriftBaseline],
):
    """The run's last step: its gate's baseline becomes the next run's (it runs only when every
    component before it succeeded)."""
    io_utils.copy_dir(baseline.uri, published.uri)


def read_drift(uri: str) -> dict:
    """The run summary's view of a DriftGate baseline output."""
    return run_facts.read_json(os.path.join(uri, run_facts.DRIFT_FILE))

