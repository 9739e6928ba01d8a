"""Trainer run_fn and tuner_fn for sequence labeling (Keras 3)."""

from __future__ import annotations

import hashlib

import keras
import tensorflow as tf

from rnnflow.components.sequence_labeling import conll, export, preprocessing
from rnnflow.components.sequence_labeling.schema import (CHAR_VOCABULARY, FIRST_ID, TAG_IDS, TAG_LIST, TAG_SCORES,
                                                       WORD_VOCABULARY)
from rnnflow.components.training.trainer import TaskData, batched_by_length, train_and_export, transformed_dataset
from rnnflow.models.tagger import CHAR_IDS, PAD_LABEL, WORD_IDS, build_tagger, decode, label_lengths
from rnnflow.pipeline.config import PipelineConfig


class TrainingData(TaskData):
    """Batches of sentences of similar length: {word_ids [batch, steps], char_ids [batch, steps,
    max_word_chars]} and tag ids [batch, steps] with -1 past each sentence."""

    # Early stopping and the best epoch follow the eval entity F1 (what the run is blessed and
    # judged on): the CRF's log-likelihood on eval rises from over-confidence epochs before the
    # entities it finds stop improving.
    monitor = ("val_entity_f1", "max")

    def prepare(self, config: PipelineConfig) -> None:
        self.tag_names = self.details[TAG_LIST]
        self.vocab_size, self.char_vocab_size = preprocessing.vocabulary_sizes(
            self.tf_transform_output, config.task.oov_buckets)

    def compatibility(self) -> dict:
        digests = {}
        for name in (WORD_VOCABULARY, CHAR_VOCABULARY):
            with tf.io.gfile.GFile(self.tf_transform_output.vocabulary_file_by_name(name), "rb") as f:
                digests[f"{name}_vocabulary"] = hashlib.sha256(f.read()).hexdigest()[:16]
        return {**digests, "tags": self.tag_names}

    def dataset(self, files, shuffle: bool):
        task = self.config.task
        dataset = transformed_dataset(self.fn_args, files, self.config, self.tf_transform_output, TAG_IDS, shuffle)
        dataset = batched_by_length(dataset, WORD_IDS, self.config.training.batch_size, task.max_tokens)
        width, use_chars = task.max_word_chars, task.char_encoder != "none"

        def shaped(features, tags):
            inputs = {WORD_IDS: features[WORD_IDS]}
            if use_chars:
                chars = features[CHAR_IDS]
                inputs[CHAR_IDS] = tf.reshape(chars, [tf.shape(chars)[0], -1, width])
            return inputs, tf.where(features[WORD_IDS] != 0, tags, PAD_LABEL)

        return dataset.map(shaped)

    def build_model(self, config: PipelineConfig) -> keras.Model:
        task = config.task
        return build_tagger(config.model, config.training, vocab_size=self.vocab_size, num_tags=len(self.tag_names),
                            char_vocab_size=self.char_vocab_size, word_chars=task.max_word_chars,
                            char_encoder=task.char_encoder, char_dim=task.char_dim, char_units=task.char_units,
                            decoder=task.decoder, steps_per_epoch=self.steps_per_epoch,
                            oov_id=self.vocab_size - task.oov_buckets,
                            vectors=self.pretrained(config, WORD_VOCABULARY, first_id=FIRST_ID, size=self.vocab_size))

    def eval_scores(self, model) -> dict:
        """Entity F1 of the decoded eval split (Viterbi with the CRF), as the CoNLL scorer counts
        entities over the tokens the model reads (up to task.max_tokens)."""
        true, predicted = [], []
        for inputs, tags in self.eval():
            lengths = label_lengths(tags)
            decoded, _ = decode(model, model(inputs, training=False), lengths)
            for gold, guess, length in zip(tags.numpy(), decoded.numpy(), lengths.numpy()):
                true.append([self.tag_names[i] for i in gold[:length]])
                predicted.append([self.tag_names[i] for i in guess[:length]])
        return {"entity_f1": conll.span_scores(true, predicted)["overall"]["f1"]}

    def reference_outputs(self, model, transformed) -> dict:
        """The in-memory tagger's tag scores for a transformed batch, as serving computes them."""
        task = self.config.task
        _, scores, _ = export.tag_batch(model, transformed, task.max_tokens, task.max_word_chars,
                                        task.char_encoder != "none")
        return {TAG_SCORES: scores}

    def export(self, model, serving_dir: str) -> None:
        task = self.config.task
        export.export_serving_model(model, self.tf_transform_output, tag_names=self.tag_names,
                                    max_tokens=task.max_tokens, width=task.max_word_chars,
                                    use_chars=task.char_encoder != "none", export_dir=serving_dir)

    def summary_fields(self) -> dict:
        return {"tags": self.tag_names}


def run_fn(fn_args) -> None:
    train_and_export(fn_args, TrainingData)


def tuner_fn(fn_args):
    from rnnflow.components.training.tuning import tuner_result

    return tuner_result(fn_args, TrainingData)
