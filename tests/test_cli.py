"""The human summary printed at the end of `rnnflow run`."""

from rnnflow.pipeline.cli import format_summary


def test_summary_shows_status_metrics_and_pushed_model():
    text = format_summary({"status": "succeeded", "seconds": 12.0, "output_dir": "/out", "blessed": True,
                           "pushed_model": "/out/serving/m/1", "config": {"task": {"type": "text_classification"}},
                           "metrics": {"accuracy": 0.75, "precision": float("nan"), "auc[pos]": 0.5}})
    assert "status: succeeded" in text
    assert "accuracy=0.75" in text and "precision=n/a" in text
    assert "auc[pos]" not in text  # per-class values stay in run_summary.json (the task's headline)
    assert "pushed model: /out/serving/m/1" in text and "/out/run_summary.json" in text


def test_the_console_shows_each_tasks_headline_metrics():
    forecast = format_summary({"status": "succeeded", "output_dir": "/out", "config": {"task": {"type": "forecasting"}},
                               "metrics": {"mae": 1.5, "mae_h3": 2.0}})
    assert "mae=1.5" in forecast and "mae_h3" not in forecast
    unknown = format_summary({"status": "failed", "output_dir": "/out", "metrics": {"mae_h3": 2.0}})
    assert "mae_h3=2" in unknown  # no task in the summary: every metric is shown


def test_failed_summary_points_at_the_error_and_log():
    text = format_summary({"status": "failed", "seconds": 3.0, "output_dir": "/out", "error": "DataError: x",
                           "log_file": "/out/logs/run.log", "metrics": {}})
    assert "error: DataError: x" in text and "full log: /out/logs/run.log" in text
    assert "pushed model" not in text


def test_task_verbs_come_from_the_tasks_and_the_generic_cli_names_none():
    import inspect

    from rnnflow.components.tasks import get_task, task_names
    from rnnflow.pipeline import cli

    verbs = {c.name for t in task_names() for c in get_task(t).commands}
    assert "generate" in verbs  # the language model's
    parser_verbs = set(cli.build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert verbs <= parser_verbs
    source = inspect.getsource(cli)
    assert not [v for v in verbs if f'add_parser("{v}"' in source or f'== "{v}"' in source]
