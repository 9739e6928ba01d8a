"""Transform's preprocessing_fn for text classification.

Everything here runs inside the TF graph that Transform saves and the Trainer
embeds in the exported model, so serving tokenizes exactly as training did.
Only tensorflow-text ops that TF Serving has bundled since 2.2 are used
(normalize/case-fold UTF-8, Unicode script tokenizer; character splitting is a
core op).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

from rnnflow.components.text_classification.schema import (
    EMPTY_TEXT_ID, FIRST_VOCAB_ID, LABEL_ID, LABEL_VALUES, LABEL_VOCABULARY, PAD_ID, TOKEN_IDS, TOKEN_VOCABULARY)
from rnnflow.pipeline.config import parse_config

_HTML_LINE_BREAK = r"<br\s*/?>"


def preprocessing_fn(inputs, custom_config):
    """Raw {text, label} -> {token_ids [batch, (tokens)] ragged int64, label_id [batch] int64}."""
    config = parse_config(custom_config["config"])
    outputs = {TOKEN_IDS: encode_text(_dense(inputs[config.data.text_column], ""), config.task)}
    outputs[LABEL_ID] = tft.compute_and_apply_vocabulary(
        label_text(_dense(inputs[config.data.label_column], "")),
        # Reserving the sorted class names fixes class id i to the i-th sorted class,
        # whatever the class frequencies; the evaluation config relies on it.
        reserved_tokens=custom_config["input"]["details"][LABEL_VALUES],
        vocab_filename=LABEL_VOCABULARY, default_value=-1)
    return outputs


def normalize_text(text: tf.Tensor) -> tf.Tensor:
    """Invalid UTF-8 -> U+FFFD, NFKC, Unicode case folding, HTML line breaks -> spaces."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    text = tf_text.normalize_utf8(text, "NFKC")
    text = tf_text.case_fold_utf8(text)
    return tf.strings.regex_replace(text, _HTML_LINE_BREAK, " ")


def tokenize(text: tf.Tensor, tokenizer: str) -> tf.RaggedTensor:
    """Word tokens (split at whitespace and script changes, so punctuation is its own token) or characters."""
    if tokenizer == "char":
        return tf.strings.unicode_split(text, "UTF-8")
    return tf_text.UnicodeScriptTokenizer().tokenize(text)


def encode_text(text: tf.Tensor, task) -> tf.RaggedTensor:
    """Normalize, tokenize, truncate to max_tokens and map through the vocabulary: one row of
    token ids per text, as long as the text (no padding; batches are padded on the right to
    their own longest row by the Trainer's input pipeline and by the serving graph).

    An empty text becomes a single EMPTY_TEXT_ID token, so no row is fully masked (a fully
    masked row breaks cuDNN and makes the prediction depend only on the bias).
    """
    tokens = tokenize(normalize_text(text), task.tokenizer)[:, :task.max_tokens]
    ids = tft.compute_and_apply_vocabulary(
        tokens, top_k=task.vocab_size, frequency_threshold=task.min_frequency,
        num_oov_buckets=task.oov_buckets, vocab_filename=TOKEN_VOCABULARY) + FIRST_VOCAB_ID
    is_empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
    empty_marker = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(is_empty)], tf.constant(EMPTY_TEXT_ID, tf.int64)), is_empty)
    return tf.concat([ids, empty_marker], axis=1)


def pad_to_longest(token_ids) -> tf.Tensor:
    """A batch of token id rows -> [batch, longest row] int64, right-padded with PAD_ID (so
    masks stay right-padded and cuDNN-eligible). Dense input passes through."""
    if isinstance(token_ids, tf.RaggedTensor):
        return token_ids.to_tensor(default_value=PAD_ID)
    return token_ids


def label_text(label: tf.Tensor) -> tf.Tensor:
    """Labels as strings: CSV columns of 0/1 arrive as integers, and floats like 1.0 as floats."""
    if label.dtype.is_floating:
        label = tf.cast(label, tf.int64)
    if label.dtype.is_integer:
        return tf.strings.as_string(label)
    return tf.strings.strip(label)


def vocabulary_size(tf_transform_output, oov_buckets: int) -> int:
    """Number of token ids the embedding must cover: reserved ids, vocabulary and OOV buckets."""
    return FIRST_VOCAB_ID + tf_transform_output.vocabulary_size_by_name(TOKEN_VOCABULARY) + oov_buckets


def _dense(feature, default):
    """[batch] tensor from a FixedLen [batch] / [batch, 1] feature or a VarLen SparseTensor."""
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(
            tf.sparse.reset_shape(feature, [feature.dense_shape[0], 1]), default_value=default)
    if feature.shape.rank == 2:
        feature = tf.squeeze(feature, axis=1)
    return feature
