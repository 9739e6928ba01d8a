"""Local runs (LocalDagRunner, SQLite ML Metadata, Beam DirectRunner) with progress and a summary.

The input check runs before TensorFlow and TFX are imported, so bad data is
reported in about a second rather than after the twenty seconds those imports take.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Callable

from rnnflow.components.common import interrupts

from rnnflow.components.common import run_facts
from rnnflow.components.tasks import DataError, get_task, splits
from rnnflow.pipeline import summary as summary_lib
from rnnflow.pipeline.config import PipelineConfig
from rnnflow.pipeline.run_state import (
    FAILED, INTERRUPTED, NOT_BLESSED, RUNNING, SUCCEEDED, RunPaths, begin_run, mark_interrupted, prepare_output_dir,
    write_json)

# Lines native TensorFlow/XLA code prints to stderr on import that look like errors but are not
# (CUDA plugin factories registered twice by the libraries TFX loads, and the start-up notes of
# processes that TensorFlow starts without TF_CPP_MIN_LOG_LEVEL, and oneDNN's notes that ops of a dtype
# use Eigen on CPUs without AVX-512); they go to the log file only.
_NATIVE_NOISE = re.compile(
    r"Unable to register cu(FFT|DNN|BLAS) factory|Could not find cuda drivers|TF-TRT Warning"
    r"|cpu_feature_guard|^To enable the following instructions|oneDNN supports DT_[A-Z0-9]+ only")

Echo = Callable[[str], None]


class _Progress:
    """Prints one line when each component starts and one when it ends (state, seconds)."""

    def __init__(self, node_ids: list[str], reader_factory, since_ms: int, echo: Echo):
        self._node_ids = node_ids
        self._reader_factory = reader_factory
        self._since_ms = since_ms
        self._echo = echo
        self.current: str | None = None

    def _position(self, node_id: str) -> str:
        return f"[{self._node_ids.index(node_id) + 1}/{len(self._node_ids)}]"

    def started(self, node_id: str) -> None:
        self.current = node_id
        self._echo(f"{self._position(node_id)} {node_id} ...")

    def finished(self, node_id: str, seconds: float) -> None:
        self.current = None
        execution = self._reader_factory().latest_execution(node_id, self._since_ms)
        state = summary_lib.component_record(execution, node_id)["state"] if execution else "done"
        self._echo(f"{self._position(node_id)} {node_id:<30} {state:<9} {seconds:7.1f}s")

    def failed(self, node_id: str, seconds: float) -> None:
        self._echo(f"{self._position(node_id)} {node_id:<30} {'failed':<9} {seconds:7.1f}s")

    @contextlib.contextmanager
    def reporting(self):
        """Hooks LocalDagRunner's per-component launcher for the duration of a run.

        LocalDagRunner has no callbacks, and its own log lines are unreliable to
        catch (absl resets its logger level when Beam parses flags).
        """
        from tfx.orchestration.portable import launcher

        progress = self
        original = launcher.Launcher

        class ReportingLauncher(original):
            def launch(self):
                node_id = self._pipeline_node.node_info.id  # noqa: SLF001
                interrupts.check(f"before {node_id}")  # nothing starts after a stop request
                progress.started(node_id)
                started = time.time()
                try:
                    result = super().launch()
                    interrupts.check(f"in {node_id}")  # a request its code swallowed
                except BaseException:
                    progress.failed(node_id, time.time() - started)
                    raise
                progress.finished(node_id, time.time() - started)
                return result

        launcher.Launcher = ReportingLauncher
        try:
            yield self
        finally:
            launcher.Launcher = original


def run_local(config: PipelineConfig, output_dir: str, echo: Echo = print, *,
              strict_data: bool = False) -> dict[str, Any]:
    """Runs the pipeline locally and writes <output_dir>/run_summary.json; returns the summary.

    `strict_data` turns the input check's warnings (data that was fixed up, or that looks
    unable to train a model worth blessing) into a failure before any component runs.
    Raises OutputDirError when the directory is unusable or another run is using it.
    """
    paths = RunPaths(prepare_output_dir(output_dir))
    summary: dict[str, Any] = {
        "status": FAILED, "blessed": False, "pushed_model": None, "metrics": {},
        "components": [], "config": config.to_dict(), "output_dir": paths.output_dir,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    note = begin_run(paths, {**summary, "status": RUNNING})
    if note:
        echo(f"note: {note}")
    summary["log_file"] = _attach_log_file(paths)
    with native_stderr_filtered():
        _run_pipeline(config, paths, summary, echo, strict_data)
    return summary


def _run_pipeline(config: PipelineConfig, paths: RunPaths, summary: dict[str, Any], echo: Echo,
                  strict_data: bool) -> None:
    started = time.time()
    since_ms = int(started * 1000) - 1000  # MLMD stores milliseconds; allow for clock rounding
    node_ids: list[str] = []
    progress = None
    try:
        task = get_task(config.task_type)
        echo(f"Checking input data: {config.data.path}" + "".join(
            f", {split}: {path}" for split, path in splits.split_paths(config.data).items() if split != "train"))
        report = task.preflight(config)
        summary["input"] = {"files": report.files, "rows": report.rows, "warnings": report.warnings,
                            "notes": report.notes, **({"details": report.details} if report.details else {})}
        for warning in report.warnings:
            echo(f"  warning: {warning}")
        for line in report.notes:
            echo(f"  note: {line}")
        echo(f"  {report.rows} rows in {len(report.files)} file(s)")
        if strict_data and report.warnings:
            raise DataError(f"--strict-data: {len(report.warnings)} data warning(s): "
                            + "; ".join(report.warnings))
        from tfx import v1 as tfx

        from rnnflow.pipeline.pipeline import create_pipeline

        pipeline = create_pipeline(config, paths.pipeline_root, paths.serving_dir(config), paths.metadata)
        node_ids = [c.id for c in pipeline.components]
        progress = _Progress(node_ids, lambda: _reader(paths, config), since_ms, echo)
        with progress.reporting():
            tfx.orchestration.LocalDagRunner().run(pipeline)
        interrupts.check("after the last component")
        _collect_results(summary, paths, config, node_ids, since_ms)
    except DataError as e:
        if interrupts.requested():
            _end_interrupted(summary, paths, config, node_ids, since_ms, progress, started)
        summary["error"] = f"DataError: {e}"
    except KeyboardInterrupt:
        _end_interrupted(summary, paths, config, node_ids, since_ms, progress, started)
    except Exception as e:  # noqa: BLE001 (any component failure ends the run as "failed")
        if interrupts.requested():  # the signal surfaced as another error (a Beam stage wraps it)
            logging.getLogger(__name__).info("stopped by %s:\n%s", interrupts.requested(), traceback.format_exc())
            _end_interrupted(summary, paths, config, node_ids, since_ms, progress, started)
        summary["error"] = f"{type(e).__name__}: {e}"
        logging.getLogger(__name__).error("run failed:\n%s", traceback.format_exc())
        if node_ids:
            _collect_components(summary, paths, config, node_ids, since_ms,
                                failed_node=progress.current if progress else None)
    summary["seconds"] = round(time.time() - started, 1)
    write_json(paths.summary, summary)


def _end_interrupted(summary, paths, config, node_ids, since_ms, progress, started) -> None:
    """Writes the summary of a run stopped by a signal (status interrupted), then raises
    RunInterrupted for the caller (the CLI exits 130)."""
    reason = interrupts.requested() or "Ctrl-C or SIGTERM"
    mark_interrupted(summary)
    summary["error"] = f"interrupted ({reason})"
    summary["seconds"] = round(time.time() - started, 1)
    if node_ids:
        executions = _collect_components(summary, paths, config, node_ids, since_ms,
                                         failed_node=progress.current if progress else None)
        states = {}
        for record in summary["components"]:  # ML Metadata still says running: it was stopped
            if record["state"] in ("running", "failed") and record["name"] == (progress and progress.current):
                record["state"] = INTERRUPTED
            states[record["name"]] = record["state"]
        if states.get("Pusher") == "complete":  # the request came after a version became visible: say so
            summary["pushed_model"] = _pushed_model(paths, config, executions["Pusher"])
    write_json(paths.summary, summary)
    raise interrupts.RunInterrupted(reason)


def _pushed_model(paths, config, pusher_execution) -> str | None:
    """The version the Pusher completed before a stop request."""
    try:
        return summary_lib.read_pushed_model(_reader(paths, config).outputs(pusher_execution)["pushed_model"][0])
    except Exception:  # noqa: BLE001 (the summary of a stopped run is written whatever happens here)
        logging.getLogger(__name__).warning("could not read the Pusher's output:\n%s", traceback.format_exc())
        return None


@contextlib.contextmanager
def native_stderr_filtered():
    """Filters what this process and its children write to stderr (file descriptor 2, where
    native TensorFlow code logs) meanwhile: every line goes to the log file, and all but
    the known harmless noise also to the console, as it comes."""
    sys.stderr.flush()
    console = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    log = logging.getLogger("rnnflow.stderr")

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if line.strip():
                    log.info("%s", line)
                if not _NATIVE_NOISE.search(line):
                    os.write(console, raw)

    thread = threading.Thread(target=forward, name="rnnflow-stderr", daemon=True)
    thread.start()
    try:
        yield console  # the console's descriptor, for output that must not be filtered line by line
    finally:
        sys.stderr.flush()
        os.dup2(console, 2)  # closes the pipe's last write end held by this process
        thread.join(timeout=5)
        os.close(console)


def _reader(paths: RunPaths, config: PipelineConfig) -> summary_lib.MetadataReader:
    return summary_lib.MetadataReader(paths.metadata, config.name)


def _collect_components(summary, paths, config, node_ids, since_ms, failed_node=None) -> dict:
    """Fills summary["components"]; returns node id -> execution for this run."""
    executions = {}
    if os.path.exists(paths.metadata):
        reader = _reader(paths, config)
        executions = {n: reader.latest_execution(n, since_ms) for n in node_ids}
    records = []
    for node_id in node_ids:
        execution = executions.get(node_id)
        if execution is not None:
            records.append(summary_lib.component_record(execution, node_id))
        else:
            records.append({"name": node_id, "state": "failed" if node_id == failed_node else "not_run",
                            "seconds": None})
    summary["components"] = records
    return executions


def _collect_results(summary, paths, config, node_ids, since_ms) -> None:
    executions = _collect_components(summary, paths, config, node_ids, since_ms)
    reader = _reader(paths, config)
    from rnnflow.components.ingest.input_report import SPANS_PROPERTY

    # The spans Transform (and so the Trainer) learned from: the one the ExampleGen ingested, or
    # the latest data.rolling_spans spans.
    examples = reader.inputs(executions["Transform"])["examples"]
    summary["spans"] = sorted({span for artifact in examples
                               for span in json.loads(summary_lib.custom_property(artifact, SPANS_PROPERTY) or "[]")})

    trainer_outputs = reader.outputs(executions["Trainer"])
    training = run_facts.read_training_summary(trainer_outputs["model_run"][0].uri) or {}
    summary["model"] = training.pop("model", None)
    summary["hyperparameters"] = training.pop("hyperparameters", {})
    # The `auto` config fields as this run resolved them, and what they were measured on.
    summary["resolved"] = training.pop("resolved", {})
    summary["training"] = training
    if executions.get("DriftGate") is not None:
        from rnnflow.components.gates.data_gates import read_drift

        summary["drift"] = read_drift(reader.outputs(executions["DriftGate"])["baseline"][0].uri)
    if executions.get("Tuner") is not None:
        results = reader.outputs(executions["Tuner"])["tuner_results"][0].uri
        summary["trials"] = run_facts.read_json(os.path.join(results, run_facts.TUNER_RESULTS_FILE))

    task = get_task(config.task_type)
    evaluator_outputs = reader.outputs(executions["Evaluator"])
    metrics = summary_lib.read_metrics(evaluator_outputs["evaluation"][0].uri, task.metric_renames,
                                       task.metric_sub_key_labels(summary))
    summary["metrics"] = metrics["overall"]
    summary["metrics_by_slice"] = metrics["slices"]
    summary["blessed"] = bool(summary_lib.read_blessing(evaluator_outputs["blessing"][0]))
    if executions.get("TestEvaluator") is not None:  # data.test_path: scored once, decides nothing
        test = summary_lib.read_metrics(reader.outputs(executions["TestEvaluator"])["evaluation"][0].uri,
                                        task.metric_renames, task.metric_sub_key_labels(summary))
        summary["test_metrics"] = test["overall"]
    trivial = task.trivial_scores(config, _input_report(summary))
    if trivial:  # what the model had to beat (evaluation.baseline_margin)
        summary["trivial_baseline"] = {"predictor": task.trivial_predictor, "metrics": trivial}
    task.summarize(summary, {
        node: reader.outputs(execution) for node, execution in executions.items() if execution is not None})

    if executions.get("ServingValidator") is not None:
        from rnnflow.components.serving.serving_validation import read_report

        summary["serving_validation"] = read_report(
            reader.outputs(executions["ServingValidator"])["blessing"][0].uri)
    if executions.get("BulkInferrer") is not None:
        from rnnflow.components.serving import batch_inference

        examples = reader.outputs(executions["InferenceExamples"])["examples"][0]
        result = reader.outputs(executions["BulkInferrer"]).get("inference_result", [None])[0]
        predictions = batch_inference.count_predictions(result.uri) if result is not None else 0
        summary["inference"] = {
            "path": config.inference.path,
            "rows": summary_lib.custom_property(examples, batch_inference.ROWS_PROPERTY),
            "skipped": summary_lib.custom_property(examples, batch_inference.SKIPPED_PROPERTY),
            "skipped_rows": os.path.join(examples.uri, batch_inference.SKIPPED_FILE),
            "predictions": predictions,
            "inference_result": result.uri if result is not None and predictions else None}
    pushed = reader.outputs(executions["Pusher"])["pushed_model"][0]
    summary["pushed_model"] = summary_lib.read_pushed_model(pushed)
    summary["status"] = SUCCEEDED if summary["blessed"] and summary["pushed_model"] else NOT_BLESSED
    if task.plot_file:
        _write_plot(task, summary, os.path.join(paths.output_dir, task.plot_file))


def _input_report(summary: dict):
    from rnnflow.components.tasks import InputReport

    found = summary.get("input") or {}
    return InputReport(files=found.get("files", []), rows=found.get("rows", 0), warnings=found.get("warnings", []),
                       notes=found.get("notes", []), details=found.get("details") or {}) if found else None


def _write_plot(task, summary: dict, path: str) -> None:
    """The task's figure of the run as a PNG next to run_summary.json (summary["plot"]); a
    figure that cannot be drawn is logged, never a failed run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        figure = task.plot(summary)
        if figure is None:
            return
        partial = path + ".partial.png"
        figure.savefig(partial, dpi=110, bbox_inches="tight")
        plt.close(figure)
        os.replace(partial, path)
        summary["plot"] = path
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not draw %s:\n%s", path, traceback.format_exc())


def _attach_log_file(paths: RunPaths) -> str:
    """All library logs of the run go to a file, so the console shows progress only."""
    os.makedirs(paths.logs, exist_ok=True)
    log_file = os.path.join(paths.logs, f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}.log")
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    # Libraries install console handlers at import; the console is for progress lines.
    for old in [h for h in root.handlers if type(h) is logging.StreamHandler
                or getattr(h, "_rnnflow", False)]:
        root.removeHandler(old)
    handler._rnnflow = True  # noqa: SLF001
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    tf_logger = logging.getLogger("tensorflow")  # TF attaches its own console handler
    tf_logger.handlers = []
    tf_logger.propagate = True
    logging.getLogger("absl").setLevel(logging.INFO)
    return log_file
