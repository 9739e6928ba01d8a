"""Trainer run_fn for text classification (Keras 3)."""

from __future__ import annotations

import json
import os
import warnings

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx_bsl.public import tfxio

from rnnflow.components.text_classification import export, preprocessing
from rnnflow.components.tasks.base import TRAINING_SUMMARY_FILE
from rnnflow.components.text_classification.task import LABEL_ID, LABEL_VOCABULARY, TOKEN_IDS
from rnnflow.models.recurrent import build_text_classifier
from rnnflow.pipeline.config import parse_config


def make_dataset(fn_args, files, tf_transform_output, batch_size: int, seed: int, shuffle: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_ID, num_epochs=1,
                                       shuffle=shuffle, shuffle_seed=seed),
        tf_transform_output.transformed_metadata.schema)


def run_fn(fn_args) -> None:
    """Trains with early stopping on the eval split, then exports the serving SavedModel."""
    config = parse_config(fn_args.custom_config["config"])
    keras.utils.set_random_seed(config.training.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    class_names = [v.decode() for v in tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]

    train = make_dataset(fn_args, fn_args.train_files, tf_transform_output,
                         config.training.batch_size, config.training.seed, shuffle=True)
    evaluation = make_dataset(fn_args, fn_args.eval_files, tf_transform_output,
                              config.training.batch_size, config.training.seed, shuffle=False)
    model = build_text_classifier(
        config.model, config.training,
        vocab_size=preprocessing.vocabulary_size(tf_transform_output, fn_args.custom_config["config"]["task"]),
        num_classes=len(class_names), max_tokens=config.task.max_tokens, input_name=TOKEN_IDS)
    model.summary(print_fn=logging.info)

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.training.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
    ]
    # The datasets are finite (one pass per epoch); Keras warns when an epoch ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = model.fit(train, validation_data=evaluation, epochs=config.training.epochs,
                        callbacks=callbacks, verbose=2)

    export.export_serving_model(
        model, tf_transform_output, text_column=config.data.text_column, class_names=class_names,
        export_dir=fn_args.serving_model_dir,
        warmup_texts=["", "a short text", " ".join(["word"] * config.task.max_tokens)])
    write_training_summary(fn_args.model_run_dir, model, history, class_names)


def write_training_summary(run_dir: str, model, history, class_names: list[str]) -> None:
    """Facts the run summary reports that only the Trainer knows."""
    val_loss = history.history.get("val_loss", [])
    summary = {
        "epochs_run": len(history.epoch),
        "best_epoch": (val_loss.index(min(val_loss)) + 1) if val_loss else None,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "params": int(model.count_params()),
        "classes": class_names,
    }
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
