"""The serving SavedModel of a language model: generation and scoring inside the graph.

Signatures:
- `serving_default`: `prompt` string [batch], and the scalars `max_length` int32 (0 to
  `task.max_generate`), `temperature` float32 (> 0), `top_k` int32 (0: every token) and `seed`
  int64 -> `text` string [batch] (the continuation), `token_ids` int64 [batch, max_length],
  `log_probs` float32 [batch, max_length] (each sampled token's log-probability under the
  sampling distribution), `unknown_tokens` int32 [batch] (prompt tokens outside the vocabulary:
  they are read as the out-of-vocabulary token, as rare tokens were in training). The prompt is
  read once and the recurrent state carried step by step (`rnnflow.models.language_model`); an
  empty prompt starts from a line break. Bad settings fail the request with a message naming them.
- `score`: `text` string [batch] -> `log_likelihood` float32 [batch] (nats, of every token after
  the first given the ones before), `tokens` int32 [batch] (tokens predicted), `nats_per_token`
  float32 [batch] (0 when no token is predicted);
- `serving_examples`: serialized tf.Examples (their `text`) -> what `score` answers;
- `evaluation_examples`: serialized tf.Examples -> `scores` float32 [batch, 2] (log-likelihood,
  tokens), which TFMA's cross-entropy metrics sum.

Saved with `tf.saved_model.save` on a `tf.Module` holding the Keras 3 model and Transform's
(tf_keras) layer, which never meet inside one Keras model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from rnnflow.components.language_model import preprocessing
from rnnflow.components.language_model.features import TEXT, feature_spec
from rnnflow.components.language_model.schema import (EVAL_SIGNATURE, EXAMPLES_SIGNATURE, LOG_LIKELIHOOD,
                                                    SCORE_SIGNATURE, SCORES, TOKEN_IDS)
from rnnflow.components.common.run_facts import EXAMPLES_INPUT
from rnnflow.components.training.trainer import as_raw_feature, save_serving_model
from rnnflow.models.language_model import Generator



def score_ids(model, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """ids [batch, steps] (right-padded with 0) -> (log-likelihood [batch] of every token after
    the first, tokens predicted [batch])."""
    ids = tf.pad(ids, [[0, 0], [0, tf.maximum(2 - tf.shape(ids)[1], 0)]])
    log_probs = tf.nn.log_softmax(model(ids[:, :-1], training=False))
    targets = ids[:, 1:]
    real = targets != 0
    picked = tf.gather(log_probs, targets, batch_dims=2)
    return (tf.reduce_sum(tf.where(real, picked, 0.0), axis=1),
            tf.reduce_sum(tf.cast(real, tf.int32), axis=1))


def score_outputs(log_likelihood, tokens) -> dict:
    return {LOG_LIKELIHOOD: log_likelihood, "tokens": tokens,
            "nats_per_token": tf.where(tokens > 0, -log_likelihood / tf.cast(tf.maximum(tokens, 1), tf.float32), 0.0)}


class ServingModule(tf.Module):
    def __init__(self, model, tf_transform_output, *, tokenizer: str, max_generate: int):
        super().__init__()
        self.model = model
        self.generator = Generator(model, max_length_limit=max_generate)
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.raw_spec = tf_transform_output.raw_feature_spec()[TEXT]
        vocabulary = preprocessing.vocabulary(tf_transform_output)
        self.tokens = tf.constant(vocabulary)
        self.oov_id = len(vocabulary) - 1
        self.separator = "" if tokenizer == "char" else " "

    def encode(self, text) -> tf.RaggedTensor:
        return self.tft_layer({TEXT: as_raw_feature(text, self.raw_spec)})[TOKEN_IDS]

    def score(self, text) -> dict:
        return score_outputs(*score_ids(self.model, self.encode(text).to_tensor(0)))

    def signatures(self) -> dict:
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt"),
                                      tf.TensorSpec([], tf.int32, name="max_length"),
                                      tf.TensorSpec([], tf.float32, name="temperature"),
                                      tf.TensorSpec([], tf.int32, name="top_k"),
                                      tf.TensorSpec([], tf.int64, name="seed")])
        def generate(prompt, max_length, temperature, top_k, seed):
            ids = self.encode(tf.where(prompt == "", "\n", prompt))
            unknown = tf.reduce_sum(tf.cast(ids == self.oov_id, tf.int32), axis=1)
            generated, log_probs = self.generator.generate(ids.to_tensor(0), max_length, temperature, top_k, seed)
            text = tf.strings.reduce_join(tf.gather(self.tokens, generated), axis=1, separator=self.separator)
            return {"text": text, "token_ids": generated, "log_probs": log_probs, "unknown_tokens": unknown}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT)])
        def score(text):
            return self.score(text)

        def parsed(examples):
            return tf.io.parse_example(examples, feature_spec())[TEXT]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def score_examples(examples):
            return self.score(parsed(examples))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def evaluate_examples(examples):
            log_likelihood, tokens = score_ids(self.model, self.encode(parsed(examples)).to_tensor(0))
            return {SCORES: tf.stack([log_likelihood, tf.cast(tokens, tf.float32)], axis=1)}

        return {"serving_default": generate.get_concrete_function(),
                SCORE_SIGNATURE: score.get_concrete_function(),
                EXAMPLES_SIGNATURE: score_examples.get_concrete_function(),
                EVAL_SIGNATURE: evaluate_examples.get_concrete_function()}


def export_serving_model(model, tf_transform_output, *, tokenizer: str, max_generate: int, window: int,
                         export_dir: str) -> None:
    module = ServingModule(model, tf_transform_output, tokenizer=tokenizer, max_generate=max_generate)
    prompts = np.array(["", "The "], dtype=object)
    settings = {"max_length": np.int32(min(window, max_generate)), "temperature": np.float32(1.0),
                "top_k": np.int32(0), "seed": np.int64(0)}
    save_serving_model(module, model, export_dir, {
        "serving_default": [{"prompt": prompts, **settings}],
        SCORE_SIGNATURE: [{TEXT: np.array(["", "The end.", "x" * (4 * window)], dtype=object)}]})
