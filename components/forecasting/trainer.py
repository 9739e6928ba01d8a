"""Trainer run_fn and Tuner tuner_fn for forecasting (Keras 3)."""

from __future__ import annotations

import math

import tensorflow_transform as tft

from rnnflow.components.forecasting import export
from rnnflow.components.forecasting.preprocessing import input_width
from rnnflow.components.forecasting.task import FORECAST, TARGET, TARGET_MEAN, TARGET_STD, WINDOW
from rnnflow.components.input_report import read_transform_report, write_model_facts
from rnnflow.components.training import (
    config_with_hyperparameters, distribution_strategy, fit, history_summary, output_dirs, resolve_auto,
    save_weights, serving_reference, transformed_dataset, write_training_summary)
from rnnflow.models.recurrent import build_forecaster, describe_model
from rnnflow.pipeline.config import PipelineConfig


class ForecastData:
    """Transformed train/eval windows as ({window}, target) batches, in normalized units."""

    def __init__(self, fn_args, config: PipelineConfig):
        self.tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
        self.input_report = read_transform_report(fn_args.transform_graph_path)
        self.details = self.input_report["details"]
        self.input_width = input_width(self.details, config.task.calendar_features)
        train_windows = self.details["splits"]["train"]["windows"]
        self.config, self.resolved = resolve_auto(fn_args, config, train_windows)
        self.steps_per_epoch = max(1, math.ceil(train_windows / self.config.training.batch_size))
        self._fn_args = fn_args

    def compatibility(self) -> dict:
        """What a warm start's base model must share: the input and target columns and the step."""
        return {key: self.details[key] for key in ("columns", "targets", "frequency_seconds")}

    def dataset(self, files, shuffle: bool):
        dataset = transformed_dataset(self._fn_args, files, self.config, self.tf_transform_output, TARGET,
                                      shuffle)
        return dataset.map(lambda features, target: ({WINDOW: features[WINDOW]}, target))

    def train(self):
        return self.dataset(self._fn_args.train_files, shuffle=True)

    def eval(self):
        return self.dataset(self._fn_args.eval_files, shuffle=False)


def build_model(config: PipelineConfig, data: ForecastData):
    task, columns = config.task, data.details["columns"]
    return build_forecaster(config.model, config.training, lookback=task.lookback, input_width=data.input_width,
                            horizon=task.horizon, target_indices=[columns.index(t) for t in data.details["targets"]],
                            series_channels=len(columns), anchor=task.anchor, loss=task.loss,
                            input_name=WINDOW, steps_per_epoch=data.steps_per_epoch)


def reference_outputs(model, transformed) -> dict:
    """The in-memory model's forecast for a transformed batch, in the targets' original units
    (the model itself predicts z-scores of the train split's statistics)."""
    normalized = model({WINDOW: transformed[WINDOW]}, training=False).numpy()
    scale, location = transformed[TARGET_STD].numpy()[:, None, :], transformed[TARGET_MEAN].numpy()[:, None, :]
    return {FORECAST: normalized * scale + location}


def run_fn(fn_args) -> None:
    """Trains on normalized windows with early stopping on eval, exports a model that
    answers in original units."""
    distribution_strategy()  # before any TensorFlow op (multi-worker collectives need it)
    tuned, hyperparameters = config_with_hyperparameters(fn_args)
    data = ForecastData(fn_args, tuned)
    config = data.config  # auto fields resolved
    model, history, warm = fit(config, fn_args, lambda: build_model(config, data), data)
    serving_dir, run_dir = output_dirs(fn_args)
    export.export_serving_model(model, data.tf_transform_output, config=config, details=data.details,
                                export_dir=serving_dir)
    save_weights(model, serving_dir)
    serving_reference(model, data.tf_transform_output, fn_args.transform_graph_path, serving_dir, reference_outputs)
    write_model_facts(serving_dir, config.to_dict(), data.input_report, data.compatibility())
    write_training_summary(run_dir, {
        **history_summary(history), "warm_start": warm, "model": describe_model(model, config.model),
        "hyperparameters": hyperparameters, "resolved": data.resolved})


def tuner_fn(fn_args):
    from rnnflow.components.tuning import tuner_result

    return tuner_result(fn_args, ForecastData, build_model)
