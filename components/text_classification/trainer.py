"""Trainer run_fn for text classification (Keras 3)."""

from __future__ import annotations

import hashlib

import keras
import tensorflow as tf

from rnnflow.components.text_classification import export, preprocessing
from rnnflow.components.text_classification.schema import (
    LABEL_COUNTS, LABEL_ID, LABEL_VOCABULARY, TOKEN_IDS, TOKEN_VOCABULARY)
from rnnflow.components.training.trainer import TaskData, batched_by_length, train_and_export, transformed_dataset
from rnnflow.models.recurrent import build_text_classifier
from rnnflow.pipeline.config import PipelineConfig


class TrainingData(TaskData):
    """Transformed train/eval datasets with one-hot labels, and what the model needs to know."""

    def prepare(self, config: PipelineConfig) -> None:
        self.class_names = [v.decode() for v in self.tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY)]
        self.vocab_size = preprocessing.vocabulary_size(self.tf_transform_output, config.task.oov_buckets)

    def train_examples(self, config: PipelineConfig) -> int:
        split = config.data.split  # approximate: a hash split, unless the eval split is its own file
        if config.data.eval_path:
            return self.input_report["rows"]
        return round(self.input_report["rows"] * split.train_buckets / (split.train_buckets + split.eval_buckets))

    def compatibility(self) -> dict:
        """What a warm start's base model must share: token ids and class ids."""
        vocabulary = self.tf_transform_output.vocabulary_file_by_name(TOKEN_VOCABULARY)
        with tf.io.gfile.GFile(vocabulary, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        return {"token_vocabulary": digest, "classes": self.class_names}

    def dataset(self, files, shuffle: bool):
        """Batches of texts of similar length, each padded to its own longest text."""
        dataset = transformed_dataset(self.fn_args, files, self.config, self.tf_transform_output, LABEL_ID,
                                      shuffle)
        dataset = batched_by_length(dataset, TOKEN_IDS, self.config.training.batch_size,
                                    self.config.task.max_tokens)
        depth = len(self.class_names)
        return dataset.map(lambda features, label: (features, tf.one_hot(tf.reshape(label, [-1]), depth)))

    def build_model(self, config: PipelineConfig) -> keras.Model:
        return build_text_classifier(config.model, config.training, vocab_size=self.vocab_size,
                                     num_classes=len(self.class_names), label_smoothing=config.task.label_smoothing,
                                     input_name=TOKEN_IDS, steps_per_epoch=self.steps_per_epoch,
                                     oov_id=self.vocab_size - config.task.oov_buckets,
                                     vectors=self.pretrained(config, TOKEN_VOCABULARY, first_id=preprocessing.FIRST_VOCAB_ID,
                                                             size=self.vocab_size))

    def reference_outputs(self, model, transformed) -> dict:
        """The in-memory model's class probabilities for a transformed batch, as training feeds it."""
        token_ids = transformed[TOKEN_IDS]
        dense = token_ids.to_tensor() if isinstance(token_ids, tf.RaggedTensor) else token_ids
        return {export.PROBABILITIES: model({TOKEN_IDS: dense}, training=False)}

    def export(self, model, serving_dir: str) -> None:
        config = self.config
        export.export_serving_model(
            model, self.tf_transform_output, text_column=config.data.text_column, class_names=self.class_names,
            export_dir=serving_dir, missing_text=config.serving.missing_text,
            warmup_texts=["", "a short text", " ".join(["word"] * config.task.max_tokens)])

    def class_weight(self, config: PipelineConfig):
        return class_weights(config, self.details[LABEL_COUNTS], self.class_names)

    def summary_fields(self) -> dict:
        return {"classes": self.class_names}


def class_weights(config: PipelineConfig, label_counts: dict[str, int], class_names: list[str]):
    """Inverse-frequency weights (mean 1) for task.class_weight: balanced; None otherwise."""
    if config.task.class_weight != "balanced":
        return None
    total = sum(label_counts.values())
    return {i: total / (len(class_names) * label_counts[name]) for i, name in enumerate(class_names)}


def run_fn(fn_args) -> None:
    """Trains with early stopping on the eval split, then exports the serving SavedModel."""
    train_and_export(fn_args, TrainingData)


def tuner_fn(fn_args):
    from rnnflow.components.training.tuning import tuner_result

    return tuner_result(fn_args, TrainingData)
