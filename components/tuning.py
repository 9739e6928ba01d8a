"""keras-tuner search over the config's model/training fields, shared by every task's tuner_fn."""

from __future__ import annotations

import logging

import keras_tuner as kt
from tfx import v1 as tfx

from rnnflow.components.progress import PROGRESS_PREFIX, TrainingProgress
from rnnflow.pipeline.config import PipelineConfig, parse_config, replace_fields

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

    def __init__(self, config: PipelineConfig, **kwargs):
        super().__init__(**kwargs)
        self._config = config

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


def tuner_result(fn_args, data_cls, build_model) -> tfx.components.TunerFnResult:
    """The TunerFnResult for a task: `data_cls(fn_args, config)` provides train()/eval()
    datasets and `build_model(config, data)` a compiled Keras model."""
    data = data_cls(fn_args, parse_config(fn_args.custom_config["config"]))
    config = data.config  # auto fields resolved

    def build(hp):
        return build_model(replace_fields(config, tuned_values(config, hp.values)), data)

    tuner = ReportingTuner(config, oracle=make_oracle(config), hypermodel=build, directory=fn_args.working_dir,
                           project_name="rnnflow", overwrite=True)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={"x": data.train(), "validation_data": data.eval(),
                    "epochs": config.tuning.epochs_per_trial, "verbose": 0,
                    "callbacks": [TrainingProgress(
                        epochs=config.tuning.epochs_per_trial, batch_size=config.training.batch_size,
                        steps_per_epoch=getattr(data, "steps_per_epoch", None),
                        interval=config.training.progress_seconds, prefix=PROGRESS_PREFIX + "trial: ")]})
