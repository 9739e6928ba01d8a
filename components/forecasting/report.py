"""ForecastReport: the held-out test split, evaluated once, after the Evaluator.

The eval split chooses the epoch and the blessing; the test split is touched
only here, so its numbers are an honest estimate. Writes `test_metrics.json`
(same metric names as the eval metrics) and `forecast_test.png`.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints at runtime.
import os

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, standard_artifacts
from tfx.utils import path_utils

from rnnflow.components.common import run_facts
from rnnflow.components.forecasting.features import window_feature_spec
from rnnflow.components.forecasting.baselines import Baselines, baselines_from, persistence_forecast
from rnnflow.components.forecasting.metrics import ForecastAccumulator, window_arrays
from rnnflow.components.forecasting.schema import EVAL_SIGNATURE, FORECAST, WINDOW_END_TIME
from rnnflow.components.ingest.input_report import read_model_facts

METRICS_FILE = "test_metrics.json"
PLOT_FILE = "forecast_test.png"
_BATCH = 256


class ForecastTestReport(artifact.Artifact):
    """Test-split metrics and the forecast plot."""
    TYPE_NAME = "rnnflow.ForecastTestReport"


def evaluate_split(saved_model_dir: str, files: list[str], *, columns: list[str], targets: list[str],
                   lookback: int, horizon: int, baselines: Baselines) -> dict:
    """Runs the exported model on windowed examples; returns metrics (the model's and the
    baselines') and the arrays to plot."""
    model = tf.saved_model.load(saved_model_dir)
    serve = model.signatures[EVAL_SIGNATURE]
    spec = window_feature_spec(columns, lookback, targets=targets, horizon=horizon)
    accumulator = ForecastAccumulator(horizon, len(targets), baselines)
    end_times, histories, actuals, forecasts = [], [], [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH):
        parsed = {k: v.numpy() for k, v in tf.io.parse_example(batch, spec).items()}
        forecast = serve(examples=batch)[FORECAST].numpy()
        for i in range(len(forecast)):
            history, actual = window_arrays({k: v[i] for k, v in parsed.items()}, targets)
            accumulator.add(history, actual, forecast[i], int(parsed[WINDOW_END_TIME][i]))
            histories.append(history)
            actuals.append(actual)
        end_times.append(parsed[WINDOW_END_TIME])
        forecasts.append(forecast)
    order = np.argsort(np.concatenate(end_times)) if end_times else np.array([], int)
    return {
        "metrics": accumulator.metrics(),
        "windows": len(order),
        "end_times": np.concatenate(end_times)[order] if end_times else np.array([]),
        "history": np.stack(histories)[order] if histories else None,
        "actual": np.stack(actuals)[order] if actuals else None,
        "forecast": np.concatenate(forecasts)[order] if forecasts else None,
        "linear": baselines.linear,
    }


def plot_forecasts(result: dict, *, target: str, target_index: int, frequency_seconds: int, path: str) -> None:
    """Top: the series over the test split with the model's and persistence's forecasts
    made `horizon` steps earlier. Bottom: MAE per horizon step; one window in full."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    actual, forecast, history = (result[k][..., target_index] for k in ("actual", "forecast", "history"))
    horizon = actual.shape[1]
    step = np.timedelta64(frequency_seconds, "s")
    end = result["end_times"].astype("datetime64[s]")
    lead = horizon  # the hardest step
    at = end + lead * step
    persistence = history[:, -1]
    model_mae = np.abs(actual - forecast).mean(axis=0)
    persistence_mae = np.abs(actual - persistence[:, None]).mean(axis=0)
    # The linear baseline (when the model has one), the strongest simple peer on most series.
    linear = (history[:, -1:] + (history - history[:, -1:]) @ result["linear"]
              if result.get("linear") is not None else None)
    linear_mae = np.abs(actual - linear).mean(axis=0) if linear is not None else None

    figure = plt.figure(figsize=(13, 8), constrained_layout=True)
    grid = figure.add_gridspec(2, 2)
    top = figure.add_subplot(grid[0, :])
    top.plot(at, actual[:, lead - 1], color="black", linewidth=1.2, label="actual")
    top.plot(at, forecast[:, lead - 1], color="tab:blue", linewidth=1.2, label=f"model, {lead} steps ahead")
    top.plot(at, persistence, color="tab:orange", linewidth=1, alpha=0.8, label=f"persistence, {lead} steps ahead")
    if linear is not None:
        top.plot(at, linear[:, lead - 1], color="tab:green", linewidth=1, alpha=0.8, label=f"linear, {lead} steps ahead")
    top.set_title(f"{target}, test split: forecasts made {lead} steps earlier "
                  f"(MAE model {model_mae[lead - 1]:.3g}, persistence {persistence_mae[lead - 1]:.3g})")
    top.legend(loc="upper left")

    by_step = figure.add_subplot(grid[1, 0])
    steps = np.arange(1, horizon + 1)
    by_step.plot(steps, model_mae, marker="o", color="tab:blue", label="model")
    by_step.plot(steps, persistence_mae, marker="o", color="tab:orange", label="persistence")
    if linear_mae is not None:
        by_step.plot(steps, linear_mae, marker="o", color="tab:green", label="linear")
    by_step.set_xlabel("horizon step")
    by_step.set_ylabel(f"MAE ({target})")
    by_step.set_title(f"Test MAE by horizon step ({result['windows']} windows)")
    by_step.legend()

    example = figure.add_subplot(grid[1, 1])
    i = int(np.argmax(np.abs(actual[:, -1] - persistence)))  # a window where persistence fails
    past = end[i] - np.arange(history.shape[1] - 1, -1, -1) * step
    future = end[i] + steps * step
    example.plot(past, history[i], color="gray", label="lookback")
    example.plot(future, actual[i], color="black", marker=".", label="actual")
    example.plot(future, forecast[i], color="tab:blue", marker=".", label="model")
    example.plot(future, persistence_forecast(history[i][:, None], horizon)[:, 0], color="tab:orange",
                 linestyle="--", label="persistence")
    if linear is not None:
        example.plot(future, linear[i], color="tab:green", linestyle="--", label="linear")
    example.set_title(f"One window (ending {end[i]})")
    example.legend(fontsize="small")
    figure.autofmt_xdate()
    figure.savefig(path, dpi=90)
    plt.close(figure)


@component
def ForecastReport(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    report: OutputArtifact[ForecastTestReport],
):
    """Test-split metrics (with baselines) and a forecast plot for the trained model, run
    after the Evaluator has decided the blessing on the eval split."""
    config, input_report = read_model_facts(model.uri)
    details, task = input_report.details, config.task
    files = tf.io.gfile.glob(os.path.join(examples.uri, "Split-test", "*"))
    result = evaluate_split(path_utils.serving_model_path(model.uri), files, columns=details["columns"],
                            targets=details["targets"], lookback=task.lookback, horizon=task.horizon,
                            baselines=baselines_from(details))
    run_facts.write_json(os.path.join(report.uri, METRICS_FILE), {
        "metrics": result["metrics"], "windows": result["windows"],
        "blessed": bool(blessing.get_int_custom_property("blessed"))})
    if result["windows"]:
        plot_forecasts(result, target=details["targets"][0], target_index=0,
                       frequency_seconds=details["frequency_seconds"], path=os.path.join(report.uri, PLOT_FILE))


def read_report(uri: str) -> dict:
    """The run summary's view of a ForecastReport output."""
    test = run_facts.read_json(os.path.join(uri, METRICS_FILE))
    plot = os.path.join(uri, PLOT_FILE)
    return {"test_metrics": test["metrics"], "test_windows": test["windows"],
            "plot": plot if tf.io.gfile.exists(plot) else None}

