"""Encoder-decoder RNN with attention (translation), and its decoding in core TensorFlow ops.

`build_seq2seq`: {"source_ids", "target_in"} int32 [batch, steps] (0: padding; right-padded;
target_in starts with the start id) -> logits [batch, T, target_vocab] (float32), trained by
teacher forcing with a token-mean cross-entropy that ignores padding (`MaskedCrossEntropy`).
- Encoder (a nested `keras.Model` named "encoder"): embedding (mask_zero) -> the shared
  `recurrent_stack`, so its layers stay cuDNN-eligible and `portable_kernels` /
  `cudnn_eligibility` see them. The mask keeps step 0 of every row (`NonEmptyMask`): an
  all-padding source reaches the RNN as one padding step, not as a fully masked row, which the
  cuDNN kernel rejects (PITFALLS 4.2); attention still masks by the ids.
- Bridge: `recurrent_stack` returns per-step outputs only, so the decoder's initial states are
  tanh(W s) of the summary s = the forward output at the last real step (and, bidirectional, the
  backward output at step 0): the final hidden states, as Bahdanau et al.'s s0 = tanh(W h1<-).
- Decoder: `DecoderStep` owns one step with a Keras `LSTMCell`/`GRUCell` (the TF tutorial's
  `x, state = self.rnn(...)` unpacking breaks on Keras 3): embed -> [; previous attentional
  vector] (input feeding) -> cell -> attention over the encoder outputs (bahdanau: v.tanh(Wk m +
  Wq h); luong_dot: h.m; luong_general: h.Wm) -> attentional vector tanh(Wc[context; h]) ->
  logits (optionally tied to the target embedding). Teacher forcing runs `DecoderStep.step` over
  T in a `tf.scan` and projects all steps at once; decoding runs the same `step` and `logits`
  in a `tf.while_loop`, so greedy decoding is the model's argmax.

Decoding (`greedy_decode`, `beam_search`, `score`, and the `Translator` tf.Module that exports
them) is core TF only: no tensorflow-addons (`Addons>GatherTree` is absent from TF Serving),
no py_function. Pad and start ids are never generated. A hypothesis of row b has at most
min(max_length, floor(length_ratio * source_length + length_offset)) tokens, then the end token
is forced (with its model log-probability); an empty source gets just the end token. `lengths`
count tokens before the end token; ids hold the end token, then padding.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rnnflow.models.recurrent import JIT_COMPILE, make_optimizer, recurrent_stack
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

PAD_ID = 0
ATTENTIONS = ("bahdanau", "luong_dot", "luong_general")
DECODER_CELLS = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}
MAX_BEAM = 16  # beam_size must be in 1..MAX_BEAM
MAX_LENGTH = 1024  # max_length must be in 1..MAX_LENGTH
NEG = -1e9  # log-probability of an impossible token (finite: no inf - inf NaN)


@keras.saving.register_keras_serializable(package="rnnflow")
class NonEmptyMask(keras.layers.Layer):
    """Embeddings pass unchanged; their mask keeps step 0 of every row (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        return tf.identity(x)

    def compute_mask(self, x, mask=None):
        if mask is None:
            return None
        return keras.ops.concatenate([keras.ops.ones_like(mask[:, :1]), mask[:, 1:]], axis=1)


@keras.saving.register_keras_serializable(package="rnnflow")
class DecoderStep(keras.layers.Layer):
    """One decoder step, shared by teacher forcing and decoding: `start` (initial states, input
    feed, attention keys), `step` (tokens -> attentional vector, states, attention weights) and
    `logits` (attentional vectors -> float32 logits, dropout before the projection)."""

    def __init__(self, cell: str, units: int, target_vocab: int, embedding_dim: int, memory_width: int,
                 bidirectional: bool, attention: str = "bahdanau", input_feeding: bool = True,
                 tie_embeddings: bool = False, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.settings = dict(cell=cell, units=units, target_vocab=target_vocab, embedding_dim=embedding_dim,
                           memory_width=memory_width, bidirectional=bidirectional, attention=attention,
                           input_feeding=input_feeding, tie_embeddings=tie_embeddings, dropout=dropout)
        self.units, self.attention, self.input_feeding, self.tie = units, attention, input_feeding, tie_embeddings
        self.bidirectional, self.memory_width = bidirectional, memory_width
        self.embedding = keras.layers.Embedding(target_vocab, embedding_dim, name="target_embedding")
        self.cell = DECODER_CELLS[cell](units, name=f"decoder_{cell}")
        self.bridge = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}")
                       for i in range(2 if cell == "lstm" else 1)]
        # Keys: the memory mapped to the decoder width (luong_dot maps it only when widths differ).
        self.project_keys = attention != "luong_dot" or memory_width != units
        self.keys = keras.layers.Dense(units, use_bias=False, name="attention_keys") if self.project_keys else None
        if attention == "bahdanau":
            self.query = keras.layers.Dense(units, use_bias=False, name="attention_query")
            self.energy = keras.layers.Dense(1, use_bias=False, name="attention_energy")
        self.combine = keras.layers.Dense(units, activation="tanh", use_bias=False, name="attentional")
        self.drop = keras.layers.Dropout(dropout)
        if not tie_embeddings:
            self.output_layer = keras.layers.Dense(target_vocab, dtype="float32", name="output_logits")

    def build(self, input_shape=None):
        units, vocab = self.units, self.settings["target_vocab"]
        self.embedding.build((None,))
        self.cell.build((None, self.settings["embedding_dim"] + (units if self.input_feeding else 0)))
        for dense in self.bridge:
            dense.build((None, self.memory_width))
        if self.project_keys:
            self.keys.build((None, None, self.memory_width))
        if self.attention == "bahdanau":
            self.query.build((None, units))
            self.energy.build((None, None, units))
        self.combine.build((None, self.memory_width + units))
        if self.tie:
            self.output_bias = self.add_weight(shape=(vocab,), initializer="zeros", name="output_bias", dtype="float32")
        else:
            self.output_layer.build((None, units))

    def start(self, memory, source_mask):
        """memory [batch, S, W], source_mask [batch, S] bool -> (states, input feed, keys)."""
        lengths = tf.reduce_sum(tf.cast(source_mask, tf.int32), axis=1)
        summary = tf.gather(memory, tf.maximum(lengths - 1, 0), batch_dims=1)
        if self.bidirectional:  # [forward at the last real step; backward at step 0]
            half = self.memory_width // 2
            summary = tf.concat([summary[:, :half], memory[:, 0, half:]], axis=-1)
        states = [dense(summary) for dense in self.bridge]
        feed = tf.zeros([tf.shape(memory)[0], self.units], self.compute_dtype)
        return states, feed, self.keys(memory) if self.project_keys else memory

    def step(self, tokens, states, feed, memory, keys, source_mask):
        """tokens [batch] -> (attentional vector [batch, units], new states, attention weights
        [batch, S] float32, 0 on padding: all 0 for an empty source)."""
        x = self.embedding(tokens)
        if self.input_feeding:
            x = tf.concat([x, tf.cast(feed, x.dtype)], axis=-1)
        h, states = self.cell(x, list(states))
        if self.attention == "bahdanau":
            scores = self.energy(tf.tanh(keys + self.query(h)[:, tf.newaxis, :]))[..., 0]
        else:
            scores = tf.einsum("bsu,bu->bs", keys, tf.cast(h, keys.dtype))
        # float32 softmax; a finite floor, then zeroed padding, so an empty source gives no NaN.
        scores = tf.where(source_mask, tf.cast(scores, tf.float32), NEG)
        weights = tf.nn.softmax(scores, axis=-1) * tf.cast(source_mask, tf.float32)
        context = tf.einsum("bs,bsw->bw", tf.cast(weights, memory.dtype), memory)
        attentional = self.combine(tf.concat([tf.cast(context, h.dtype), h], axis=-1))
        return attentional, list(states), weights

    def logits(self, attentional, training=None):
        """Attentional vectors [..., units] -> float32 logits [..., target_vocab]."""
        x = self.drop(attentional, training=training)
        if not self.tie:
            return self.output_layer(x)
        matrix = tf.cast(self.embedding.embeddings, tf.float32)
        return tf.einsum("...u,vu->...v", tf.cast(x, tf.float32), matrix) + self.output_bias

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="rnnflow")
class TeacherForcing(keras.layers.Layer):
    """(target_in, memory, source_ids) -> logits [batch, T, vocab]: `DecoderStep.step` over the
    target tokens in a tf.scan (graph mode, any T), then `DecoderStep.logits` on all steps."""

    def __init__(self, **config):
        base = {k: config.pop(k) for k in list(config) if k in ("name", "dtype", "trainable")}
        super().__init__(**base)
        self.settings = config
        self.decoder_step = DecoderStep(**config, name="step")

    def build(self, target_in_shape, memory_shape, source_ids_shape):
        self.decoder_step.build()

    def call(self, target_in, memory, source_ids, training=None):
        mask = source_ids != PAD_ID
        states, feed, keys = self.decoder_step.start(memory, mask)

        def one(carry, tokens):
            attentional, states = carry
            attentional, states, _ = self.decoder_step.step(tokens, states, attentional, memory, keys, mask)
            return attentional, states

        attentional, _ = tf.scan(one, tf.transpose(target_in), initializer=(feed, states))
        return self.decoder_step.logits(tf.transpose(attentional, [1, 0, 2]), training=training)

    def compute_output_spec(self, target_in, memory, source_ids, training=None):
        return keras.KerasTensor((*target_in.shape, self.settings["target_vocab"]), dtype="float32")

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="rnnflow")
class MaskedCrossEntropy(keras.losses.Loss):
    """Mean over non-padding target tokens of the cross-entropy against labels smoothed over the
    vocabulary ((1 - e) one-hot + e uniform), computed in float32."""

    def __init__(self, label_smoothing: float = 0.1, name: str = "masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = tf.cast(y_true, tf.int32)
        log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32))
        nll = -tf.gather(log_probs, labels, batch_dims=2)
        loss = (1.0 - self.label_smoothing) * nll - self.label_smoothing * tf.reduce_mean(log_probs, axis=-1)
        mask = tf.cast(labels != PAD_ID, tf.float32)
        return tf.reduce_sum(loss * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="rnnflow")
def masked_accuracy(y_true, y_pred):
    """Token accuracy over non-padding targets."""
    labels = tf.cast(y_true, tf.int32)
    mask = tf.cast(labels != PAD_ID, tf.float32)
    hits = tf.cast(tf.argmax(y_pred, axis=-1, output_type=tf.int32) == labels, tf.float32)
    return tf.reduce_sum(hits * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def build_seq2seq(model: ModelConfig, training: TrainingConfig, *, source_vocab: int, target_vocab: int,
                  attention: str = "bahdanau", input_feeding: bool = True, tie_embeddings: bool = False,
                  label_smoothing: float = 0.1, steps_per_epoch: int | None = None) -> keras.Model:
    """The compiled teacher-forcing model (see the module docstring). The decoder is one layer of
    `model.units` (`model.layers`, `bidirectional`, `residual`, `layer_norm` shape the encoder);
    `model.dropout` applies between encoder layers, on its outputs and before the output layer.
    The fit target is the target shifted left: tokens then the end id, padded with 0."""
    if model.cell not in DECODER_CELLS:
        raise ValueError(f"model.cell must be one of {sorted(DECODER_CELLS)} for seq2seq; got {model.cell!r}")
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}; got {attention!r}")
    if tie_embeddings and model.units != model.embedding_dim:
        raise ValueError("tie_embeddings needs model.units == model.embedding_dim (the attentional vector is "
                         f"scored against the target embeddings); got model.units={model.units}, "
                         f"model.embedding_dim={model.embedding_dim}")
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    x = keras.layers.Embedding(source_vocab, model.embedding_dim, mask_zero=True, name="source_embedding")(source_ids)
    x = NonEmptyMask(name="non_empty_mask")(x)
    memory = recurrent_stack(x, model, input_dropout=model.input_dropout)
    encoder = keras.Model(source_ids, memory, name="encoder")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    logits = TeacherForcing(cell=model.cell, units=model.units, target_vocab=target_vocab,
                            embedding_dim=model.embedding_dim, memory_width=memory.shape[-1],
                            bidirectional=model.bidirectional, attention=attention, input_feeding=input_feeding,
                            tie_embeddings=tie_embeddings, dropout=model.dropout,
                            name="decoder")(target_in, encoder(source_ids), source_ids)
    seq2seq = keras.Model({"source_ids": source_ids, "target_in": target_in}, logits, name="seq2seq")
    seq2seq.compile(optimizer=make_optimizer(training, steps_per_epoch), loss=MaskedCrossEntropy(label_smoothing),
                    metrics=[masked_accuracy], jit_compile=JIT_COMPILE[training.jit_compile])
    return seq2seq


# ---------------------------------------------------------------------------
# Decoding: core TF ops, traceable in a tf.function (no Python loop over tensors).
# ---------------------------------------------------------------------------

def length_penalty(lengths, alpha):
    """GNMT's ((5 + length) / 6) ** alpha (alpha 0: no penalty); hypotheses rank by log p / this."""
    return ((5.0 + tf.cast(lengths, tf.float32)) / 6.0) ** tf.cast(alpha, tf.float32)


def _checked(value, name: str, low: int, high: int):
    """`value` (a Python int or an int scalar tensor) as int32, after checking low <= value <= high:
    a ValueError now for an int, an InvalidArgumentError when the graph runs for a tensor."""
    message = f"{name} must be in {low}..{high}"
    if isinstance(value, (int, np.integer)):
        if not low <= value <= high:
            raise ValueError(f"{message}; got {value}")
        return tf.constant(value, tf.int32)
    value = tf.cast(value, tf.int32)
    check = tf.debugging.Assert((value >= low) & (value <= high), [f"{message}; got", value])
    with tf.control_dependencies([check]):
        return tf.identity(value)


def _encode(model, source_ids, max_length, length_ratio, length_offset):
    """(decoder step, memory, keys, mask, initial states and feed, per-row token limit)."""
    source_ids = tf.cast(source_ids, tf.int32)
    decoder = model.get_layer("decoder").decoder_step
    memory = model.get_layer("encoder")(source_ids, training=False)
    mask = source_ids != PAD_ID
    states, feed, keys = decoder.start(memory, mask)
    source_lengths = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)
    limit = tf.minimum(tf.cast(tf.floor(length_ratio * source_lengths + length_offset), tf.int32), max_length)
    limit = tf.where(source_lengths > 0, tf.maximum(limit, 0), 0)  # an empty source: the end token only
    return decoder, memory, keys, mask, states, feed, limit


def _restrict(log_probs, t, limit, start_id, end_id):
    """Never pad or start; from step `limit` on, only the end token (`limit` broadcasts to rows)."""
    vocab = tf.range(tf.shape(log_probs)[-1])
    log_probs = tf.where((vocab == PAD_ID) | (vocab == start_id), NEG, log_probs)
    return tf.where((t >= limit)[..., tf.newaxis] & (vocab != end_id), NEG, log_probs)


def greedy_decode(model, source_ids, *, start_id: int, end_id: int, max_length=100, length_ratio: float = 2.0,
                  length_offset: float = 10.0) -> dict:
    """source_ids [batch, S] -> {"ids" [batch, L] int32, "lengths" [batch], "log_probs" [batch] (sum,
    end token included), "attention" [batch, L, S] float32 (0 after the end)}; L: steps run (the loop
    stops once every row has its end token)."""
    max_length = _checked(max_length, "max_length", 1, MAX_LENGTH)
    decoder, memory, keys, mask, states, feed, limit = _encode(model, source_ids, max_length, length_ratio,
                                                               length_offset)
    batch, max_steps = tf.shape(memory)[0], tf.maximum(tf.reduce_max(limit), 0) + 1

    def body(t, tokens, states, feed, finished, lengths, log_probs, ids, attention):
        feed, states, weights = decoder.step(tokens, states, feed, memory, keys, mask)
        step_log_probs = _restrict(tf.nn.log_softmax(decoder.logits(feed)), t, limit, start_id, end_id)
        token = tf.where(finished, PAD_ID, tf.argmax(step_log_probs, axis=-1, output_type=tf.int32))
        log_probs += tf.where(finished, 0.0, tf.gather(step_log_probs, token, batch_dims=1))
        lengths += tf.cast(~finished & (token != end_id), tf.int32)
        attention = attention.write(t, tf.where(finished[:, tf.newaxis], 0.0, weights))
        return (t + 1, token, states, feed, finished | (token == end_id), lengths, log_probs, ids.write(t, token),
                attention)

    def more(t, tokens, states, feed, finished, *_):
        return (t < max_steps) & ((t == 0) | ~tf.reduce_all(finished))

    start = (tf.constant(0), tf.fill([batch], tf.constant(start_id, tf.int32)), states, feed,
             tf.zeros([batch], tf.bool), tf.zeros([batch], tf.int32), tf.zeros([batch]),
             tf.TensorArray(tf.int32, size=0, dynamic_size=True), tf.TensorArray(tf.float32, size=0, dynamic_size=True))
    _, _, _, _, _, lengths, log_probs, ids, attention = tf.while_loop(more, body, start)
    return {"ids": tf.transpose(ids.stack()), "lengths": lengths, "log_probs": log_probs,
            "attention": tf.transpose(attention.stack(), [1, 0, 2])}


def beam_search(model, source_ids, *, start_id: int, end_id: int, beam_size=4, max_length=100, length_penalty_alpha=0.6,
                length_ratio: float = 2.0, length_offset: float = 10.0) -> dict:
    """source_ids [batch, S] -> {"ids" [batch, beam, L] int32, "scores" [batch, beam] (log p /
    `length_penalty`, best first), "log_probs" [batch, beam], "lengths" [batch, beam]}.

    Every step ranks all beam x vocabulary extensions by their penalized score and keeps the best
    `beam_size`. A finished hypothesis extends only with padding at zero cost, so its score is
    frozen while it competes. Slots with no hypothesis (fewer than beam_size exist) score -inf.
    The loop stops when every hypothesis has its end token. Partial hypotheses are ranked with
    the penalty too (as tf-addons' BeamSearchDecoder), so with alpha > 0 a beam of 1 may differ
    from greedy decoding; with alpha 0 it is greedy decoding."""
    # A value unknown to shape inference: a Python beam_size would give the loop's first state a
    # static beam width that top_k's (dynamic k) output then loses.
    beam = tf.compat.v1.placeholder_with_default(_checked(beam_size, "beam_size", 1, MAX_BEAM), [])
    max_length = _checked(max_length, "max_length", 1, MAX_LENGTH)
    decoder, memory, keys, mask, states, feed, limit = _encode(model, source_ids, max_length, length_ratio,
                                                               length_offset)
    batch, vocab_size = tf.shape(memory)[0], decoder.settings["target_vocab"]
    memory, keys, mask = (tf.repeat(x, beam, axis=0) for x in (memory, keys, mask))
    states, feed = [tf.repeat(s, beam, axis=0) for s in states], tf.repeat(feed, beam, axis=0)
    max_steps = tf.maximum(tf.reduce_max(limit), 0) + 1  # the end token is forced at the limit
    vocab = tf.range(vocab_size)
    pad_only = tf.where(vocab == PAD_ID, 0.0, NEG)
    offsets = tf.range(batch)[:, tf.newaxis] * beam

    def body(t, tokens, states, feed, log_probs, lengths, finished, ids):
        feed, states, _ = decoder.step(tokens, states, feed, memory, keys, mask)
        step_log_probs = tf.reshape(tf.nn.log_softmax(decoder.logits(feed)), [batch, beam, vocab_size])
        step_log_probs = _restrict(step_log_probs, t, limit[:, tf.newaxis], start_id, end_id)
        total = log_probs[..., tf.newaxis] + tf.where(finished[..., tf.newaxis], pad_only, step_log_probs)
        grown = lengths[..., tf.newaxis] + tf.cast(~finished[..., tf.newaxis] & (vocab != end_id), tf.int32)
        ranked = total / length_penalty(grown, length_penalty_alpha)
        _, best = tf.math.top_k(tf.reshape(ranked, [batch, -1]), k=beam)
        parent, token = best // vocab_size, best % vocab_size
        log_probs = tf.gather(tf.reshape(total, [batch, -1]), best, batch_dims=1)
        lengths = tf.gather(tf.reshape(grown, [batch, -1]), best, batch_dims=1)
        dead = log_probs < NEG / 2  # an impossible extension: no hypothesis in this slot
        token = tf.where(dead, PAD_ID, token)
        finished = tf.gather(finished, parent, batch_dims=1) | (token == end_id) | dead
        ids = tf.where(tf.range(max_steps) == t, token[..., tf.newaxis], tf.gather(ids, parent, batch_dims=1))
        flat_parent = tf.reshape(parent + offsets, [-1])
        states = [tf.gather(s, flat_parent) for s in states]
        return t + 1, tf.reshape(token, [-1]), states, tf.gather(feed, flat_parent), log_probs, lengths, finished, ids

    def more(t, tokens, states, feed, log_probs, lengths, finished, ids):
        return (t < max_steps) & ((t == 0) | ~tf.reduce_all(finished))

    first = tf.where(tf.range(beam) == 0, 0.0, NEG)  # one live hypothesis to start with
    start = (tf.constant(0), tf.fill([batch * beam], tf.constant(start_id, tf.int32)), states, feed,
             tf.tile(first[tf.newaxis], [batch, 1]), tf.zeros([batch, beam], tf.int32),
             tf.zeros([batch, beam], tf.bool), tf.zeros([batch, beam, max_steps], tf.int32))
    t, _, _, _, log_probs, lengths, _, ids = tf.while_loop(more, body, start)
    valid = log_probs > NEG / 2
    scores = tf.where(valid, log_probs / length_penalty(lengths, length_penalty_alpha), -np.inf)
    scores, order = tf.math.top_k(scores, k=beam)
    pick = lambda x: tf.gather(x, order, batch_dims=1)  # noqa: E731
    return {"ids": pick(ids)[:, :, :t], "scores": scores,
            "log_probs": pick(tf.where(valid, log_probs, -np.inf)), "lengths": pick(tf.where(valid, lengths, 0))}


def score(model, source_ids, target_ids, *, start_id: int):
    """Log-likelihood [batch] of target_ids [batch, T] (tokens then the end id, right-padded with 0)
    given source_ids, by teacher forcing: the sum of the tokens' log-probabilities (end included),
    padding masked. The decoders' log_probs of a hypothesis equal this score of its ids."""
    source_ids, target_ids = tf.cast(source_ids, tf.int32), tf.cast(target_ids, tf.int32)
    start = tf.fill([tf.shape(target_ids)[0], 1], tf.constant(start_id, tf.int32))
    target_in = tf.concat([start, target_ids[:, :-1]], axis=1)
    logits = model({"source_ids": source_ids, "target_in": target_in}, training=False)
    picked = tf.gather(tf.nn.log_softmax(tf.cast(logits, tf.float32)), target_ids, batch_dims=2)
    return tf.reduce_sum(tf.where(target_ids != PAD_ID, picked, 0.0), axis=1)


class Translator(tf.Module):
    """`greedy`, `beam_search` and `score` as tf.functions over int32 ids returning dicts, for
    `tf.saved_model.save(translator, path, signatures={...})` and TF Serving. Exporting from a GPU
    process: save inside `rnnflow.models.recurrent.portable_kernels(model)` (no CudnnRNNV3)."""

    def __init__(self, model: keras.Model, *, start_id: int, end_id: int, length_ratio: float = 2.0,
                 length_offset: float = 10.0):
        super().__init__()
        self.model = model
        self.options = dict(start_id=start_id, end_id=end_id, length_ratio=length_ratio, length_offset=length_offset)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids"),
                                  tf.TensorSpec([], tf.int32, name="max_length")])
    def greedy(self, source_ids, max_length):
        return greedy_decode(self.model, source_ids, max_length=max_length, **self.options)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids"),
                                  tf.TensorSpec([], tf.int32, name="beam_size"),
                                  tf.TensorSpec([], tf.int32, name="max_length"),
                                  tf.TensorSpec([], tf.float32, name="length_penalty")])
    def beam_search(self, source_ids, beam_size, max_length, length_penalty):
        return beam_search(self.model, source_ids, beam_size=beam_size, max_length=max_length,
                           length_penalty_alpha=length_penalty, **self.options)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="target_ids")])
    def score(self, source_ids, target_ids):
        return {"log_likelihood": score(self.model, source_ids, target_ids, start_id=self.options["start_id"])}
