"""What the task notebooks call, so that no notebook re-derives the pipeline's arguments.

`FinishedRun(output_dir)` reads a run's summary and artifacts: its config with the `auto` fields
as the run resolved them, the task, Transform's graph and transformed examples, the Trainer's
data (`task_data`: the task's own `TaskData`, exactly as its run_fn builds it) and model builder
(`build_model`), and the pushed model (`open_pushed_model`: rnnflow's serving client).
`fit_with_live_loss` trains a model briefly in the notebook, redrawing the loss after every epoch;
`training_curves` draws a finished run's loss curves; `task_figure` is the run's figure as the
pipeline writes it next to run_summary.json.
"""

from __future__ import annotations

import glob
import os
import tempfile
from typing import Any

import keras

from rnnflow.components.common import run_facts
from rnnflow.components.tasks import get_task
from rnnflow.pipeline.config import parse_config, replace_fields

SUMMARY_FILE = run_facts.RUN_SUMMARY_FILE


class FinishedRun:
    def __init__(self, output_dir: str):
        self.output_dir = os.path.abspath(output_dir)
        path = os.path.join(self.output_dir, SUMMARY_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no run summary; run `rnnflow run --config ... --output-dir "
                                    f"{output_dir}` first")
        self.summary: dict[str, Any] = run_facts.read_json(path)
        config = parse_config(self.summary["config"])
        resolved = (self.summary.get("resolved") or {}).get("values") or {}
        self.config = replace_fields(config, resolved) if resolved else config
        self.task = get_task(self.config.task_type)

    def artifact(self, component: str, output: str) -> str:
        """The newest artifact directory of a component's output in this run's pipeline root."""
        found = glob.glob(os.path.join(self.output_dir, "pipeline_root", component, output, "*"))
        if not found:
            raise FileNotFoundError(f"{self.output_dir}: no {component} {output} in the pipeline root")
        return max(found, key=lambda p: int(os.path.basename(p)) if os.path.basename(p).isdigit() else -1)

    def transformed_files(self, split: str) -> list[str]:
        return sorted(glob.glob(os.path.join(self.artifact("Transform", "transformed_examples"), f"Split-{split}", "*")))

    def task_data(self):
        """The task's TaskData on this run's transformed examples, as its Trainer builds it."""
        from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
        from tfx_bsl.public import tfxio

        def dataset_factory(files, options, schema):
            return tfxio.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)

        scratch = tempfile.mkdtemp(prefix="rnnflow-notebook-")
        fn_args = FnArgs(
            transform_graph_path=self.artifact("Transform", "transform_graph"),
            train_files=self.transformed_files("train"), eval_files=self.transformed_files("eval"),
            data_accessor=DataAccessor(tf_dataset_factory=dataset_factory, record_batch_factory=None,
                                       data_view_decode_fn=None),
            serving_model_dir=os.path.join(scratch, "serving"), model_run_dir=os.path.join(scratch, "run"),
            custom_config={"config": self.config.to_dict()}, hyperparameters=None, base_model=None)
        return self.task.training_data()(fn_args, self.config)

    def build_model(self, data):
        return data.build_model(data.config)

    def open_pushed_model(self, signature: str = "serving_default"):
        from rnnflow.components.serving.serving_client import open_model

        if not self.summary.get("pushed_model"):
            raise FileNotFoundError(f"{self.output_dir}: this run pushed no model (status {self.summary['status']})")
        return open_model(self.summary["pushed_model"], signature=signature)


def fit_with_live_loss(model, data, *, epochs: int = 2, steps: int | None = None):
    """Fits `model` on `data`'s train split (at most `steps` batches an epoch), redrawing the
    train and eval loss after every epoch; returns the Keras History."""
    import warnings

    warnings.filterwarnings("ignore", message="Your input ran out of data")  # one finite pass per epoch
    train, evaluation = data.train(), data.eval()
    if steps:
        train, evaluation = train.take(steps), evaluation.take(max(1, steps // 4))
    return model.fit(train, validation_data=evaluation, epochs=epochs, verbose=0, callbacks=[LiveLoss()])


class LiveLoss(keras.callbacks.Callback):
    """Redraws loss and val_loss after each epoch (in place in a notebook)."""

    def on_train_begin(self, logs=None):
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        from IPython.display import clear_output, display

        for key in ("loss", "val_loss"):
            if logs and key in logs:
                self.history.setdefault(key, []).append(float(logs[key]))
        clear_output(wait=True)
        display(curves_figure(self.history, f"epoch {epoch + 1}"))


def curves_figure(history: dict[str, list[float]], title: str):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3))
    for key, values in history.items():
        axes.plot(range(1, len(values) + 1), values, marker="o", label=key)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.legend()
    plt.close(figure)
    return figure


def training_curves(summary: dict):
    """The finished run's loss and val_loss per epoch."""
    history = (summary.get("training") or {}).get("history") or {}
    return curves_figure({k: v for k, v in history.items() if k in ("loss", "val_loss")}, "the run's training")


def task_figure(run: FinishedRun):
    """The run's figure, as the pipeline writes it next to run_summary.json (or None)."""
    return run.task.plot(run.summary)
