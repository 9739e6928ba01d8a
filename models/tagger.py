"""A recurrent sequence tagger (many-to-many: one tag per token), e.g. for named entities.

`build_tagger`: word embeddings, optionally concatenated with a character-level encoding of each
token (a CNN or a Bi-LSTM over its characters, which lets the model read unseen words), then the
configured recurrent stack with per-step outputs, then per-step tag scores ("potentials"). The
output layer is either plain (`decoder: softmax`: each step's tag is the argmax of its softmax,
trained with masked cross-entropy) or a linear-chain CRF (`decoder: crf`: the layer owns the tag
transition scores; trained on the CRF log-likelihood, decoded with Viterbi, both in TF ops, see
`rnnflow.models.crf`).

Inputs are right-padded with id 0: word ids [batch, steps], character ids [batch, steps,
word_chars]. Labels are tag ids [batch, steps] with -1 at padded steps; the losses and the token
accuracy read the padding from there, so the model's output carries no Keras mask.

`decode(model, potentials, lengths)` gives the tags and their scores for serving and for the
Trainer's reference predictions alike.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from rnnflow.models import crf
from rnnflow.models.recurrent import JIT_COMPILE, make_optimizer, recurrent_stack, word_embedding
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

WORD_IDS = "word_ids"
CHAR_IDS = "char_ids"
PAD_LABEL = -1
CHAR_ENCODERS = ("none", "cnn", "lstm")
DECODERS = ("softmax", "crf")


@keras.saving.register_keras_serializable(package="rnnflow")
class CharEncoder(keras.layers.Layer):
    """[batch, steps, word_chars] character ids -> [batch, steps, features]: a character
    embedding, then a width-3 convolution with max-pooling over the characters (`cnn`), or the
    final states of a Bi-LSTM over them (`lstm`, padding masked)."""

    def __init__(self, vocab_size: int, dim: int, units: int, kind: str, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("cnn", "lstm"):
            raise ValueError(f"char encoder {kind!r}: one of cnn, lstm")
        self.vocab_size, self.dim, self.units, self.kind = vocab_size, dim, units, kind
        self.embedding = keras.layers.Embedding(vocab_size, dim, mask_zero=kind == "lstm", name="char_embedding")
        if kind == "cnn":
            self.encoder = keras.layers.Conv1D(units, 3, padding="same", activation="relu", name="char_cnn")
        else:
            self.encoder = keras.layers.Bidirectional(keras.layers.LSTM(units), name="char_lstm")

    def call(self, char_ids):
        shape = tf.shape(char_ids)
        flat = tf.reshape(char_ids, [-1, shape[2]])  # one row per token
        x = self.embedding(flat)
        if self.kind == "cnn":
            real = tf.cast(flat != 0, x.dtype)[:, :, None]
            encoded = self.encoder(x * real)
            # Max over the real characters only (padding would otherwise contribute relu(bias)).
            encoded = tf.reduce_max(encoded + (real - 1.0) * 1e4, axis=1) * tf.reduce_max(real, axis=1)
        else:
            encoded = self.encoder(x, mask=flat != 0)
        return tf.reshape(encoded, [shape[0], shape[1], encoded.shape[-1]])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim, "units": self.units,
                "kind": self.kind}


@keras.saving.register_keras_serializable(package="rnnflow")
class WordFeatures(keras.layers.Layer):
    """[word embeddings, character encodings] concatenated, keeping the words' mask (Keras'
    Concatenate cannot merge a mask with an unmasked input of unknown length)."""

    def call(self, inputs):
        return tf.concat(inputs, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if mask else None


@keras.saving.register_keras_serializable(package="rnnflow")
class TagScores(keras.layers.Layer):
    """The tag potentials, passed through; with `crf`, the layer also owns the [tags, tags]
    transition scores (transitions[i, j]: tag j after tag i). Ends the Keras mask (see module
    docstring)."""

    def __init__(self, num_tags: int, use_crf: bool, **kwargs):
        super().__init__(**kwargs)
        self.num_tags, self.use_crf = num_tags, use_crf

    def build(self, input_shape):
        if self.use_crf:
            self.transitions = self.add_weight(name="transitions", shape=(self.num_tags, self.num_tags),
                                               initializer="zeros")

    def call(self, potentials):
        return tf.identity(potentials)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags, "use_crf": self.use_crf}


def label_lengths(labels: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(labels >= 0, tf.int32), axis=1)


def masked_cross_entropy(labels, potentials):
    """[batch] mean cross-entropy over each sentence's real steps."""
    labels = tf.cast(labels, tf.int32)
    real = tf.cast(labels >= 0, potentials.dtype)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), potentials)
    return tf.reduce_sum(losses * real, axis=1) / tf.maximum(tf.reduce_sum(real, axis=1), 1.0)


def crf_loss(scores_layer: TagScores):
    def loss(labels, potentials):
        """[batch] negative CRF log-likelihood per real step."""
        labels = tf.cast(labels, tf.int32)
        lengths = label_lengths(labels)
        likelihood = crf.log_likelihood(potentials, tf.maximum(labels, 0), lengths, scores_layer.transitions)
        return -likelihood / tf.maximum(tf.cast(lengths, potentials.dtype), 1.0)
    loss.__name__ = "crf_loss"
    return loss


class TokenAccuracy(keras.metrics.Mean):
    """The share of real (unpadded) tokens whose argmax tag is right."""

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, labels, potentials, sample_weight=None):
        labels = tf.cast(labels, tf.int32)
        right = tf.cast(tf.equal(tf.argmax(potentials, axis=-1, output_type=tf.int32), labels), tf.float32)
        return super().update_state(right, sample_weight=tf.cast(labels >= 0, tf.float32))


def build_tagger(model: ModelConfig, training: TrainingConfig, *, vocab_size: int, num_tags: int,
                 char_vocab_size: int, word_chars: int, char_encoder: str = "cnn", char_dim: int = 25,
                 char_units: int = 100, decoder: str = "crf", steps_per_epoch: int | None = None,
                 oov_id: int | None = None, vectors=None) -> keras.Model:
    """{word_ids [batch, steps], char_ids [batch, steps, word_chars] (unless char_encoder is
    none)} -> potentials [batch, steps, num_tags] float32."""
    if char_encoder not in CHAR_ENCODERS:
        raise ValueError(f"char_encoder {char_encoder!r}: one of {', '.join(CHAR_ENCODERS)}")
    if decoder not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: one of {', '.join(DECODERS)}")
    word_ids = keras.Input(shape=(None,), dtype="int64", name=WORD_IDS)
    inputs = {WORD_IDS: word_ids}
    x = word_embedding(word_ids, model, vocab_size=vocab_size, oov_id=oov_id, vectors=vectors)
    if char_encoder != "none":
        char_ids = keras.Input(shape=(None, word_chars), dtype="int64", name=CHAR_IDS)
        inputs[CHAR_IDS] = char_ids
        characters = CharEncoder(char_vocab_size, char_dim, char_units, char_encoder, name="char_encoder")(char_ids)
        x = WordFeatures(name="word_and_chars")([x, characters])
    x = recurrent_stack(x, model, input_dropout=model.input_dropout or model.dropout)
    potentials = keras.layers.Dense(num_tags, dtype="float32", name="potentials")(x)
    scores = TagScores(num_tags, decoder == "crf", name="tag_scores")
    tagger = keras.Model(inputs, scores(potentials), name="sequence_tagger")
    tagger.compile(optimizer=make_optimizer(training, steps_per_epoch),
                   loss=crf_loss(scores) if decoder == "crf" else masked_cross_entropy,
                   metrics=[TokenAccuracy()], jit_compile=JIT_COMPILE[training.jit_compile])
    return tagger


def decode(model: keras.Model, potentials: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(tag ids [batch, steps] int64, each tag's softmax probability [batch, steps]); padded
    steps get tag 0 and score 0. Viterbi when the model has a CRF, else the per-step argmax."""
    scores_layer = model.get_layer("tag_scores")
    real = tf.sequence_mask(lengths, tf.shape(potentials)[1])
    if scores_layer.use_crf:
        tags, _ = crf.viterbi_decode(potentials, lengths, tf.convert_to_tensor(scores_layer.transitions))
    else:
        tags = tf.argmax(potentials, axis=-1, output_type=tf.int32)
    tags = tf.where(real, tags, 0)
    probabilities = tf.gather(tf.nn.softmax(potentials), tags, batch_dims=2)
    return tf.cast(tags, tf.int64), tf.where(real, probabilities, 0.0)
