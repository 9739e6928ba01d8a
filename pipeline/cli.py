"""The `rnnflow` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from rnnflow.components.tasks import DataError, get_task, task_names
from rnnflow.components.tasks.base import EXIT_USAGE
from rnnflow.pipeline import run_state
from rnnflow.pipeline.config import ConfigError, builtin_config_names, load_config


def task_commands() -> dict:
    """The CLI verbs the registered tasks add (`Task.commands`): name -> TaskCommand."""
    found = {}
    for task_name in task_names():
        for command in get_task(task_name).commands:
            found[command.name] = command
    return found


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help=f"built-in config name ({', '.join(builtin_config_names())}) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set training.epochs=3 (repeatable)")


def _add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline-root", help="Kubeflow/Vertex: overrides runner.pipeline_root")
    parser.add_argument("--spec", help="Kubeflow/Vertex: keep the compiled spec here, a .yaml file "
                                       "(default: a temporary file)")
    parser.add_argument("--dry-run", action="store_true",
                        help="Kubeflow/Vertex: compile and print the client call, send nothing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the pipeline: here (runner.type: local: LocalDagRunner, SQLite "
                                          "MLMD, Beam DirectRunner), or submit it to Kubeflow / Vertex AI")
    _add_config_arguments(run)
    run.add_argument("--output-dir", default=None,
                     help="local: pipeline root, metadata, served models and run_summary.json "
                          "(default: runs/<name>)")
    run.add_argument("--strict-data", action="store_true",
                     help="local: fail before any component when the input check warns (data fixed up, invalid "
                          "bytes, classes too rare for the eval split, a constant target, ...)")
    _add_remote_arguments(run)

    schedule = commands.add_parser(
        "schedule", help="run the pipeline on a schedule on Kubeflow (recurring run) or Vertex AI (schedule)")
    _add_config_arguments(schedule)
    schedule.add_argument("--cron", required=True,
                          help="5-field cron: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'")
    schedule.add_argument("--time-zone", help="IANA time zone of the cron (Vertex; KFP runs in UTC)")
    schedule.add_argument("--start-time", help="RFC 3339, e.g. 2026-12-01T00:00:00Z")
    schedule.add_argument("--end-time", help="RFC 3339; no runs after it")
    schedule.add_argument("--max-runs", type=int, help="Vertex: stop after this many runs")
    schedule.add_argument("--catchup", action="store_true",
                          help="KFP: backfill the runs missed while the schedule was paused (default: no)")
    _add_remote_arguments(schedule)

    status = commands.add_parser(
        "status", help="the state of the last run in an output dir (exit code: the run's, 4 while running)")
    status.add_argument("--output-dir", required=True)

    show = commands.add_parser("show-config", help="validate a config and print it fully resolved")
    _add_config_arguments(show)

    commands.add_parser("configs", help="list the built-in configs")

    schema = commands.add_parser(
        "schema", help="write the schema the last local run validated against, as an editable schema.pbtxt")
    schema.add_argument("--output-dir", required=True, help="the run's --output-dir")
    schema.add_argument("--output", help="where to write it (default: <output-dir>/schema.pbtxt)")

    predict = commands.add_parser(
        "predict", help="score a CSV, JSONL or Parquet file (or stdin) with a pushed model: a SavedModel or serving "
                        "directory, a TF Serving REST URL or a gRPC host:port (exit 3: some rows not scored)")
    predict.add_argument("--model", required=True,
                         help="a serving dir (newest version) or version dir, http://host:8501/v1/models/NAME"
                              "[/versions/N|/labels/L], or grpc://host:8500 / host:8500 with --model-name")
    predict.add_argument("--model-name", help="REST/gRPC: the served model's name when the target does not say it")
    predict.add_argument("--input", required=True, help="the rows to score: .csv, .jsonl, .parquet, or - for stdin")
    predict.add_argument("--output", help="where to write predictions: .csv, .jsonl or .parquet (default: JSONL on "
                                          "stdout)")
    predict.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="the input's format (default: from "
                                                                               "the extension; stdin: sniffed)")
    predict.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    predict.add_argument("--id-column", help="column copied to the output to identify rows (default: `id` when "
                                             "the input has one, else the line number)")
    predict.add_argument("--signature", default="serving_default")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--strict", action="store_true",
                         help="stop at the first row that cannot be scored and write nothing")

    deploy = commands.add_parser(
        "serving-config", help="write models.config, batching and monitoring configs, docker-compose.yml and "
                               "Kubernetes manifests for the pushed models; move the stable/canary labels")
    deploy.add_argument("--output-dir", required=True, help="where to write the deployment files")
    deploy.add_argument("--config", action="append", default=[],
                        help="a config whose pushed models to serve (repeatable; default: the ones the last "
                             "serving-config call in --output-dir served)")
    deploy.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (applies to every --config)")
    deploy.add_argument("--run-dir", action="append", default=[],
                        help="local runs: the run's --output-dir, one per --config (default: runs/<name>)")
    deploy.add_argument("--device", choices=("cpu", "gpu"), help="what the model server runs on (default cpu)")
    deploy.add_argument("--cpus", type=int, help="cores per replica: batch threads and resource requests (default 4)")
    deploy.add_argument("--version-policy", choices=("specific", "latest", "all"),
                        help="specific (default): the stable and canary versions; latest: the newest "
                             "--latest-versions; all")
    deploy.add_argument("--latest-versions", type=int)
    deploy.add_argument("--promote", type=int, metavar="VERSION",
                        help="label VERSION stable (a rollback: an older version)")
    deploy.add_argument("--canary", type=int, metavar="VERSION", help="label VERSION canary")
    deploy.add_argument("--model", help="with several models: the one --promote/--canary applies to")
    deploy.add_argument("--image", help="the model server image (default: tensorflow/serving of "
                                        "serving.tf_serving_version)")

    for name, command in task_commands().items():
        command.add_arguments(commands.add_parser(name, help=command.help))

    compile_ = commands.add_parser("compile", help="compile a Kubeflow Pipelines v2 / Vertex AI pipeline spec")
    _add_config_arguments(compile_)
    compile_.add_argument("--output", required=True,
                          help="spec to write: .yaml (the PipelineSpec KFP uploads) or .json (a Vertex PipelineJob)")
    compile_.add_argument("--pipeline-root", required=True, help="pipeline root, e.g. gs://bucket/root")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Library deprecation chatter (google-cloud, Beam) drowns the progress lines; the run log keeps it.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = build_parser().parse_args(argv)
    if args.command == "configs":
        print("\n".join(builtin_config_names()))
        return 0
    if args.command == "status":
        return _status(args.output_dir)
    if args.command == "schema":
        return _schema(args.output_dir, args.output)
    if args.command == "predict":
        return _predict(args)
    task_command = task_commands().get(args.command)
    if task_command is not None:
        from rnnflow.pipeline.runner import native_stderr_filtered

        # A task's own verb (`generate` for language models): TensorFlow's native chatter filtered.
        with native_stderr_filtered():
            return task_command.run(args)
    if args.command == "serving-config":
        from rnnflow.pipeline.runner import native_stderr_filtered

        try:
            with native_stderr_filtered():
                return _serving_config(args)
        except ConfigError as e:
            print(f"rnnflow: serving-config: {e}", file=sys.stderr)
            return EXIT_USAGE
    try:
        config = load_config(args.config, args.overrides)
        if args.command == "show-config":
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        if args.command == "compile":
            return _compile(config, args)
        if args.command == "schedule" or config.runner.type != "local":
            return _remote(config, args)
    except ConfigError as e:
        print(f"rnnflow: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as e:
        print(f"rnnflow: data error: {e}", file=sys.stderr)
        return 1
    output_dir = args.output_dir or os.path.join("runs", config.name)
    try:
        output_dir = run_state.prepare_output_dir(output_dir)
    except run_state.OutputDirError as e:
        print(f"rnnflow: {e}", file=sys.stderr)
        return EXIT_USAGE
    return _run(config, output_dir, strict_data=args.strict_data)


def _check_output(path: str, flag: str, inputs: tuple[str, ...] = ()) -> str:
    """check_output_file, its error as a ConfigError (a usage error, exit 2)."""
    from rnnflow.components.common.file_checks import OutputPathError, check_output_file

    try:
        return check_output_file(path, flag, inputs=inputs)
    except OutputPathError as e:
        raise ConfigError(str(e)) from None


def _compile(config, args) -> int:
    """Checks the spec's location, the pipeline root and every input path (the same rules as
    `schedule`), then compiles."""
    from rnnflow.pipeline.config import portable_path_notes
    from rnnflow.pipeline.kubeflow import pipeline_root_for, require_image

    if not args.output.endswith((".yaml", ".yml", ".json")):
        raise ConfigError(f"--output {args.output}: must end in .yaml (a PipelineSpec) or .json (a Vertex PipelineJob)")
    output = _check_output(args.output, "--output")
    pipeline_root = pipeline_root_for(config, args.pipeline_root)
    require_image(config)
    for note in portable_path_notes(config):
        print(f"note: {note}", file=sys.stderr)
    from rnnflow.pipeline.runner import native_stderr_filtered

    with native_stderr_filtered():
        from rnnflow.pipeline.kubeflow import compile_kubeflow_v2

        print(f"wrote {compile_kubeflow_v2(config, pipeline_root, output)}")
    return 0


def _remote(config, args) -> int:
    """Compiles, then submits a run or creates a schedule (or prints the call: --dry-run)."""
    import tempfile

    from rnnflow.pipeline import remote
    from rnnflow.pipeline.config import portable_path_notes, require_fields
    from rnnflow.pipeline.kubeflow import compile_kubeflow_v2, pipeline_root_for
    from rnnflow.pipeline.runner import native_stderr_filtered

    runner = config.runner
    if runner.type == "local":
        raise ConfigError("runner.type: local runs are scheduled by the machine's own scheduler "
                          "(cron, systemd timers) calling `rnnflow run`; set runner.type: kubeflow_v2 or vertex")
    schedule = None
    if args.command == "schedule":
        schedule = remote.check_schedule(remote.Schedule(
            cron=args.cron, time_zone=args.time_zone, start_time=args.start_time, end_time=args.end_time,
            max_runs=args.max_runs, catchup=args.catchup), runner.type)
    required = ["runner.image", *(["runner.kfp_host"] if runner.type == "kubeflow_v2" else
                                  ["runner.vertex_project", "runner.vertex_region"])]
    require_fields(config, *required[:1 if args.dry_run else None])
    pipeline_root = pipeline_root_for(config, args.pipeline_root)
    if args.spec and not args.spec.endswith((".yaml", ".yml")):
        raise ConfigError(f"--spec {args.spec}: must end in .yaml (the PipelineSpec form kfp uploads)")
    if args.spec:
        _check_output(args.spec, "--spec")
    for note in portable_path_notes(config):
        print(f"note: {note}", file=sys.stderr)
    if runner.type == "kubeflow_v2" and not args.dry_run:
        remote.check_reachable(runner.kfp_host)  # before the compile, which takes a while
    with tempfile.TemporaryDirectory(prefix="rnnflow-spec-") as scratch:
        spec = os.path.abspath(args.spec) if args.spec else os.path.join(scratch, f"{config.name}.yaml")
        with native_stderr_filtered():
            compile_kubeflow_v2(config, pipeline_root, spec)
        call = (remote.schedule_call(config, spec, pipeline_root, schedule) if schedule
                else remote.run_call(config, spec, pipeline_root))
        if args.dry_run:
            print(call.describe())
            return 0
        try:
            print(remote.send(call, config))
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 (the service's answer, in one line)
            print(f"rnnflow: {call.client}.{call.method} failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    return 0


def _run(config, output_dir: str, strict_data: bool) -> int:
    from rnnflow.components.common import interrupts
    from rnnflow.pipeline.runner import run_local

    print(f"rnnflow: running pipeline '{config.name}' ({config.task_type}) into {output_dir}")
    # A scheduler's SIGTERM ends the run like Ctrl-C: recorded, honoured at the next safe point
    # (never a push after it), and the summary says "interrupted" (components/common/interrupts.py).
    try:
        with interrupts.stop_on_signals():
            summary = run_local(config, output_dir, strict_data=strict_data)
    except run_state.OutputDirError as e:
        print(f"rnnflow: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nrnnflow: interrupted; {os.path.join(output_dir, run_state.SUMMARY_FILE)} says so",
              file=sys.stderr)
        _exit_now(run_state.EXIT_CODES[run_state.INTERRUPTED])
    print(format_summary(summary))
    return run_state.EXIT_CODES[summary["status"]]


def _exit_now(code: int) -> None:
    """Ends the process with `code` once output is flushed, skipping interpreter shutdown.

    After an interrupt, a normal exit is not reliable: when the KeyboardInterrupt passed
    through code that a native library ran with PyRun_String, CPython remembers it as
    unhandled and kills the process with SIGINT at shutdown (exit -2 instead of 130), and
    Beam's or gRPC's worker threads can hold the shutdown up. The summary is already written.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


EXIT_ROWS_NOT_SCORED = 3


def _predict(args) -> int:
    from rnnflow.pipeline.runner import native_stderr_filtered

    if args.batch_size < 1:
        print(f"rnnflow: predict: --batch-size {args.batch_size}: must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.input != "-" and not os.path.exists(args.input):
        print(f"rnnflow: predict: --input {args.input}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if args.output:  # before the model loads: a bad location costs a second, not the load
        try:
            _check_output(args.output, "--output", inputs=(args.input,))
        except ConfigError as e:
            print(f"rnnflow: predict: {e}", file=sys.stderr)
            return EXIT_USAGE
    # TensorFlow's native chatter is filtered; the progress bar writes to the console itself
    # (the filter passes whole lines only).
    with native_stderr_filtered() as console, os.fdopen(os.dup(console), "w") as progress:
        from rnnflow.components.serving.batch_scoring import predict_file
        from rnnflow.components.serving.serving_client import ServingError

        try:
            report = predict_file(args.model, args.input, args.output, model_name=args.model_name,
                                  signature=args.signature, input_format=args.format, id_column=args.id_column,
                                  batch_size=args.batch_size, strict=args.strict, delimiter=args.delimiter,
                                  progress=progress)
        except ServingError as e:
            print(f"rnnflow: predict: {e}", file=sys.stderr)
            return 1
    print(report.describe(), file=sys.stderr)
    return EXIT_ROWS_NOT_SCORED if report.failed else 0


def _serving_config(args) -> int:
    import dataclasses

    from rnnflow.pipeline import serving_config as deploy
    from rnnflow.pipeline.kubeflow import pipeline_root_for, serving_dir

    try:
        output_dir = run_state.prepare_output_dir(args.output_dir)
    except run_state.OutputDirError as e:
        raise ConfigError(str(e)) from None
    state = deploy.read_state(output_dir)
    if args.config:
        if args.run_dir and len(args.run_dir) != len(args.config):
            raise ConfigError(f"--run-dir: give one per --config ({len(args.config)}), or none")
        models = []
        for i, name in enumerate(args.config):
            config = load_config(name, args.overrides)
            if config.runner.type == "local":
                run_dir = args.run_dir[i] if args.run_dir else os.path.join("runs", config.name)
                directory = run_state.RunPaths(os.path.abspath(run_dir)).serving_dir(config)
            else:
                directory = serving_dir(config, pipeline_root_for(config, None))
            models.append(deploy.served_model(config, directory))
        options = state[1] if state else deploy.Options()
    elif state:
        models, options = state
    else:
        raise ConfigError(f"--config: name the configs to serve ({output_dir} has no {deploy.STATE_FILE} "
                          "from an earlier call)")
    changes = {k: v for k, v in (("device", args.device), ("cpus", args.cpus), ("version_policy", args.version_policy),
                                 ("latest_versions", args.latest_versions), ("image", args.image)) if v is not None}
    options = dataclasses.replace(options, **changes, promote=args.promote, canary=args.canary)
    names = [m.name for m in models]
    if args.model is not None and args.model not in names:
        raise ConfigError(f"--model {args.model}: not a served model; served: {', '.join(names)}")
    before = deploy.read_labels(output_dir)
    if (args.promote is not None or args.canary is not None) and len(models) > 1:
        chosen = [m for m in models if m.name == args.model]
        if not chosen:
            raise ConfigError(f"--model: name the model to label, one of {', '.join(m.name for m in models)}")
        # Labels of the other models stay as models.config has them.
        written = deploy.write(output_dir, models, options, label_only=args.model)
    else:
        written = deploy.write(output_dir, models, options)
    labels = deploy.read_labels(output_dir)
    for model in models:
        canary = before.get(model.name, {}).get(deploy.CANARY)
        if canary is not None and deploy.CANARY not in labels.get(model.name, {}):
            why = ("it is now stable" if labels.get(model.name, {}).get(deploy.STABLE) == canary
                   else "that version is no longer pushed")
            print(f"{model.name}: the canary label (version {canary}) is removed: {why}")
        print(f"{model.name}: {model.serving_dir}  labels " +
              ", ".join(f"{k}={v}" for k, v in sorted(labels.get(model.name, {}).items())))
    print("wrote " + ", ".join(written.values()))
    print(f"start it here: docker compose -f {written[deploy.COMPOSE_FILE]} up   "
          f"(or: kubectl apply -f {written[deploy.KUBERNETES_FILE]})")
    return 0


def _schema(output_dir: str, output: str | None) -> int:
    import shutil

    paths = run_state.RunPaths(os.path.abspath(output_dir))
    source = run_state.latest_schema(paths)
    if source is None:
        print(f"rnnflow: no schema under {paths.pipeline_root}: no run has validated data there yet",
              file=sys.stderr)
        return EXIT_USAGE
    output = os.path.abspath(output or os.path.join(paths.output_dir, "schema.pbtxt"))
    shutil.copyfile(source, output)
    print(f"wrote {output} (from {source})\nedit it, then validate later runs against it with "
          f"--set validation.schema={output}")
    return 0


def _status(output_dir: str) -> int:
    """Prints the last run's state; exits with its exit code (4 while it is still running)."""
    paths = run_state.RunPaths(os.path.abspath(output_dir))
    if os.path.exists(paths.output_dir) and not os.path.isdir(paths.output_dir):
        print(f"rnnflow: --output-dir {paths.output_dir}: is a file, not a run's output directory", file=sys.stderr)
        return EXIT_USAGE
    summary = run_state.read_summary(paths.summary)
    if summary is not None and summary.get("status") == run_state.UNREADABLE:
        print(f"status: unreadable   ({summary['error']}); the run's state is unknown: look at the newest log "
              f"in {paths.logs}, or start a new run there (the file is then kept as "
              f"{run_state.PREVIOUS_SUMMARY_FILE})")
        return run_state.EXIT_UNREADABLE
    if summary is None:
        print(f"rnnflow: no {run_state.SUMMARY_FILE} in {paths.output_dir}: no run has started there",
              file=sys.stderr)
        return EXIT_USAGE
    status = run_state.current_status(summary)
    if status != summary.get("status"):
        run_state.mark_interrupted(summary)
        summary["error"] = (f"process {summary.get('pid')} ended without finishing the run "
                            "(killed, or the machine went down)")
    summary.setdefault("output_dir", paths.output_dir)
    if status == run_state.RUNNING:
        print(f"status: running   (pid {summary.get('pid')} on {summary.get('host')}, "
              f"started {summary.get('started_at')})")
        return run_state.EXIT_RUNNING
    print(f"started: {summary.get('started_at')}" + format_summary(summary))
    return run_state.EXIT_CODES.get(status, 1)


def format_summary(summary: dict) -> str:
    lines = ["", f"status: {summary['status']}   ({summary.get('seconds', 0):.0f}s)"]
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
        if summary.get("log_file"):
            lines.append(f"full log: {summary['log_file']}")
    for label, key in (("eval metrics", "metrics"), ("test metrics", "test_metrics")):
        if summary.get(key):
            lines.append(f"{label}: " + ", ".join(
                f"{k}={_fmt(v)}" for k, v in sorted(_headline(summary, summary[key]).items())))
    trivial = summary.get("trivial_baseline")
    if trivial:
        lines.append(f"to beat ({trivial['predictor']}): " + ", ".join(
            f"{k}={_fmt(v)}" for k, v in sorted(_headline(summary, trivial["metrics"]).items())))
    resolved = (summary.get("resolved") or {}).get("values")
    if resolved:
        lines.append("auto: " + ", ".join(f"{k}={_fmt(v)}" for k, v in resolved.items()))
    if summary.get("spans") and summary["spans"] != [0]:  # 0: a data.path without a span spec
        lines.append("spans: " + ", ".join(str(span) for span in summary["spans"]))
    if (summary.get("training") or {}).get("stopped_by_budget"):
        lines.append(f"training: {summary['training']['stopped_by_budget']} (training.max_minutes)")
    decay = (summary.get("training") or {}).get("lr_decay_fitted_to_budget")
    if decay:
        lines.append(f"learning rate: decayed over {decay['fitted_steps']} of the {decay['planned_steps']} planned "
                     "steps, to end annealed within training.max_minutes")
    warm = (summary.get("training") or {}).get("warm_start") or {}
    if warm.get("mode", "none") != "none":
        lines.append(f"warm start: from {warm['from']}" if warm["used"] else
                     f"warm start: not possible ({warm['reason']}); trained from scratch")
    drift = summary.get("drift") or {}
    for name in drift.get("drifted", []):
        feature = drift["features"][name]
        lines.append(f"drift ({drift['action']}): feature '{name}': {feature['measure']} {feature['value']:.4g} "
                     f"> {feature['threshold']:g}")
    validation = summary.get("serving_validation") or {}
    if validation.get("problems") and not validation.get("skipped"):
        lines.append("serving validation: NOT servable, nothing pushed: " + "; ".join(validation["problems"]))
    elif validation.get("latency"):
        lines.append("serving validation: servable; latency " + ", ".join(
            f"{batch.replace('_', ' ')} p50 {v['p50_ms']} ms / p99 {v['p99_ms']} ms"
            for batch, v in validation["latency"].items()))
    inference = summary.get("inference")
    if inference:
        lines.append(f"inference: {inference['predictions']} predictions for {inference['rows']} rows of "
                     f"{inference['path']}" + (f" ({inference['skipped']} rows skipped: {inference['skipped_rows']})"
                                               if inference["skipped"] else "")
                     + (f" -> {inference['inference_result']}" if inference["inference_result"] else
                        " (the model was not blessed and servable: nothing scored)"))
    if summary.get("status") in ("succeeded", "not_blessed"):
        lines.append(f"blessed: {summary.get('blessed')}")
        lines.append(f"pushed model: {summary.get('pushed_model') or 'none'}")
    if summary.get("plot"):
        lines.append(f"plot: {summary['plot']}")
    lines.append(f"summary: {os.path.join(summary['output_dir'], 'run_summary.json')}")
    return "\n".join(lines)


def _headline(summary: dict, metrics: dict) -> dict:
    """The metrics the run's task puts on the console (`Task.headline_metrics`)."""
    task_type = ((summary.get("config") or {}).get("task") or {}).get("type")
    return get_task(task_type).headline_metrics(metrics) if task_type in task_names() else metrics


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
