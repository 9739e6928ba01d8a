"""Reads what a run did out of ML Metadata: component states, metrics, blessing, pushed model."""

from __future__ import annotations

import os
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from rnnflow.components.tasks.base import is_candidate

STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.CANCELED: "canceled",
    metadata_store_pb2.Execution.NEW: "new",
}
NODE_CONTEXT_TYPE = "node"


class MetadataReader:
    """Queries one pipeline's executions in a SQLite MLMD store."""

    def __init__(self, metadata_path: str, pipeline_name: str):
        connection = metadata_store_pb2.ConnectionConfig()
        connection.sqlite.filename_uri = metadata_path
        connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        self._store = metadata_store.MetadataStore(connection)
        self._pipeline_name = pipeline_name

    def latest_execution(self, node_id: str, since_ms: int = 0):
        """The newest execution of a component that started at or after `since_ms`."""
        context = self._store.get_context_by_type_and_name(
            NODE_CONTEXT_TYPE, f"{self._pipeline_name}.{node_id}")
        if context is None:
            return None
        executions = [e for e in self._store.get_executions_by_context(context.id)
                      if e.create_time_since_epoch >= since_ms]
        return max(executions, key=lambda e: (e.create_time_since_epoch, e.id), default=None)

    def outputs(self, execution) -> dict[str, list]:
        """Output artifacts of an execution by output key."""
        return self._artifacts(execution, (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT))

    def inputs(self, execution) -> dict[str, list]:
        """Input artifacts of an execution by input key."""
        return self._artifacts(execution, (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT))

    def _artifacts(self, execution, event_types) -> dict[str, list]:
        events = [e for e in self._store.get_events_by_execution_ids([execution.id]) if e.type in event_types]
        artifacts = {a.id: a for a in self._store.get_artifacts_by_id([e.artifact_id for e in events])}
        by_key: dict[str, list] = {}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            by_key.setdefault(key, []).append(artifacts[event.artifact_id])
        return by_key


# TFX records a resolver that finds no artifact (LatestArtifactStrategy on a first run) as a
# failed execution with this message, and runs the pipeline on with an empty input.
_NOTHING_RESOLVED = "returned None"


def component_record(execution, node_id: str) -> dict[str, Any]:
    seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0
    state = STATE_NAMES.get(execution.last_known_state, "unknown")
    result = execution.custom_properties.get("__execution_result__")
    if state == "failed" and result is not None and _NOTHING_RESOLVED in result.string_value \
            and "InputResolutionError" in result.string_value:
        state = "nothing_to_resolve"
    return {"name": node_id, "state": state, "seconds": round(seconds, 1)}


def custom_property(artifact, name: str):
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def read_blessing(blessing_artifact) -> bool | None:
    blessed = custom_property(blessing_artifact, "blessed")
    return None if blessed is None else bool(blessed)


def read_pushed_model(pushed_artifact) -> str | None:
    if not custom_property(pushed_artifact, "pushed"):
        return None
    destination = custom_property(pushed_artifact, "pushed_destination")
    return os.path.abspath(destination) if destination and "://" not in destination else destination


def read_metrics(evaluation_uri: str, renames: dict[str, str], sub_key_labels: list[str]) -> dict[str, Any]:
    """Candidate-model metrics from a TFMA output, overall and per slice: {"overall": {metric:
    value}, "slices": {"feature=value": {...}}}. `renames` maps TFMA metric names to the
    summary's; a metric of TFMA's class-id sub key k is named `name[sub_key_labels[k]]`."""
    import tensorflow_model_analysis as tfma

    result: dict[str, Any] = {"slices": {}}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        values = {}
        for item in slice_metrics.metric_keys_and_values:
            key = item.key
            if key.is_diff or not is_candidate(key):
                continue
            if item.value.WhichOneof("type") != "double_value":
                continue
            values[_metric_name(key, renames, sub_key_labels)] = item.value.double_value.value
        result["slices"][_slice_name(slice_metrics.slice_key)] = values
    result["overall"] = result["slices"].pop("", {})
    return result


def _metric_name(key, renames: dict[str, str], sub_key_labels: list[str]) -> str:
    name = renames.get(key.name, key.name)
    if key.HasField("sub_key") and key.sub_key.HasField("class_id"):
        class_id = key.sub_key.class_id.value
        label = sub_key_labels[class_id] if class_id < len(sub_key_labels) else str(class_id)
        return f"{name}[{label}]"
    return name


def _slice_name(slice_key) -> str:
    return ",".join(f"{k.column}={_slice_value(k)}" for k in slice_key.single_slice_keys)


def _slice_value(single):
    kind = single.WhichOneof("kind")
    value = getattr(single, kind)
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
