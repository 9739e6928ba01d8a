"""Trainer run_fn and tuner_fn for language modeling (Keras 3): truncated BPTT over the windows."""

from __future__ import annotations

import hashlib

import keras
import tensorflow as tf

from rnnflow.components.language_model import export, preprocessing
from rnnflow.components.language_model.schema import LOG_LIKELIHOOD, TOKEN_IDS, TOKEN_VOCABULARY
from rnnflow.components.training.trainer import TaskData, train_and_export, transformed_dataset
from rnnflow.models.language_model import build_language_model
from rnnflow.models.recurrent import JIT_COMPILE, make_optimizer
from rnnflow.pipeline.config import PipelineConfig


class TrainingData(TaskData):
    """Batches of windows: token ids [batch, window] in, the next tokens [batch, window] out."""

    def prepare(self, config: PipelineConfig) -> None:
        self.vocabulary = preprocessing.vocabulary(self.tf_transform_output)

    def train_examples(self, config: PipelineConfig) -> int:
        return self.details["train_windows"]

    def compatibility(self) -> dict:
        with tf.io.gfile.GFile(self.tf_transform_output.vocabulary_file_by_name(TOKEN_VOCABULARY), "rb") as f:
            return {"token_vocabulary": hashlib.sha256(f.read()).hexdigest()[:16]}

    def dataset(self, files, shuffle: bool):
        dataset = transformed_dataset(self.fn_args, files, self.config, self.tf_transform_output, None, shuffle)

        def shifted(features):
            ids = features[TOKEN_IDS]
            ids = ids.to_tensor(0) if isinstance(ids, tf.RaggedTensor) else ids
            return ids[:, :-1], ids[:, 1:]

        return dataset.map(shifted)

    def build_model(self, config: PipelineConfig) -> keras.Model:
        model = build_language_model(len(self.vocabulary), config.model)
        model.compile(optimizer=make_optimizer(config.training, self.steps_per_epoch),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=JIT_COMPILE[config.training.jit_compile])
        return model

    def reference_outputs(self, model, transformed) -> dict:
        """The in-memory model's log-likelihood of a transformed window, as `score` computes it."""
        ids = transformed[TOKEN_IDS]
        log_likelihood, tokens = export.score_ids(model, ids.to_tensor(0) if isinstance(ids, tf.RaggedTensor) else ids)
        outputs = export.score_outputs(log_likelihood, tokens)
        return {LOG_LIKELIHOOD: outputs[LOG_LIKELIHOOD], "nats_per_token": outputs["nats_per_token"]}

    def export(self, model, serving_dir: str) -> None:
        task = self.config.task
        export.export_serving_model(model, self.tf_transform_output, tokenizer=task.tokenizer,
                                    max_generate=task.max_generate, window=task.window, export_dir=serving_dir)

    def summary_fields(self) -> dict:
        return {"vocabulary_size": len(self.vocabulary)}


def run_fn(fn_args) -> None:
    train_and_export(fn_args, TrainingData)


def tuner_fn(fn_args):
    from rnnflow.components.training.tuning import tuner_result

    return tuner_result(fn_args, TrainingData)
