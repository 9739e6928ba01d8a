"""Training steps every task's run_fn shares: tuned config, device strategy, summaries."""

from __future__ import annotations

import json
import os
import warnings

import keras
import tensorflow as tf
from absl import logging

from rnnflow.components.tasks.base import TRAINING_SUMMARY_FILE
from rnnflow.models.recurrent import cudnn_eligibility
from rnnflow.pipeline.config import TUNABLE_SECTIONS, PipelineConfig, parse_config, replace_fields


def config_with_hyperparameters(fn_args) -> tuple[PipelineConfig, dict]:
    """The run's config with the Tuner's (or an imported) best hyperparameters applied."""
    config = parse_config(fn_args.custom_config["config"])
    if not fn_args.hyperparameters:
        return config, {}
    import keras_tuner

    values = {k: v for k, v in keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values.items()
              if k.partition(".")[0] in TUNABLE_SECTIONS}
    logging.info("Using tuned hyperparameters: %s", values)
    return replace_fields(config, values), values


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy across GPUs when there are several, the default strategy otherwise."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def report_cudnn_eligibility(model, gpu_present: bool) -> None:
    for layer in cudnn_eligibility(model):
        if layer["eligible"]:
            logging.info("cuDNN: %s is eligible", layer["layer"])
        elif gpu_present:
            logging.warning("cuDNN: %s will NOT use the cuDNN kernel: %s", layer["layer"],
                            "; ".join(layer["reasons"]))
        else:
            logging.info("cuDNN: %s is not eligible: %s", layer["layer"], "; ".join(layer["reasons"]))


def history_summary(history) -> dict:
    val_loss = history.history.get("val_loss", [])
    return {
        "epochs_run": len(history.epoch),
        "best_epoch": (val_loss.index(min(val_loss)) + 1) if val_loss else None,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
    }


def write_training_summary(run_dir: str, summary: dict) -> None:
    """Facts the run summary reports that only the Trainer knows."""
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)


def fit(config: PipelineConfig, fn_args, build, data, class_weight=None):
    """Builds (under the device strategy) and fits with early stopping on the eval split.

    `data` provides train() and eval() datasets. Returns (model, history); the model
    holds the best epoch's weights and float32 is the global policy again, for export.
    """
    keras.utils.set_random_seed(config.training.seed)
    gpus = tf.config.list_logical_devices("GPU")
    if config.training.mixed_precision and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    with distribution_strategy().scope():
        model = build()
    model.summary(print_fn=logging.info)
    report_cudnn_eligibility(model, gpu_present=bool(gpus))
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.training.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
    ]
    # The datasets are finite (one pass per epoch); Keras warns when an epoch ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = model.fit(data.train(), validation_data=data.eval(), epochs=config.training.epochs,
                        callbacks=callbacks, class_weight=class_weight, verbose=2)
    keras.mixed_precision.set_global_policy("float32")
    return model, history


def transformed_dataset(fn_args, files, config: PipelineConfig, tf_transform_output, label_key: str,
                        shuffle: bool):
    """One pass over Transform's output as (features, label) batches."""
    from tfx_bsl.public import tfxio

    training = config.training
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=training.batch_size, label_key=label_key, num_epochs=1,
                                       shuffle=shuffle, shuffle_seed=training.seed),
        tf_transform_output.transformed_metadata.schema)
