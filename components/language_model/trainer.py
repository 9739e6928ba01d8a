"""Trainer run_fn and tuner_fn for language modeling (Keras 3): truncated BPTT over the windows."""

from __future__ import annotations

import dataclasses
import hashlib

import keras
import tensorflow as tf

from rnnflow.components.language_model import export, preprocessing
from rnnflow.components.language_model.schema import LOG_LIKELIHOOD, TOKEN_IDS, TOKEN_VOCABULARY, eval_window_size
from rnnflow.components.training.trainer import TaskData, train_and_export, transformed_dataset
from rnnflow.models.language_model import build_language_model
from rnnflow.models.recurrent import JIT_COMPILE, make_optimizer
from rnnflow.pipeline.config import PipelineConfig


# Logits an eval batch may hold (rows x eval window x vocabulary; 256 MiB of float32): eval
# windows are longer than training windows, and a word vocabulary is large.
EVAL_BATCH_LOGITS = 2 ** 26


class TrainingData(TaskData):
    """Batches of windows: token ids [batch, window] in, the next tokens [batch, window] out."""

    def prepare(self, config: PipelineConfig) -> None:
        self.vocabulary = preprocessing.vocabulary(self.tf_transform_output)

    def train_examples(self, config: PipelineConfig) -> int:
        return self.details["train_windows"]

    def compatibility(self) -> dict:
        with tf.io.gfile.GFile(self.tf_transform_output.vocabulary_file_by_name(TOKEN_VOCABULARY), "rb") as f:
            return {"token_vocabulary": hashlib.sha256(f.read()).hexdigest()[:16]}

    def eval(self) -> tf.data.Dataset:
        """The eval windows (`task.eval_window` tokens, longer than training's) in batches of at
        most the training batch's rows that keep their logits within EVAL_BATCH_LOGITS."""
        task, training = self.config.task, self.config.training
        window = eval_window_size(task, self.details["eval_tokens"])
        rows = min(training.batch_size, max(1, EVAL_BATCH_LOGITS // (window * len(self.vocabulary))))
        return self.dataset(self.fn_args.eval_files, shuffle=False, batch_size=rows)

    def dataset(self, files, shuffle: bool, batch_size: int | None = None):
        config = self.config
        if batch_size:
            config = dataclasses.replace(config, training=dataclasses.replace(config.training, batch_size=batch_size))
        dataset = transformed_dataset(self.fn_args, files, config, self.tf_transform_output, None, shuffle)

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
