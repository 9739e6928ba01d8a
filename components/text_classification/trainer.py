"""Trainer run_fn for text classification (Keras 3)."""

from __future__ import annotations

import json
import math
import os
import warnings

import keras
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx_bsl.public import tfxio

from rnnflow.components.tasks.base import TRAINING_SUMMARY_FILE
from rnnflow.components.text_classification import export, preprocessing
from rnnflow.components.text_classification.task import LABEL_ID, LABEL_VOCABULARY, TOKEN_IDS
from rnnflow.models.recurrent import build_text_classifier, cudnn_eligibility, describe_model
from rnnflow.pipeline.config import TUNABLE_SECTIONS, PipelineConfig, parse_config, replace_fields


class TrainingData:
    """Transformed train/eval datasets with one-hot labels, and what the model needs to know."""

    def __init__(self, fn_args, config: PipelineConfig):
        self.tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
        self.class_names = [v.decode() for v in self.tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]
        self.vocab_size = preprocessing.vocabulary_size(self.tf_transform_output, config.task.oov_buckets)
        split = config.data.split
        train_rows = fn_args.custom_config["input"]["rows"] * split.train_buckets / (
            split.train_buckets + split.eval_buckets)
        # Approximate (hash split); sizes learning-rate schedules.
        self.steps_per_epoch = max(1, math.ceil(train_rows / config.training.batch_size))
        self._fn_args = fn_args
        self._config = config

    def dataset(self, files, shuffle: bool):
        training = self._config.training
        dataset = self._fn_args.data_accessor.tf_dataset_factory(
            files,
            tfxio.TensorFlowDatasetOptions(batch_size=training.batch_size, label_key=LABEL_ID, num_epochs=1,
                                           shuffle=shuffle, shuffle_seed=training.seed),
            self.tf_transform_output.transformed_metadata.schema)
        depth = len(self.class_names)
        return dataset.map(lambda features, label: (features, tf.one_hot(tf.reshape(label, [-1]), depth)))

    def train(self):
        return self.dataset(self._fn_args.train_files, shuffle=True)

    def eval(self):
        return self.dataset(self._fn_args.eval_files, shuffle=False)


def build_model(config: PipelineConfig, data: TrainingData) -> keras.Model:
    return build_text_classifier(config.model, config.training, vocab_size=data.vocab_size,
                                 num_classes=len(data.class_names), max_tokens=config.task.max_tokens,
                                 input_name=TOKEN_IDS, steps_per_epoch=data.steps_per_epoch)


def class_weights(config: PipelineConfig, label_counts: dict[str, int], class_names: list[str]):
    """Inverse-frequency weights (mean 1) for training.class_weight: balanced; None otherwise."""
    if config.training.class_weight != "balanced":
        return None
    total = sum(label_counts.values())
    return {i: total / (len(class_names) * label_counts[name]) for i, name in enumerate(class_names)}


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


def run_fn(fn_args) -> None:
    """Trains with early stopping on the eval split, then exports the serving SavedModel."""
    config, hyperparameters = config_with_hyperparameters(fn_args)
    keras.utils.set_random_seed(config.training.seed)
    gpus = tf.config.list_logical_devices("GPU")
    if config.training.mixed_precision and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    data = TrainingData(fn_args, config)
    with distribution_strategy().scope():
        model = build_model(config, data)
    model.summary(print_fn=logging.info)
    report_cudnn_eligibility(model, gpu_present=bool(gpus))

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.training.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
    ]
    # The datasets are finite (one pass per epoch); Keras warns when an epoch ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = model.fit(
        data.train(), validation_data=data.eval(), epochs=config.training.epochs, callbacks=callbacks,
        class_weight=class_weights(config, fn_args.custom_config["input"]["label_counts"], data.class_names),
        verbose=2)

    keras.mixed_precision.set_global_policy("float32")
    export.export_serving_model(
        model, data.tf_transform_output, text_column=config.data.text_column, class_names=data.class_names,
        export_dir=fn_args.serving_model_dir,
        warmup_texts=["", "a short text", " ".join(["word"] * config.task.max_tokens)])
    write_training_summary(fn_args.model_run_dir, {
        **history_summary(history), "classes": data.class_names,
        "model": describe_model(model, config.model), "hyperparameters": hyperparameters})


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
