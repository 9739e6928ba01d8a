"""The serving SavedModel of a translation model: text in, text out, decoding inside the graph.

Signatures (all take plain text; invalid UTF-8 is read with U+FFFD; a source longer than
`task.max_source_tokens` pieces is cut there, and `truncated` says by how many):
- `serving_default`: `source` string [batch] -> `translation` string [batch] (greedy), `score`
  float32 [batch] (its log-likelihood in nats, end token included), `length` int32 [batch]
  (pieces), `truncated` int32 [batch]. An empty source translates to "".
- `translate_beam`: `source`, and the scalars `beam_size` int32 (1 to models.seq2seq.MAX_BEAM)
  and `max_length` int32 (1 to MAX_LENGTH pieces) -> the best hypothesis as `translation`,
  `score`, `length`, `truncated`, and all of them best first: `translations` [batch, beam],
  `scores` [batch, beam] (length-penalized, `task.length_penalty`). Bad settings fail the
  request with a message naming them.
- `score`: `source`, `target` string [batch] -> `log_likelihood` float32 [batch], `tokens` int32
  [batch] (target pieces scored, end included).
- `attention`: `source` -> the greedy translation's `source_pieces` [batch, S], `target_pieces`
  [batch, T] and attention `weights` [batch, T, S] (the heatmap's).
- `serving_examples`: serialized tf.Examples (their `source`) -> what `serving_default` answers;
- `evaluation_examples`: serialized tf.Examples -> `translations` string [batch, 2] (greedy,
  beam of `task.beam_size`; the beam's column repeats greedy when `evaluation.beam` is off), which
  the BLEU and chrF metrics read.

Saved with `tf.saved_model.save` on a `tf.Module` holding the Keras 3 model and the encoders
(WordPiece tokenizer and vocabulary tables over Transform's vocabulary files, kept as assets).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the text ops the tokenizer uses)

from rnnflow.components.common.run_facts import EXAMPLES_INPUT
from rnnflow.components.training.trainer import save_serving_model
from rnnflow.components.translation import preprocessing
from rnnflow.components.translation.features import SOURCE, TARGET, feature_spec
from rnnflow.components.translation.schema import (ATTENTION, BEAM_SIGNATURE, END_ID, EVAL_SIGNATURE,
                                                   EXAMPLES_SIGNATURE, LENGTH, PAD_ID, SCORE, SCORE_SIGNATURE,
                                                   START_ID, TRANSLATION, TRANSLATIONS, TRUNCATED)
from rnnflow.models import seq2seq


def decode_options(task) -> dict:
    return dict(start_id=START_ID, end_id=END_ID, length_ratio=task.length_ratio, length_offset=task.length_offset)


def decode_greedy(model, source_ids, task, max_length=seq2seq.MAX_LENGTH) -> dict:
    return seq2seq.greedy_decode(model, at_least_one_step(source_ids), max_length=max_length, **decode_options(task))


def at_least_one_step(ids):
    """[batch, S] ids padded to S >= 1 (a batch of empty sources is one padding step)."""
    ids = tf.cast(ids, tf.int32)
    return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])


class ServingModule(tf.Module):
    def __init__(self, model, tf_transform_output, task, beam: bool):
        super().__init__()
        self.model, self.task, self.beam = model, task, beam
        names = preprocessing.vocabulary_names(task.joint_vocabulary)
        self.encoders, tokens = {}, {}
        for side, limit in ((SOURCE, task.max_source_tokens), (TARGET, task.max_target_tokens)):
            pieces = preprocessing.pieces_of(tf_transform_output, names[side])
            self.encoders[side] = preprocessing.Encoder(
                tf_transform_output.vocabulary_file_by_name(names[side]), len(pieces), lowercase=task.lowercase,
                max_tokens=limit)
            tokens[side] = tf.constant(preprocessing.id_tokens(pieces))
        self.source_tokens, self.target_tokens = tokens[SOURCE], tokens[TARGET]

    def encode_source(self, source):
        ids, cut = self.encoders[SOURCE](source)
        return at_least_one_step(ids.to_tensor(PAD_ID)), cut

    def text(self, ids, lengths):
        return preprocessing.detokenize(self.target_tokens, ids, lengths)

    def greedy(self, source) -> dict:
        ids, cut = self.encode_source(source)
        decoded = decode_greedy(self.model, ids, self.task)
        return {TRANSLATION: self.text(decoded["ids"], decoded["lengths"]), SCORE: decoded["log_probs"],
                LENGTH: decoded["lengths"], TRUNCATED: cut}

    def beam_search(self, source, beam_size, max_length) -> dict:
        ids, cut = self.encode_source(source)
        found = seq2seq.beam_search(self.model, ids, beam_size=beam_size, max_length=max_length,
                                    length_penalty_alpha=self.task.length_penalty, **decode_options(self.task))
        batch, beam = tf.shape(found["ids"])[0], tf.shape(found["ids"])[1]
        flat = tf.reshape(found["ids"], [batch * beam, -1])
        texts = tf.reshape(self.text(flat, tf.reshape(found["lengths"], [-1])), [batch, beam])
        return {TRANSLATION: texts[:, 0], SCORE: found["log_probs"][:, 0], LENGTH: found["lengths"][:, 0],
                TRUNCATED: cut, TRANSLATIONS: texts, "scores": found["scores"]}

    def score(self, source, target) -> dict:
        ids, _ = self.encode_source(source)
        target_ids, _ = self.encoders[TARGET](target)
        end = tf.fill([tf.shape(target_ids.row_lengths())[0], 1], tf.constant(END_ID, tf.int64))
        target_ids = tf.concat([target_ids, end], axis=1).to_tensor(PAD_ID)
        log_likelihood = seq2seq.score(self.model, ids, tf.cast(target_ids, tf.int32), start_id=START_ID)
        return {"log_likelihood": log_likelihood,
                "tokens": tf.reduce_sum(tf.cast(target_ids != PAD_ID, tf.int32), axis=1)}

    def signatures(self) -> dict:
        text = tf.TensorSpec([None], tf.string, name=SOURCE)
        examples = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

        def parsed(serialized, name=SOURCE):
            return tf.io.parse_example(serialized, {name: feature_spec()[name]})[name]

        @tf.function(input_signature=[text])
        def greedy(source):
            return self.greedy(source)

        @tf.function(input_signature=[text, tf.TensorSpec([], tf.int32, name="beam_size"),
                                      tf.TensorSpec([], tf.int32, name="max_length")])
        def beam(source, beam_size, max_length):
            return self.beam_search(source, beam_size, max_length)

        @tf.function(input_signature=[text, tf.TensorSpec([None], tf.string, name=TARGET)])
        def score(source, target):
            return self.score(source, target)

        @tf.function(input_signature=[text])
        def attention(source):
            ids, _ = self.encode_source(source)
            decoded = decode_greedy(self.model, ids, self.task)
            return {"source_pieces": tf.gather(self.source_tokens, ids),
                    "target_pieces": tf.gather(self.target_tokens, decoded["ids"]), "weights": decoded[ATTENTION]}

        @tf.function(input_signature=[examples])
        def greedy_examples(serialized):
            return self.greedy(parsed(serialized))

        @tf.function(input_signature=[examples])
        def evaluate_examples(serialized):
            source = parsed(serialized)
            first = self.greedy(source)[TRANSLATION]
            second = (self.beam_search(source, self.task.beam_size, seq2seq.MAX_LENGTH)[TRANSLATION] if self.beam
                      else first)
            return {TRANSLATIONS: tf.stack([first, second], axis=1)}

        return {"serving_default": greedy.get_concrete_function(),
                BEAM_SIGNATURE: beam.get_concrete_function(),
                SCORE_SIGNATURE: score.get_concrete_function(),
                ATTENTION: attention.get_concrete_function(),
                EXAMPLES_SIGNATURE: greedy_examples.get_concrete_function(),
                EVAL_SIGNATURE: evaluate_examples.get_concrete_function()}


def export_serving_model(model, tf_transform_output, task, export_dir: str, beam: bool = True) -> None:
    module = ServingModule(model, tf_transform_output, task, beam)
    sources = np.array(["", "A man is walking a dog in the park."], dtype=object)
    save_serving_model(module, model, export_dir, {
        "serving_default": [{SOURCE: sources}],
        BEAM_SIGNATURE: [{SOURCE: sources, "beam_size": np.int32(task.beam_size),
                          "max_length": np.int32(seq2seq.MAX_LENGTH)}]})
