"""Transform's preprocessing_fn for language modeling: a window's text -> `token_ids` [batch,
(tokens)] through the TFT vocabulary (the `vocab_size` most frequent tokens of the train split
seen at least `min_frequency` times), offset by FIRST_ID so 0 pads; every other token gets the
single out-of-vocabulary id after the vocabulary. Serving tokenizes prompts and texts with this
same graph.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from rnnflow.components.language_model.features import TEXT
from rnnflow.components.language_model.schema import FIRST_ID, TOKEN_IDS, TOKEN_VOCABULARY
from rnnflow.pipeline.config import parse_config

OOV_BUCKETS = 1
# TFT's text vocabulary files cannot hold tokens with line breaks (it drops them), so the
# character tokens for line breaks go through the vocabulary as these symbols (U+2424, U+240D)
# and are turned back on decoding. (A text's own U+2424 or U+240D decodes as a line break.)
LINE_BREAKS = {"\n": "\u2424", "\r": "\u240d"}


def preprocessing_fn(inputs, custom_config):
    task = parse_config(custom_config["config"]).task
    return {TOKEN_IDS: encode(dense_text(inputs[TEXT]), task)}


def dense_text(feature) -> tf.Tensor:
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(tf.sparse.reset_shape(feature, [feature.dense_shape[0], 1]), default_value="")
    return tf.reshape(feature, [-1])


def tokenize(text: tf.Tensor, tokenizer: str) -> tf.RaggedTensor:
    """Characters (invalid UTF-8 replaced by U+FFFD), or words split at spaces."""
    if tokenizer == "char":
        characters = tf.strings.unicode_split(
            tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace"), "UTF-8")
        for line_break, symbol in LINE_BREAKS.items():
            characters = tf.strings.regex_replace(characters, line_break, symbol)
        return characters
    return tf.strings.split(text)


def encode(text: tf.Tensor, task: dict) -> tf.RaggedTensor:
    return tft.compute_and_apply_vocabulary(
        tokenize(text, task.tokenizer), top_k=task.vocab_size, frequency_threshold=task.min_frequency,
        num_oov_buckets=OOV_BUCKETS, vocab_filename=TOKEN_VOCABULARY) + FIRST_ID


def vocabulary(tf_transform_output) -> list[str]:
    """The token of each id: "" for padding, the vocabulary, U+FFFD for the OOV id."""
    symbols = {symbol: line_break for line_break, symbol in LINE_BREAKS.items()}
    tokens = [t.decode("utf-8", errors="replace") for t in tf_transform_output.vocabulary_by_name(TOKEN_VOCABULARY)]
    return [""] + [symbols.get(t, t) for t in tokens] + ["\ufffd"] * OOV_BUCKETS
