"""Forecasting quality on ETTh1 (Zhou et al., Informer, AAAI 2021): test MSE/MAE on the
train-standardized scale used in the literature, next to persistence and seasonal naive.

    python -m benchmarks.forecast_etth1 --json out.json [--data ../shared/datasets/ett/ETTh1.csv]
        [--horizons 24 96 336] [--modes S M] [--epochs 10] [--quick]

Standard split: the first 12 months (8640 hours) train, the next 4 eval, the next 4
test; rows after 14400 are unused. Mode S forecasts OT from OT; mode M forecasts all
seven columns from all seven. Lookback 96.

It uses rnnflow's own pieces, in process: the forecast config, `series.read_series`
and `series.plan_windows` (so no window crosses a split boundary: the test split
has lookback - 1 fewer windows than in papers that let test inputs reach back into
eval), the train-only statistics Transform computes, and `build_forecaster`.
The TFX orchestration around them is timed by `benchmarks.pipeline_run`.
Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "ett", "ETTh1.csv")
COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
HOURS_PER_MONTH = 30 * 24
TRAIN_ROWS, EVAL_ROWS, TEST_ROWS = 12 * HOURS_PER_MONTH, 4 * HOURS_PER_MONTH, 4 * HOURS_PER_MONTH
LOOKBACK = 96
SEASON = 24


def build_config(data_path: str, mode: str, horizon: int, epochs: int, anchor: str = "last_value"):
    import pandas as pd

    from rnnflow.pipeline.config import load_config

    start = pd.Timestamp(pd.read_csv(data_path, nrows=1)["date"][0])
    eval_start = start + pd.Timedelta(hours=TRAIN_ROWS)
    test_start = eval_start + pd.Timedelta(hours=EVAL_ROWS)
    targets = "[OT]" if mode == "S" else f"[{', '.join(COLUMNS)}]"
    return load_config("forecast", [
        f"data.path={os.path.abspath(data_path)}", "data.time_column=date", f"data.target_columns={targets}",
        f"data.feature_columns={'[OT]' if mode == 'S' else '[]'}", "data.frequency=1h",
        f"data.split.eval_start={eval_start}", f"data.split.test_start={test_start}",
        f"task.lookback={LOOKBACK}", f"task.horizon={horizon}", "task.calendar_features=false",
        "task.loss=mse", f"task.anchor={anchor}", f"evaluation.season={SEASON}",
        "model.cell=lstm", "model.units=64", "model.dropout=0.1",
        f"training.epochs={epochs}", "training.batch_size=128", "training.learning_rate=0.001",
        "training.lr_schedule=constant",
        "training.early_stopping_patience=3",
    ])


def windows_arrays(config):
    """Standardized (train statistics) input/target arrays per split, via rnnflow's windowing."""
    from rnnflow.components.forecasting import series as series_lib

    standard_rows = TRAIN_ROWS + EVAL_ROWS + TEST_ROWS  # the rows after the 20 standard months are unused
    series = series_lib.read_series(config)
    series = dataclasses.replace(series, times=series.times[:standard_rows], values=series.values[:standard_rows])
    plan = series_lib.plan_windows(series, config)
    lookback, horizon = config.task.lookback, config.task.horizon
    # The rows train windows own: exactly Transform's train statistics.
    owned = np.concatenate([np.arange(w.start, w.start + w.owned) for w in plan["train"]])
    mean, std = series.values[owned].mean(axis=0), series.values[owned].std(axis=0)
    scaled = (series.values - mean) / std
    target_index = [series.columns.index(t) for t in series.targets]
    arrays = {}
    for split, windows in plan.items():
        starts = np.array([w.start for w in windows])
        inputs = np.stack([scaled[s:s + lookback] for s in starts]).astype(np.float32)
        targets = np.stack([scaled[s + lookback:s + lookback + horizon, target_index] for s in starts])
        arrays[split] = (inputs, targets.astype(np.float32))
    return arrays, target_index


def run_one(data_path: str, mode: str, horizon: int, epochs: int, seed: int, anchor: str) -> dict:
    import keras
    import tensorflow as tf

    from rnnflow.components.forecasting.baselines import Baselines
    from rnnflow.components.forecasting.metrics import ForecastAccumulator
    from rnnflow.models.recurrent import build_forecaster

    config = build_config(data_path, mode, horizon, epochs, anchor)
    arrays, target_index = windows_arrays(config)
    (x_train, y_train), (x_eval, y_eval), (x_test, y_test) = arrays["train"], arrays["eval"], arrays["test"]
    keras.utils.set_random_seed(seed)
    batch = config.training.batch_size
    model = build_forecaster(config.model, config.training, lookback=LOOKBACK, input_width=x_train.shape[-1],
                             horizon=horizon, target_indices=target_index, series_channels=x_train.shape[-1],
                             anchor=config.task.anchor, loss=config.task.loss, input_name="window",
                             steps_per_epoch=int(np.ceil(len(x_train) / batch)))
    train = tf.data.Dataset.from_tensor_slices(({"window": x_train}, y_train)).shuffle(
        len(x_train), seed=seed).batch(batch)
    evaluation = tf.data.Dataset.from_tensor_slices(({"window": x_eval}, y_eval)).batch(batch)
    started = time.time()
    history = model.fit(train, validation_data=evaluation, epochs=epochs, verbose=0, callbacks=[
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.training.early_stopping_patience,
                                      restore_best_weights=True)])
    train_seconds = time.time() - started
    forecast = model.predict({"window": x_test}, batch_size=512, verbose=0)

    accumulator = ForecastAccumulator(horizon, len(target_index), Baselines(season=SEASON))
    for history_window, actual, predicted in zip(x_test[..., target_index], y_test, forecast):
        accumulator.add(history_window, actual, predicted)
    metrics = accumulator.metrics()
    mse = float(np.mean((forecast - y_test) ** 2))
    persistence = np.repeat(x_test[:, -1:, target_index], horizon, axis=1)
    return {
        "mode": mode, "horizon": horizon, "lookback": LOOKBACK, "anchor": anchor,
        "windows": {split: len(a[0]) for split, a in arrays.items()},
        "test_mse": mse, "test_mae": metrics["mae"],
        "persistence_mse": float(np.mean((persistence - y_test) ** 2)),
        "persistence_mae": metrics["baseline_persistence_mae"],
        "seasonal_naive_mae": metrics["baseline_seasonal_naive_mae"],
        "skill_vs_persistence_mae": metrics["skill_over_persistence"],
        "epochs_run": len(history.epoch), "train_seconds": round(train_seconds, 1),
        "params": model.count_params(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="where to write the report")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--horizons", type=int, nargs="+", default=[24, 96, 336])
    parser.add_argument("--modes", nargs="+", choices=["S", "M"], default=["S", "M"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--anchors", nargs="+", choices=["last_value", "none"], default=["last_value"],
                        help="task.anchor values to compare")
    parser.add_argument("--quick", action="store_true", help="horizon 24, 2 epochs: a smoke run")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        print(f"ETTh1 not found at {args.data}; set RNNFLOW_DATASETS or pass --data", file=sys.stderr)
        return 2
    horizons, epochs = ([24], 2) if args.quick else (args.horizons, args.epochs)
    results = []
    for anchor in args.anchors:
        for mode in args.modes:
            for horizon in horizons:
                result = run_one(args.data, mode, horizon, epochs, args.seed, anchor)
                results.append(result)
                print(f"{anchor:10s} {mode} H={horizon:3d}: "
                      f"test MSE {result['test_mse']:.3f} MAE {result['test_mae']:.3f} | "
                      f"persistence MSE {result['persistence_mse']:.3f} MAE {result['persistence_mae']:.3f} | "
                      f"{result['epochs_run']} epochs, {result['train_seconds']:.0f}s", flush=True)
    report = {"benchmark": "etth1_forecast", "data": os.path.abspath(args.data), "epochs": epochs,
              "results": results,
              "machine": {"python": platform.python_version(), "processor": platform.processor(),
                          "cpus": os.cpu_count()}}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
