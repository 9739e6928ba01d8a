"""Where a local run keeps its files, and the life cycle of its run_summary.json.

Light on purpose (no TensorFlow, TFX or ML Metadata imports): the CLI checks the
output directory and reports a run's state in well under a second.

A run writes its summary with status "running" (and its pid and host) before it
does anything else and replaces it when it ends, so a scheduler reading the file
never mistakes a killed run for the previous run's success. The previous
summary is kept as run_summary.previous.json.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import socket
from typing import Any

from rnnflow.components.common import run_facts
from rnnflow.components.common.file_checks import OutputPathError, check_output_dir

RUNNING, SUCCEEDED, FAILED, NOT_BLESSED, INTERRUPTED = (
    "running", "succeeded", "failed", "not_blessed", "interrupted")
# `rnnflow status` only: a run_summary.json that is not a JSON object (empty, cut short, edited).
UNREADABLE = "unreadable"
# `rnnflow run` exit codes by final status; 2 is a usage or config error.
EXIT_CODES = {SUCCEEDED: 0, FAILED: 1, NOT_BLESSED: 3, INTERRUPTED: 130}
# `rnnflow status` exits with the run's code, or this while the run is still going.
EXIT_RUNNING = 4
# `rnnflow status` exits with this when run_summary.json cannot be read: the run's state is unknown.
EXIT_UNREADABLE = 5
SUMMARY_FILE = run_facts.RUN_SUMMARY_FILE
PREVIOUS_SUMMARY_FILE = run_facts.PREVIOUS_RUN_SUMMARY_FILE


class OutputDirError(ValueError):
    """The output directory cannot be used; the message names the path and the reason."""


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a local run keeps its artifacts, metadata, served models and summary."""
    output_dir: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def summary(self) -> str:
        return os.path.join(self.output_dir, SUMMARY_FILE)

    @property
    def previous_summary(self) -> str:
        return os.path.join(self.output_dir, PREVIOUS_SUMMARY_FILE)

    @property
    def logs(self) -> str:
        return os.path.join(self.output_dir, "logs")

    def serving_dir(self, config) -> str:
        base = config.serving.base_dir
        if not (os.path.isabs(base) or "://" in base):
            base = os.path.join(self.output_dir, base)
        return os.path.join(base, config.serving.model_name or config.name)


def prepare_output_dir(path: str, flag: str = "--output-dir") -> str:
    """Creates the directory if needed; an OutputDirError naming the path and why it is unusable."""
    try:
        return check_output_dir(path, flag)
    except OutputPathError as e:
        raise OutputDirError(str(e)) from None


def read_summary(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"status": UNREADABLE, "error": f"{path}: {_reason(e)}"}
    if not isinstance(summary, dict):
        return {"status": UNREADABLE, "error": f"{path}: a JSON {type(summary).__name__}, not an object"}
    return summary


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return ("empty" if not error.doc.strip() else
                f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})")
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 (byte offset {error.start})"
    return getattr(error, "strerror", None) or str(error)


def current_status(summary: dict[str, Any]) -> str:
    """The summary's status, with a "running" run whose process is gone reported as interrupted."""
    status = summary.get("status", FAILED)
    if status == RUNNING and not _still_running(summary):
        return INTERRUPTED
    return status


def begin_run(paths: RunPaths, summary: dict[str, Any]) -> str | None:
    """Marks the run as running; keeps the previous summary. Returns a line about an interrupted
    previous run, if there was one. OutputDirError if another run is still using the directory."""
    previous = read_summary(paths.summary)
    note = None
    if previous is not None and previous.get("status") == UNREADABLE:
        if not os.path.isfile(paths.summary):
            raise OutputDirError(f"--output-dir {paths.output_dir}: {previous['error']}")
        # Kept byte for byte, for whoever wants to see what was there.
        os.replace(paths.summary, paths.previous_summary)
        note = f"the previous {SUMMARY_FILE} was unreadable ({previous['error']}); kept as {PREVIOUS_SUMMARY_FILE}"
    elif previous is not None:
        if previous.get("status") == RUNNING:
            if _still_running(previous):
                raise OutputDirError(
                    f"--output-dir {paths.output_dir}: a run (pid {previous.get('pid')}, started "
                    f"{previous.get('started_at')}) is still running there; wait for it or use another directory")
            mark_interrupted(previous)
            note = (f"the previous run in this directory (started {previous.get('started_at')}) was "
                    f"interrupted; its summary is kept as {PREVIOUS_SUMMARY_FILE}")
        write_json(paths.previous_summary, previous)
    write_json(paths.summary, {**summary, "status": RUNNING, "pid": os.getpid(), "host": socket.gethostname()})
    return note


def mark_interrupted(summary: dict[str, Any]) -> None:
    summary["status"] = INTERRUPTED
    summary.setdefault("error", "the run stopped before it finished (killed, or the machine went down)")
    summary["pushed_model"] = None


def _still_running(summary: dict[str, Any]) -> bool:
    if summary.get("host") != socket.gethostname():
        return True  # another machine's run: cannot tell, so it is taken at its word
    pid = summary.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()  # our own pid in an old summary: a recycled pid


def write_json(path: str, payload: dict) -> None:
    """Atomic write: a reader never sees half a summary."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_finite(payload), f, indent=2, default=str, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def _finite(value):
    """NaN metrics (e.g. precision when a class is never predicted) become null: valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Components whose output is the schema a run validates against (validation.schema modes).
SCHEMA_PRODUCERS = ("SchemaChoice", "ImportSchemaGen", "SchemaGen")


def latest_schema(paths: RunPaths) -> str | None:
    """The schema.pbtxt of the newest schema output under the run's pipeline root (TFX numbers
    outputs by execution id; SchemaChoice runs after SchemaGen, so it wins when both ran)."""
    found = [path for producer in SCHEMA_PRODUCERS
             for path in glob.glob(os.path.join(paths.pipeline_root, producer, "schema", "*", "schema.pbtxt"))]
    return max(found, key=lambda path: int(path.split(os.sep)[-2])) if found else None
