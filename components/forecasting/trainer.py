"""Trainer run_fn and Tuner tuner_fn for forecasting (Keras 3)."""

from __future__ import annotations

import keras

from rnnflow.components.common import run_facts
from rnnflow.components.forecasting import export
from rnnflow.components.forecasting.baselines import fit_linear, write_linear
from rnnflow.components.forecasting.preprocessing import input_width
from rnnflow.components.forecasting.schema import FORECAST, TARGET, TARGET_MEAN, TARGET_STD, WINDOW
from rnnflow.components.training.trainer import TaskData, train_and_export, transformed_dataset
from rnnflow.models.recurrent import build_forecaster
from rnnflow.models.segment_forecaster import build_segment_forecaster, combined_with_linear
from rnnflow.pipeline.config import PipelineConfig


class TrainingData(TaskData):
    """Transformed train/eval windows as ({window}, target) batches, in normalized units."""

    def prepare(self, config: PipelineConfig) -> None:
        self.input_width = input_width(self.details, config.task.calendar_features)
        # The targets' positions among the window's columns (the model, the linear map, the combination).
        self.target_indices = [self.details["columns"].index(t) for t in self.details["targets"]]
        self._linear_fitted, self._linear = False, None
        self._served = (None, None)  # (trained model, its served combination)

    def train_examples(self, config: PipelineConfig) -> int:
        return self.details["splits"]["train"]["windows"]

    def compatibility(self) -> dict:
        """What a warm start's base model must share: the input and target columns and the step."""
        return {key: self.details[key] for key in ("columns", "targets", "frequency_seconds")}

    def dataset(self, files, shuffle: bool):
        dataset = transformed_dataset(self.fn_args, files, self.config, self.tf_transform_output, TARGET,
                                      shuffle)
        return dataset.map(lambda features, target: ({WINDOW: features[WINDOW]}, target))

    def build_model(self, config: PipelineConfig):
        task, columns, targets = config.task, self.details["columns"], self.target_indices
        if task.encoder == "segments":
            return build_segment_forecaster(config.model, config.training, lookback=task.lookback,
                                            input_width=self.input_width, horizon=task.horizon,
                                            target_indices=targets, normalization=task.anchor,
                                            segment=task.segment_length, loss=task.loss, input_name=WINDOW,
                                            steps_per_epoch=self.steps_per_epoch, linear_skip=task.linear_skip,
                                            linear_weights=self.linear_map() if task.linear_skip else None)
        return build_forecaster(config.model, config.training, lookback=task.lookback, input_width=self.input_width,
                                horizon=task.horizon, target_indices=targets,
                                series_channels=len(columns), anchor=task.anchor, loss=task.loss,
                                input_name=WINDOW, steps_per_epoch=self.steps_per_epoch)

    def served(self, model):
        """The forecaster that is exported: with `task.linear_combination`, the mean of `model`'s
        forecast and the linear baseline's (`combined_with_linear`), else `model` itself."""
        weights = self.linear_map() if self.config.task.linear_combination else None
        if weights is None:
            return model
        if self._served[0] is not model:
            self._served = (model, combined_with_linear(model, weights, target_indices=self.target_indices,
                                                        input_name=WINDOW))
        return self._served[1]

    def reference_outputs(self, model, transformed) -> dict:
        """The served forecast for a transformed batch, in the targets' original units (the model
        itself predicts z-scores of the train split's statistics)."""
        normalized = self.served(model)({WINDOW: transformed[WINDOW]}, training=False)
        scale, location = transformed[TARGET_STD][:, None, :], transformed[TARGET_MEAN][:, None, :]
        return {FORECAST: keras.ops.cast(normalized, scale.dtype) * scale + location}

    def export(self, model, serving_dir: str) -> None:
        export.export_serving_model(self.served(model), self.tf_transform_output, config=self.config,
                                    details=self.details, export_dir=serving_dir)
        self.fit_linear_baseline(serving_dir)

    def linear_map(self):
        """The linear baseline's map (`baselines.fit_linear`) on this run's train windows, fitted
        once: the baseline the Evaluator scores, the linear half of the served combination
        (`task.linear_combination`) and the linear path's start (`task.linear_skip`)."""
        if not self._linear_fitted:
            batches = ((features[WINDOW].numpy()[:, :, self.target_indices], target.numpy())
                       for features, target in self.dataset(self.fn_args.train_files, shuffle=False))
            self._linear, self._linear_fitted = fit_linear(batches), True
        return self._linear

    def fit_linear_baseline(self, serving_dir: str) -> None:
        """The linear baseline beside the model; the facts name it, so the Evaluator and the test
        report score it on the same windows."""
        weights = self.linear_map()
        if weights is not None:
            path = run_facts.beside_model(serving_dir, run_facts.LINEAR_BASELINE_FILE)
            write_linear(path, weights)
            self.input_report["details"]["linear_baseline"] = path


def run_fn(fn_args) -> None:
    """Trains on normalized windows with early stopping on eval, exports a model that
    answers in original units."""
    train_and_export(fn_args, TrainingData)


def tuner_fn(fn_args):
    from rnnflow.components.training.tuning import tuner_result

    return tuner_result(fn_args, TrainingData)
