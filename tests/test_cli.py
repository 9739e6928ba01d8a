"""The human summary printed at the end of `rnnflow run`."""

from rnnflow.pipeline.cli import format_summary


def test_summary_shows_status_metrics_and_pushed_model():
    text = format_summary({"status": "succeeded", "seconds": 12.0, "output_dir": "/out", "blessed": True,
                           "pushed_model": "/out/serving/m/1", "metrics": {
                               "accuracy": 0.75, "precision": float("nan"), "auc[pos]": 0.5}})
    assert "status: succeeded" in text
    assert "accuracy=0.75" in text and "precision=n/a" in text
    assert "auc[pos]" not in text  # per-class values stay in run_summary.json
    assert "pushed model: /out/serving/m/1" in text and "/out/run_summary.json" in text


def test_failed_summary_points_at_the_error_and_log():
    text = format_summary({"status": "failed", "seconds": 3.0, "output_dir": "/out", "error": "DataError: x",
                           "log_file": "/out/logs/run.log", "metrics": {}})
    assert "error: DataError: x" in text and "full log: /out/logs/run.log" in text
    assert "pushed model" not in text
