"""Trainer run_fn and tuner_fn for translation (Keras 3): teacher forcing on pairs batched by
source length."""

from __future__ import annotations

import hashlib

import keras
import tensorflow as tf

from rnnflow.components.training.trainer import TaskData, train_and_export, transformed_dataset
from rnnflow.components.translation import export, preprocessing
from rnnflow.components.translation.features import SOURCE, TARGET
from rnnflow.components.translation.schema import SOURCE_IDS, START_ID, TARGET_IDS
from rnnflow.models.seq2seq import build_seq2seq
from rnnflow.pipeline.config import PipelineConfig


class TrainingData(TaskData):
    """({"source_ids", "target_in"}, target) batches: target_in is the target shifted right
    behind the start id; the target ends with the end id; 0 pads."""

    def prepare(self, config: PipelineConfig) -> None:
        names = preprocessing.vocabulary_names(config.task.joint_vocabulary)
        self.vocabulary_names = names
        self.pieces = {side: preprocessing.pieces_of(self.tf_transform_output, name) for side, name in names.items()}

    def vocab_size(self, side: str) -> int:
        return len(preprocessing.id_tokens(self.pieces[side]))

    def compatibility(self) -> dict:
        digest = {}
        for side, name in self.vocabulary_names.items():
            with tf.io.gfile.GFile(self.tf_transform_output.vocabulary_file_by_name(name), "rb") as f:
                digest[f"{side}_vocabulary"] = hashlib.sha256(f.read()).hexdigest()[:16]
        return digest

    def dataset(self, files, shuffle: bool):
        task, batch_size = self.config.task, self.config.training.batch_size
        dataset = transformed_dataset(self.fn_args, files, self.config, self.tf_transform_output, None, shuffle)

        def pairs(features):
            source, target = features[SOURCE_IDS], features[TARGET_IDS]
            start = tf.ones_like(target[:, :1]) * START_ID
            return {SOURCE_IDS: source, "target_in": tf.concat([start, target[:, :-1]], axis=1)}, target

        def rows(features, target):  # one row of a ragged batch, as dense int32 vectors
            return ({k: tf.cast(tf.identity(v), tf.int32) for k, v in features.items()},
                    tf.cast(tf.identity(target), tf.int32))

        from rnnflow.components.training.trainer import length_buckets

        boundaries = length_buckets(task.max_source_tokens)
        return dataset.map(pairs).unbatch().map(rows).bucket_by_sequence_length(
            element_length_func=lambda features, target: tf.shape(features[SOURCE_IDS])[0],
            bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            pad_to_bucket_boundary=False)

    def build_model(self, config: PipelineConfig) -> keras.Model:
        task = config.task
        return build_seq2seq(config.model, config.training, source_vocab=self.vocab_size(SOURCE),
                             target_vocab=self.vocab_size(TARGET), attention=task.attention,
                             input_feeding=task.input_feeding, tie_embeddings=task.tie_embeddings,
                             label_smoothing=task.label_smoothing, steps_per_epoch=self.steps_per_epoch)

    def reference_outputs(self, model, transformed) -> dict:
        """The in-memory model's greedy translation of a transformed source, as serving_default
        answers it (its log-likelihood and length)."""
        ids = transformed[SOURCE_IDS]
        ids = ids.to_tensor(0) if isinstance(ids, tf.RaggedTensor) else ids
        decoded = export.decode_greedy(model, tf.cast(ids, tf.int32), self.config.task)
        return {"score": decoded["log_probs"], "length": decoded["lengths"]}

    def export(self, model, serving_dir: str) -> None:
        export.export_serving_model(model, self.tf_transform_output, self.config.task, serving_dir,
                                   beam=self.config.evaluation.beam)

    def summary_fields(self) -> dict:
        return {"source_vocabulary_size": self.vocab_size(SOURCE), "target_vocabulary_size": self.vocab_size(TARGET)}


def run_fn(fn_args) -> None:
    train_and_export(fn_args, TrainingData)


def tuner_fn(fn_args):
    from rnnflow.components.training.tuning import tuner_result

    return tuner_result(fn_args, TrainingData)
