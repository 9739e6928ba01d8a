"""The serving SavedModel of a sequence tagger: sentences in, tags and entity spans out.

Signatures (every per-token or per-entity output is [batch, task.max_tokens], padded: "" for
strings, 0 for scores, -1 for positions):
- `serving_default`: `sentence` string [batch], tokenized in the graph at whitespace (as
  CoNLL-style data is tokenized: send punctuation as separate words, e.g. "Paris , France") ->
  `tokens`, `tags` (IOB2), `tag_scores` (the softmax probability of each chosen tag),
  `lengths` [batch] (tokens read: at most max_tokens), `token_counts` [batch] (tokens in the
  sentence; above `lengths` when the sentence was longer than max_tokens: tokens past the limit
  are not tagged and appear in no output), `entity_starts`, `entity_ends` (token positions, end
  exclusive), `entity_types`, `entity_texts` (the entity's tokens joined by spaces);
- `serving_tokens`: `tokens` string [batch, steps], pre-tokenized, trailing "" as padding ->
  the same outputs;
- `serving_examples`: serialized tf.Examples (their `sentence` feature) -> the same outputs;
- `evaluation_examples`: serialized tf.Examples (their `tokens`) -> `predicted_tag_ids` float32
  [batch, max_tokens], -1 past each sentence; TFMA's entity metrics read them.

Every signature answers an empty sentence (or a request of only empty sentences, or an empty
batch) with empty outputs (`lengths` 0), and an input of the wrong rank with an error naming the
input and the shape it needs.

The model is saved with `tf.saved_model.save` on a `tf.Module` holding the Keras 3 tagger and
Transform's (tf_keras) layer, which never meet inside one Keras model. Tagging (Viterbi for a
CRF) runs in the graph.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the text ops the transform graph uses)

from rnnflow.components.sequence_labeling import conll
from rnnflow.components.sequence_labeling.features import SENTENCE, TOKENS, feature_spec
from rnnflow.components.sequence_labeling.schema import (EVAL_SIGNATURE, EXAMPLES_SIGNATURE, PREDICTED_TAG_IDS,
                                                       TAG_SCORES, TOKENS_SIGNATURE)
from rnnflow.components.common.run_facts import EXAMPLES_INPUT
from rnnflow.components.training.trainer import save_serving_model
from rnnflow.models.tagger import CHAR_IDS, WORD_IDS, decode

OUTPUTS = ("tokens", "tags", TAG_SCORES, "lengths", "token_counts", "entity_starts", "entity_ends", "entity_types",
           "entity_texts")


def model_inputs(transformed: dict, width: int, use_chars: bool) -> tuple[dict, tf.Tensor]:
    """Transform's ragged outputs -> the tagger's right-padded inputs (at least one step, so an
    empty sentence is a fully masked row) and the sentence lengths."""
    word_ids = transformed[WORD_IDS]
    lengths = tf.cast(word_ids.row_lengths(), tf.int32)
    steps = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], axis=0)), 1)
    inputs = {WORD_IDS: word_ids.to_tensor(default_value=0, shape=tf.stack([-1, tf.cast(steps, tf.int64)]))}
    if use_chars:
        chars = transformed[CHAR_IDS].to_tensor(default_value=0, shape=tf.stack([-1, tf.cast(steps * width, tf.int64)]))
        inputs[CHAR_IDS] = tf.reshape(chars, [tf.shape(chars)[0], steps, width])
    return inputs, lengths


def tag_batch(model, transformed: dict, max_tokens: int, width: int, use_chars: bool):
    """(tag ids [batch, max_tokens] int64, scores [batch, max_tokens] float32, lengths [batch])."""
    inputs, lengths = model_inputs(transformed, width, use_chars)
    tags, scores = decode(model, model(inputs, training=False), lengths)
    pad = [[0, 0], [0, max_tokens - tf.shape(tags)[1]]]
    return tf.pad(tags, pad), tf.pad(scores, pad), lengths


class TagTable(tf.Module):
    """Entity spans of IOB2 tag ids inside the graph, as `conll.entity_spans` counts them."""

    def __init__(self, tag_names: list[str]):
        super().__init__()
        types = sorted({t[2:] for t in tag_names if t != conll.OUTSIDE})
        self.type_names = tf.constant(types + [""])
        self.type_of = tf.constant([types.index(t[2:]) if t != conll.OUTSIDE else -1 for t in tag_names], tf.int32)
        self.is_begin = tf.constant([t.startswith("B-") for t in tag_names])

    def entities(self, tokens, tag_ids, real) -> dict:
        """tokens [batch, steps] strings, tag ids [batch, steps], real [batch, steps] bool ->
        {entity_starts, entity_ends (exclusive), entity_types, entity_texts}: [batch, steps],
        each row's entities first, then padding (-1 or "")."""
        steps = tokens.shape[1]
        kind = tf.where(real, tf.gather(self.type_of, tag_ids), -1)
        begins = tf.gather(self.is_begin, tag_ids)
        previous = tf.pad(kind[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        inside = kind >= 0
        starts = inside & (begins | tf.not_equal(previous, kind))
        continues_next = tf.pad(inside[:, 1:] & ~starts[:, 1:], [[0, 0], [0, 1]])
        ends = inside & ~continues_next
        positions = tf.broadcast_to(tf.range(steps), tf.shape(kind))
        start_at = tf.ragged.boolean_mask(positions, starts)
        end_at = tf.ragged.boolean_mask(positions, ends) + 1
        entity_kind = tf.ragged.boolean_mask(kind, starts)
        # Each entity token's entity, numbered across the batch, to join its tokens.
        numbered = tf.cumsum(tf.cast(tf.reshape(starts, [-1]), tf.int32)) - 1
        member = tf.reshape(inside, [-1])
        texts = tf.strings.unsorted_segment_join(
            tf.boolean_mask(tf.reshape(tokens, [-1]), member), tf.boolean_mask(numbered, member),
            num_segments=tf.reduce_sum(tf.cast(starts, tf.int32)), separator=" ")
        texts = start_at.with_flat_values(texts)
        shape = [None, steps]
        return {"entity_starts": start_at.to_tensor(-1, shape=shape), "entity_ends": end_at.to_tensor(-1, shape=shape),
                "entity_types": tf.gather(self.type_names, entity_kind).to_tensor("", shape=shape),
                "entity_texts": texts.to_tensor("", shape=shape)}


class ServingModule(tf.Module):
    def __init__(self, model, tf_transform_output, *, tag_names: list[str], max_tokens: int, width: int,
                 use_chars: bool):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.max_tokens, self.width, self.use_chars = max_tokens, width, use_chars
        self.tag_names = tf.constant(tag_names)
        self.tag_table = TagTable(tag_names)

    def tag_tokens(self, tokens: tf.RaggedTensor) -> dict:
        """[batch, (tokens)] strings -> the serving outputs."""
        token_counts = tf.cast(tokens.row_lengths(), tf.int32)
        # One empty sentence more, dropped from every output below: the model never sees an
        # empty batch (a request of zero sentences gets zero rows back).
        tokens = tf.concat([tokens[:, :self.max_tokens], tf.RaggedTensor.from_row_lengths(
            tf.constant([], tf.string), tf.constant([0], tf.int64))], axis=0)
        transformed = self.tft_layer({TOKENS: tokens.to_sparse()})
        tag_ids, scores, lengths = tag_batch(self.model, transformed, self.max_tokens, self.width, self.use_chars)
        real = tf.sequence_mask(lengths, self.max_tokens)
        padded_tokens = tokens.to_tensor(default_value="", shape=[None, self.max_tokens])
        outputs = {"tokens": padded_tokens, "tags": tf.where(real, tf.gather(self.tag_names, tag_ids), ""),
                   TAG_SCORES: scores, "lengths": lengths, **self.tag_table.entities(padded_tokens, tag_ids, real)}
        return {**{name: value[:-1] for name, value in outputs.items()}, "token_counts": token_counts}

    def signatures(self) -> dict:
        # Any shape declared: TF Serving does not enforce declared shapes, and Grappler would take
        # them as facts and drop the rank checks.
        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=SENTENCE)])
        def serve_sentences(sentence):
            sentence = _with_rank(sentence, 1, f"input `{SENTENCE}` must be a 1-D batch of sentences, shape [batch] "
                                               "(over REST: instances, a list of strings)")
            return self.tag_tokens(tf.strings.split(sentence))

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=TOKENS)])
        def serve_tokens(tokens):
            tokens = _with_rank(tokens, 2, f"input `{TOKENS}` must be [batch, steps] strings, one row of words per "
                                           "sentence padded on the right with \"\"")
            return self.tag_tokens(tf.RaggedTensor.from_tensor(tokens, padding=""))

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=EXAMPLES_INPUT)])
        def serve_examples(examples):
            examples = _with_rank(examples, 1, f"input `{EXAMPLES_INPUT}` must be a 1-D batch of serialized "
                                               "tf.Examples, shape [batch]")
            parsed = tf.io.parse_example(examples, {SENTENCE: feature_spec()[SENTENCE]})
            return self.tag_tokens(tf.strings.split(parsed[SENTENCE]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def evaluate_examples(examples):
            parsed = tf.io.parse_example(examples, {TOKENS: feature_spec()[TOKENS]})
            tokens = tf.RaggedTensor.from_sparse(parsed[TOKENS])[:, :self.max_tokens]
            transformed = self.tft_layer({TOKENS: tokens.to_sparse()})
            tag_ids, _, lengths = tag_batch(self.model, transformed, self.max_tokens, self.width, self.use_chars)
            real = tf.sequence_mask(lengths, self.max_tokens)
            return {PREDICTED_TAG_IDS: tf.where(real, tf.cast(tag_ids, tf.float32), -1.0)}

        return {"serving_default": serve_sentences.get_concrete_function(),
                TOKENS_SIGNATURE: serve_tokens.get_concrete_function(),
                EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
                EVAL_SIGNATURE: evaluate_examples.get_concrete_function()}


def _with_rank(value, rank: int, message: str):
    """`value` once its rank is `rank`; otherwise an error with `message` and the shape sent.

    A cond, not an Assert as a control dependency of an Identity: Grappler, specializing the
    function on the shape sent, let the string ops after such an Identity run (and fail with
    their own words) before the Assert did."""
    def refuse():
        failed = tf.debugging.Assert(False, [message + "; got shape", tf.shape(value)])
        with tf.control_dependencies([failed]):
            return tf.zeros([0] * rank, value.dtype)

    checked = tf.cond(tf.equal(tf.rank(value), rank), lambda: tf.reshape(value, tf.shape(value)[:rank]), refuse)
    checked.set_shape([None] * rank)
    return checked


def export_serving_model(model, tf_transform_output, *, tag_names: list[str], max_tokens: int, width: int,
                         use_chars: bool, export_dir: str) -> None:
    module = ServingModule(model, tf_transform_output, tag_names=tag_names, max_tokens=max_tokens, width=width,
                           use_chars=use_chars)
    warmup = ["", "EU rejects German call to boycott British lamb .", " ".join(["word"] * (max_tokens + 1))]
    save_serving_model(module, model, export_dir, [{SENTENCE: np.array(warmup, dtype=object)}])
