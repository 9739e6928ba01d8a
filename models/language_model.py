"""A recurrent language model over token ids (characters or words) and generation inside a graph.

`build_language_model`: embedding -> stacked LSTM/GRU/minGRU (per-step outputs) -> logits over the
vocabulary. Training is truncated backpropagation through time over fixed-length windows, each
window starting from a zero state (stateless windows: no state is carried between batches, so
windows can be shuffled and batches run on several workers; the model learns dependencies up to
the window length).

`Generator`: a tf.Module whose `generate` reads a prompt once and then produces `max_length`
tokens one at a time, carrying every layer's recurrent state from step to step (no re-reading of
the prefix), sampling from softmax(logits / temperature) restricted to the `top_k` most likely
tokens (0: all) with a stateless, seeded sampler. It is plain TensorFlow, so it exports in a
SavedModel and runs in TF Serving.

Id 0 is padding (masked, never generated). Prompts are right-padded with 0; every prompt needs
at least one real token (a task prepends its start-of-text id).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from rnnflow.models.mingru import MinGRU
from rnnflow.models.recurrent import recurrent_layers, recurrent_stack
from rnnflow.pipeline.config import ModelConfig

PAD_ID = 0


def build_language_model(vocab_size: int, model: ModelConfig, *, input_name: str = "token_ids") -> keras.Model:
    """[batch, steps] int64 token ids -> [batch, steps, vocab_size] next-token logits, through the
    shared recurrent stack read left to right. Dropout sits on each layer's inputs as its own
    layer, outside the recurrent cells, which the generator steps directly (and cuDNN keeps its
    kernel)."""
    if model.bidirectional:
        raise ValueError("a language model reads left to right: model.bidirectional must be false")
    inputs = keras.Input((None,), dtype="int64", name=input_name)
    x = keras.layers.Embedding(vocab_size, model.embedding_dim, mask_zero=True, name="embedding")(inputs)
    x = recurrent_stack(x, model, input_dropout=model.dropout, final_dropout=False)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(inputs, logits, name="language_model")


class Generator(tf.Module):
    """Generation with `model`'s weights, stepping its recurrent cells (see the module docstring)."""

    def __init__(self, model: keras.Model, max_length_limit: int = 10000):
        super().__init__()
        self.model = model
        self.embedding = model.get_layer("embedding")
        self.layers = recurrent_layers(model)
        self.logits = model.get_layer("logits")
        self.vocab_size = self.logits.units
        self.max_length_limit = max_length_limit

    def _initial_states(self, batch):
        states = []
        for layer in self.layers:
            size = layer.units
            count = 2 if isinstance(layer, keras.layers.LSTM) else 1
            states.append([tf.zeros([batch, size]) for _ in range(count)])
        return states

    def step(self, token_ids, states, real):
        """One step for every row: (next-token logits [batch, vocab], the new states). Rows where
        `real` is False (prompt padding) keep their states."""
        x = tf.gather(self.embedding.embeddings, token_ids)  # the layer's weights, without its mask
        new_states = []
        for layer, state in zip(self.layers, states):
            if isinstance(layer, MinGRU):
                x = layer.step(x, state[0])
                updated = [x]
            else:
                x, updated = layer.cell(x, state, training=False)
                updated = updated if isinstance(updated, (list, tuple)) else [updated]
            new_states.append([tf.where(real[:, None], u, s) for u, s in zip(updated, state)])
        return self.logits(x), new_states

    def _flat(self, states):
        return [s for layer_states in states for s in layer_states]

    def _nested(self, flat):
        nested, i = [], 0
        for layer in self.layers:
            count = 2 if isinstance(layer, keras.layers.LSTM) else 1
            nested.append(list(flat[i:i + count]))
            i += count
        return nested

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.int64)])
    def generate(self, prompt_ids, max_length, temperature, top_k, seed):
        """(generated ids [batch, max_length] int64, their log-probabilities [batch, max_length])."""
        checks = [
            tf.debugging.Assert(temperature > 0, [
                "temperature must be above 0 (use a small value such as 0.05 for near-greedy output); got",
                temperature]),
            tf.debugging.Assert((max_length >= 0) & (max_length <= self.max_length_limit), [
                f"max_length must be in 0..{self.max_length_limit}; got", max_length]),
            tf.debugging.Assert(top_k >= 0, ["top_k must be 0 (all tokens) or more; got", top_k]),
            tf.debugging.Assert(tf.reduce_all(tf.reduce_any(prompt_ids != PAD_ID, axis=1)), [
                "every prompt needs at least one token"]),
        ]
        with tf.control_dependencies(checks):
            prompt_ids, max_length = tf.identity(prompt_ids), tf.identity(max_length)
        batch = tf.shape(prompt_ids)[0]
        lengths = tf.reduce_sum(tf.cast(prompt_ids != PAD_ID, tf.int32), axis=1)
        states = self._initial_states(batch)
        logits = tf.zeros([batch, self.vocab_size])

        # Read the prompt once; each row's logits are those after its last real token.
        def read(t, logits, *flat):
            real = t < lengths
            step_logits, new = self.step(prompt_ids[:, t], self._nested(flat), real)
            return (t + 1, tf.where(real[:, None], step_logits, logits), *self._flat(new))

        _, logits, *flat = tf.while_loop(lambda t, *_: t < tf.shape(prompt_ids)[1], read,
                                         (tf.constant(0), logits, *self._flat(states)))
        k = tf.where(top_k > 0, tf.minimum(top_k, self.vocab_size - 1), self.vocab_size - 1)
        never = tf.one_hot(PAD_ID, self.vocab_size, on_value=-1e9, off_value=0.0)
        everyone = tf.ones([batch], tf.bool)

        def generate_one(t, logits, ids, log_probs, *flat):
            scaled = logits / temperature + never
            kth = tf.math.top_k(scaled, k=k).values[:, -1:]
            scaled = tf.where(scaled < kth, -1e9, scaled)
            token = tf.random.stateless_categorical(scaled, 1, seed=tf.stack([seed, tf.cast(t, tf.int64)]),
                                                    dtype=tf.int64)[:, 0]
            log_prob = tf.gather(tf.nn.log_softmax(scaled), token, batch_dims=1)
            step_logits, new = self.step(token, self._nested(flat), everyone)
            return (t + 1, step_logits, ids.write(t, token), log_probs.write(t, log_prob), *self._flat(new))

        ids = tf.TensorArray(tf.int64, size=max_length)
        log_probs = tf.TensorArray(tf.float32, size=max_length)
        _, _, ids, log_probs, *_ = tf.while_loop(lambda t, *_: t < max_length, generate_one,
                                                 (tf.constant(0), logits, ids, log_probs, *flat))
        # [steps, batch] -> [batch, steps]; an empty TensorArray of unknown batch cannot stack.
        ids = tf.cond(max_length > 0, ids.stack, lambda: tf.zeros([0, batch], tf.int64))
        log_probs = tf.cond(max_length > 0, log_probs.stack, lambda: tf.zeros([0, batch]))
        return tf.transpose(ids), tf.transpose(log_probs)
