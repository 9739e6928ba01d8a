"""Long-horizon forecasting on any ETT-style CSV (ETTh1, ETTh2, ...: a `date` column and numeric
columns, `OT` the target in mode S), side by side with the in-run linear baseline and the
published numbers (`../shared/REFERENCES.md` section 4).

    python -m benchmarks.forecast_ett --json out.json [--data ../shared/datasets/ett/ETTh1.csv]
        [--horizons 96 192 336 720] [--modes M S] [--minutes M] [--set task.lookback=336 ...]

The literature's split and scaling (Informer / Autoformer / DLinear code): 12 months train,
4 eval, 4 test of 30-day months; eval and test windows start `lookback` rows before their
border, so their inputs reach back into the previous split; every split is standardized with
the train rows' mean and std and the metrics are on that scale. The literature's test loader
drops the last incomplete batch of 32 (`drop_last=True`): here every test window is scored,
and how many that loader would drop is reported (`windows_drop_last_drops`).

Peers, trained on the same windows:
- the forecaster the built-in `forecast` config builds (`rnnflow.models`: the config's
  encoder, cell, units, anchor, loss and training settings, `--set` overrides as on the CLI),
  early-stopped on eval, within the config's `training.max_minutes` of training per horizon
  (`--minutes` overrides it), scored as the pipeline
  serves it (with `task.linear_combination`, auto on with segments: the mean of the model's and
  the linear map's forecasts; the model alone is reported too);
- the pipeline's own linear baseline (`baselines.fit_linear`: NLinear by least squares, one map
  shared by the channels), which every forecasting run also scores.
Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "ett", "ETTh1.csv")
MONTH = 30 * 24
TRAIN_END, EVAL_END, TEST_END = 12 * MONTH, 16 * MONTH, 20 * MONTH
DROP_LAST_BATCH = 32
# REFERENCES.md section 4: test MSE, mode M.
PUBLISHED = {
    "ETTh1": {"DLinear (L=336)": {96: 0.375, 192: 0.405, 336: 0.439, 720: 0.472},
              "PatchTST/64 (L=512)": {96: 0.370, 192: 0.413, 336: 0.422, 720: 0.447},
              "SegRNN (L=720)": {96: 0.341}},
    "ETTh2": {"DLinear (L=336)": {96: 0.289, 192: 0.383, 336: 0.448, 720: 0.605},
              "PatchTST/64 (L=512)": {96: 0.274, 192: 0.341, 336: 0.329, 720: 0.379},
              "SegRNN (L=720)": {96: 0.263}},
}
# What the benchmark sets on top of the built-in config besides its data: nothing (the loss is
# the config's, MAE; the metric is the literature's MSE on standardized values). `--set
# task.loss=mse` trains on the metric instead.
BENCHMARK_SETTINGS: list[str] = []


def load_columns(path: str) -> tuple[list[str], np.ndarray, int]:
    """(value columns, their first 20 months of rows, the step in seconds)."""
    import pandas as pd

    frame = pd.read_csv(path)
    columns = [c for c in frame.columns if c != "date"]
    step = int(pd.to_datetime(frame["date"]).diff().dropna().mode()[0].total_seconds())
    return columns, frame[columns].to_numpy(np.float64)[:TEST_END], step


def split_windows(values: np.ndarray, lookback: int, horizon: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Standardized (train rows' statistics) windows of the literature's three splits."""
    mean, std = values[:TRAIN_END].mean(axis=0), values[:TRAIN_END].std(axis=0)
    scaled = ((values - mean) / std).astype(np.float32)
    borders = {"train": (0, TRAIN_END), "eval": (TRAIN_END - lookback, EVAL_END),
               "test": (EVAL_END - lookback, TEST_END)}
    result = {}
    for split, (first, end) in borders.items():
        starts = np.arange(first, end - lookback - horizon + 1)
        inputs = np.stack([scaled[s:s + lookback] for s in starts])
        targets = np.stack([scaled[s + lookback:s + lookback + horizon] for s in starts])
        result[split] = (inputs, targets)
    return result


def run_one(data_path: str, mode: str, horizon: int, overrides: list[str], minutes: float | None, seed: int) -> dict:
    import keras
    import tensorflow as tf

    from rnnflow.components.forecasting.baselines import fit_linear
    from rnnflow.components.training.progress import TrainingProgress
    from rnnflow.components.training.trainer import fitted_schedule
    from rnnflow.models.recurrent import build_forecaster
    from rnnflow.models.segment_forecaster import build_segment_forecaster, combined_with_linear
    from rnnflow.components.forecasting.schema import auto_task_fields
    from rnnflow.pipeline.config import load_config, replace_fields, resolve_training

    columns, values, step = load_columns(data_path)
    if mode == "S":
        columns, values = ["OT"], values[:, [columns.index("OT")]]
    config = load_config("forecast", [f"data.path={os.path.abspath(data_path)}", f"data.target_columns=[{', '.join(columns)}]",
                                      "task.calendar_features=false", f"task.horizon={horizon}",
                                      *BENCHMARK_SETTINGS, *overrides])
    # The `auto` task fields (lookback, encoder, anchor) as the pipeline resolves them on the train rows.
    config = replace_fields(config, auto_task_fields(config.task, step, TRAIN_END))
    task = config.task
    windows = split_windows(values, task.lookback, horizon)
    (x_train, y_train), (x_eval, y_eval), (x_test, y_test) = (windows[s] for s in ("train", "eval", "test"))
    training, _ = resolve_training(config.training, len(x_train))
    minutes = training.max_minutes if minutes is None else minutes
    steps = int(np.ceil(len(x_train) / training.batch_size))
    targets = list(range(len(columns)))

    started = time.time()
    weights = fit_linear((x_train[i:i + 1024], y_train[i:i + 1024]) for i in range(0, len(x_train), 1024))
    linear = x_test[:, -1:, :] + np.einsum("blc,lh->bhc", x_test - x_test[:, -1:, :], weights)
    linear_seconds = time.time() - started

    keras.utils.set_random_seed(seed)
    common = dict(lookback=task.lookback, input_width=len(columns), horizon=horizon, target_indices=targets,
                  loss=task.loss, input_name="window", steps_per_epoch=steps)
    if task.encoder == "segments":
        model = build_segment_forecaster(config.model, training, normalization=task.anchor,
                                         segment=task.segment_length, linear_skip=task.linear_skip,
                                         linear_weights=weights if task.linear_skip else None, **common)
    else:
        model = build_forecaster(config.model, training, series_channels=len(columns), anchor=task.anchor, **common)
    train = tf.data.Dataset.from_tensor_slices(({"window": x_train}, y_train)).shuffle(
        len(x_train), seed=seed).batch(training.batch_size)
    evaluation = tf.data.Dataset.from_tensor_slices(({"window": x_eval}, y_eval)).batch(512)
    # The Trainer's budget: training stops at the step that crosses it, and a cosine decay is
    # fitted to the steps the budget leaves.
    budget = TrainingProgress(epochs=training.epochs, batch_size=training.batch_size, steps_per_epoch=steps,
                              interval=60, max_seconds=minutes * 60 if minutes else None, schedule=fitted_schedule(model.optimizer),
                              echo=lambda line: print(f"  {mode} {horizon}: {line}", file=sys.stderr, flush=True))
    started = time.time()
    history = model.fit(train, validation_data=evaluation, epochs=training.epochs, verbose=0, callbacks=[
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=training.early_stopping_patience,
                                      restore_best_weights=True), budget])
    train_seconds = time.time() - started
    alone = model.predict({"window": x_test}, batch_size=512, verbose=0)
    # What the pipeline serves: with task.linear_combination, the model combined with the same
    # linear map by the Trainer's own `combined_with_linear`, else the model.
    forecast = combined_with_linear(model, weights, target_indices=targets, input_name="window").predict(
        {"window": x_test}, batch_size=512, verbose=0) if task.linear_combination else alone
    persistence = np.repeat(x_test[:, -1:, :], horizon, axis=1)
    mse = lambda f: float(np.mean((f - y_test) ** 2))  # noqa: E731
    mae = lambda f: float(np.mean(np.abs(f - y_test)))  # noqa: E731
    return {
        "mode": mode, "horizon": horizon, "lookback": task.lookback, "encoder": task.encoder,
        "anchor": task.anchor, "linear_skip": task.linear_skip, "linear_combination": task.linear_combination,
        "cell": config.model.cell, "units": config.model.units,
        "batch_size": training.batch_size, "learning_rate": training.learning_rate,
        "lr_schedule": training.lr_schedule, "lr_decay_fitted_to_budget": budget.lr_decay,
        "training_budget_minutes": minutes, "stopped_by_budget": budget.stopped_by_budget,
        "windows": {s: len(w[0]) for s, w in windows.items()},
        "windows_drop_last_drops": len(x_test) % DROP_LAST_BATCH,
        "test_mse": mse(forecast), "test_mae": mae(forecast),
        "linear_mse": mse(linear), "linear_mae": mae(linear),
        "model_alone_mse": mse(alone), "model_alone_mae": mae(alone),
        # How alike the model's and the linear map's errors are (1: averaging gains nothing).
        "error_correlation_with_linear": float(np.corrcoef((alone - y_test).ravel(), (linear - y_test).ravel())[0, 1]),
        "persistence_mse": mse(persistence), "persistence_mae": mae(persistence),
        "epochs_run": len(history.epoch), "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
        "train_seconds": round(train_seconds, 1), "linear_seconds": round(linear_seconds, 2),
        "params": model.count_params(), "overrides": overrides,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="where to write the report")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    parser.add_argument("--modes", nargs="+", choices=["S", "M"], default=["M", "S"])
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget per horizon (default: the config's training.max_minutes)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config override on top of the built-in forecast config (repeatable)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        print(f"{args.data} not found; set RNNFLOW_DATASETS or pass --data", file=sys.stderr)
        return 2
    name = os.path.splitext(os.path.basename(args.data))[0]
    published = PUBLISHED.get(name, {})
    results = []
    for mode in args.modes:
        for horizon in args.horizons:
            result = run_one(args.data, mode, horizon, args.overrides, args.minutes, args.seed)
            results.append(result)
            peers = ", ".join(f"{k} {v[horizon]:.3f}" for k, v in published.items() if horizon in v and mode == "M")
            print(f"{name} {mode} H={horizon:3d} L={result['lookback']}: rnnflow MSE {result['test_mse']:.3f} "
                  f"MAE {result['test_mae']:.3f} (the model alone {result['model_alone_mse']:.3f}) | in-run linear MSE "
                  f"{result['linear_mse']:.3f} | persistence "
                  f"{result['persistence_mse']:.3f} | published: {peers or 'n/a'} | {result['epochs_run']} epochs "
                  f"{result['train_seconds']:.0f}s", flush=True)
    report = {"benchmark": "ett_forecast", "data": os.path.abspath(args.data), "dataset": name,
              "published_mse_mode_M": published, "results": results,
              "machine": {"python": platform.python_version(), "processor": platform.processor(),
                          "cpus": os.cpu_count()}}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
