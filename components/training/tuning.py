"""keras-tuner search over the config's model/training fields, shared by every task's tuner_fn."""

from __future__ import annotations

import copy
import dataclasses
import logging

import keras
import keras_tuner as kt
from tfx import v1 as tfx

from rnnflow.components.training.progress import PROGRESS_PREFIX, TrainingProgress
from rnnflow.pipeline.config import PipelineConfig, parse_config, replace_fields, resolve_training

OBJECTIVE_DIRECTIONS = {"val_loss": "min", "val_accuracy": "max"}

# Python logging (not absl, whose level Beam resets mid-run): reaches the run log.
log = logging.getLogger(__name__)


def search_space(config: PipelineConfig) -> kt.HyperParameters:
    """keras-tuner hyperparameters named after the dotted config fields they set."""
    hp = kt.HyperParameters()
    for field, spec in config.tuning.search_space.items():
        if isinstance(spec, list):
            hp.Choice(field, spec)
        elif isinstance(spec["min"], int):
            hp.Int(field, spec["min"], spec["max"], step=spec.get("step", 1), sampling=spec["sampling"])
        else:
            hp.Float(field, spec["min"], spec["max"], step=spec.get("step"), sampling=spec["sampling"])
    return hp


def tuned_values(config: PipelineConfig, values: dict) -> dict:
    """Only the searched fields (Hyperband adds its own `tuner/...` bookkeeping values)."""
    return {k: v for k, v in values.items() if k in config.tuning.search_space}


class ReportingTuner(kt.Tuner):
    """Prints one line per finished trial: id, hyperparameters, objective.

    keras-tuner's own multi-line summaries go to the run log instead of the console.
    """

    def __init__(self, config: PipelineConfig, data, raw_training=None, **kwargs):
        # Set before keras-tuner's __init__, which builds a first model to learn the space.
        self._config = config
        # The training section as the config gave it (auto fields unresolved): a trial that
        # searches a training field resolves the others for its values, as the Trainer will.
        self._raw_training = raw_training or config.training
        self._data = data  # the base TaskData; a trial's is `data_for(data, its config)`
        super().__init__(hypermodel=self._build, **kwargs)

    def trial_config(self, values: dict) -> PipelineConfig:
        """The config a trial with these hyperparameter values trains with."""
        tuned = tuned_values(self._config, values)
        config = replace_fields(self._config, tuned)
        training_values = {k.partition(".")[2]: v for k, v in tuned.items() if k.startswith("training.")}
        if training_values:
            raw = dataclasses.replace(self._raw_training, **training_values)
            training, _ = resolve_training(raw, self._data.train_examples(config))
            config = dataclasses.replace(config, training=training)
        return config

    def _build(self, hp):
        """The model of a trial: its data's `build_model` with its values."""
        config = self.trial_config(hp.values)
        return data_for(self._data, config).build_model(config)

    def run_trial(self, trial, *args, **fit_kwargs):
        """One trial with its own training.* values: its batch size (its datasets), epochs,
        early-stopping patience and seed, as the Trainer would train with them."""
        config = self.trial_config(trial.hyperparameters.values)
        searched = {k for k in self._config.tuning.search_space if k.startswith("training.")}
        data = data_for(self._data, config)
        fit_kwargs.update(x=data.train(), validation_data=data.eval())
        if "training.seed" in searched:
            keras.utils.set_random_seed(config.training.seed)
        if "training.epochs" in searched:
            fit_kwargs["epochs"] = config.training.epochs
        if "training.early_stopping_patience" in searched:
            fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", []), keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.training.early_stopping_patience, restore_best_weights=True)]
        if config.training.ema_momentum:  # each trial scored on its averaged weights, as the Trainer scores
            fit_kwargs["callbacks"] = [keras.callbacks.SwapEMAWeights(), *fit_kwargs.get("callbacks", [])]
        return super().run_trial(trial, *args, **fit_kwargs)

    def search_space_summary(self, extended=False):
        log.info("Search space: %s", self.oracle.hyperparameters.get_config())

    def results_summary(self, num_trials=10):
        for trial in self.oracle.get_best_trials(num_trials):
            log.info("Trial %s: %s score=%s", trial.trial_id, trial.hyperparameters.values, trial.score)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        finished = self.oracle.trials[trial.trial_id]
        score = "n/a" if finished.score is None else f"{finished.score:.4f}"
        values = ", ".join(f"{k}={v}" for k, v in tuned_values(self._config, finished.hyperparameters.values).items())
        print(f"    trial {trial.trial_id}: {values} -> {self.oracle.objective.name}={score}", flush=True)


def make_oracle(config: PipelineConfig):
    tuning = config.tuning
    objective = kt.Objective(tuning.objective, OBJECTIVE_DIRECTIONS[tuning.objective])
    common = dict(objective=objective, hyperparameters=search_space(config), seed=config.training.seed,
                  tune_new_entries=False, allow_new_entries=False)
    if tuning.algorithm == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max(2, tuning.epochs_per_trial), hyperband_iterations=1,
                                          **common)
    if tuning.algorithm == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=tuning.max_trials, **common)
    return kt.oracles.RandomSearchOracle(max_trials=tuning.max_trials, **common)


def data_for(data, config: PipelineConfig):
    """`data` (a TaskData) for a trial's `config`: the same transformed examples, batched and
    scheduled by the trial's training fields."""
    if config.training == data.config.training:
        return data
    trial = copy.copy(data)
    trial.config = config
    examples = data.train_examples(config)
    trial.steps_per_epoch = max(1, -(-examples // config.training.batch_size))
    return trial


def tuner_result(fn_args, data_cls) -> tfx.components.TunerFnResult:
    """The TunerFnResult for a task: `data_cls(fn_args, config)` provides train()/eval()
    datasets and `build_model(config)` a compiled Keras model."""
    data = data_cls(fn_args, parse_config(fn_args.custom_config["config"]))
    config = data.config  # auto fields resolved

    raw_training = parse_config(fn_args.custom_config["config"]).training
    tuner = ReportingTuner(config, data, raw_training=raw_training, oracle=make_oracle(config),
                           directory=fn_args.working_dir, project_name="rnnflow", overwrite=True)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={"x": data.train(), "validation_data": data.eval(),
                    "epochs": config.tuning.epochs_per_trial, "verbose": 0,
                    "callbacks": [TrainingProgress(
                        epochs=config.tuning.epochs_per_trial, batch_size=config.training.batch_size,
                        steps_per_epoch=getattr(data, "steps_per_epoch", None),
                        interval=config.training.progress_seconds, prefix=PROGRESS_PREFIX + "trial: ")]})
