"""Transform's preprocessing_fn for sequence labeling, in the graph the exported model embeds.

Per sentence (truncated to `task.max_tokens` tokens):
- `word_ids` [batch, (tokens)]: the word vocabulary's ids (lowercased, digits as 0, when
  `task.lowercase`), offset by FIRST_ID so 0 pads;
- `char_ids` [batch, (tokens * max_word_chars)]: each token's first `max_word_chars` characters
  (case kept) through the character vocabulary, offset by FIRST_ID, each token padded with 0 to
  `max_word_chars` (the Trainer and serving reshape to [batch, tokens, max_word_chars]);
- `tag_ids` [batch, (tokens)]: the tag's index in the input report's sorted tag list.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

from rnnflow.components.sequence_labeling.features import TAGS, TOKENS
from rnnflow.components.sequence_labeling.schema import (CHAR_VOCABULARY, FIRST_ID, TAG_IDS, TAG_LIST, TAG_VOCABULARY,
                                                       WORD_VOCABULARY)
from rnnflow.models.tagger import CHAR_IDS, WORD_IDS
from rnnflow.pipeline.config import parse_config


def preprocessing_fn(inputs, custom_config):
    task = parse_config(custom_config["config"]).task
    tokens = as_ragged(inputs[TOKENS])[:, :task.max_tokens]
    outputs = encode_tokens(tokens, task)
    tags = as_ragged(inputs[TAGS])[:, :task.max_tokens]
    outputs[TAG_IDS] = tft.compute_and_apply_vocabulary(
        tags, reserved_tokens=custom_config["input"]["details"][TAG_LIST], vocab_filename=TAG_VOCABULARY,
        default_value=-1)
    return outputs


def as_ragged(feature) -> tf.RaggedTensor:
    """[batch, (values)] from a VarLen SparseTensor (or a dense [batch, n] tensor)."""
    if isinstance(feature, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(feature)
    if isinstance(feature, tf.RaggedTensor):
        return feature
    return tf.RaggedTensor.from_tensor(feature)


def word_form(tokens: tf.RaggedTensor, lowercase: bool) -> tf.RaggedTensor:
    """Invalid UTF-8 -> U+FFFD; with `lowercase`, case-folded and every digit 0."""
    words = tf.strings.unicode_transcode(tokens, "UTF-8", "UTF-8", errors="replace")
    if lowercase:
        words = tf.strings.regex_replace(tf_text.case_fold_utf8(words), r"\d", "0")
    return words


def encode_tokens(tokens: tf.RaggedTensor, task: dict) -> dict:
    """{word_ids, char_ids} of [batch, (tokens)] token strings (see the module docstring)."""
    word_ids = tft.compute_and_apply_vocabulary(
        word_form(tokens, task.lowercase), top_k=task.vocab_size, frequency_threshold=task.min_frequency,
        num_oov_buckets=task.oov_buckets, vocab_filename=WORD_VOCABULARY) + FIRST_ID
    width = task.max_word_chars
    valid = tf.strings.unicode_transcode(tokens.flat_values, "UTF-8", "UTF-8", errors="replace")
    chars = tf.strings.unicode_split(valid, "UTF-8")[:, :width]  # [all tokens, (chars)]
    char_ids = tft.compute_and_apply_vocabulary(
        chars.flat_values, frequency_threshold=task.min_frequency, num_oov_buckets=task.oov_buckets,
        vocab_filename=CHAR_VOCABULARY) + FIRST_ID
    padded = chars.with_flat_values(char_ids).to_tensor(default_value=0, shape=[None, width])
    char_rows = tf.RaggedTensor.from_row_lengths(tf.reshape(padded, [-1]), tokens.row_lengths() * width)
    return {WORD_IDS: word_ids, CHAR_IDS: char_rows}


def vocabulary_sizes(tf_transform_output, oov_buckets: int) -> tuple[int, int]:
    """(word ids, character ids) the embeddings must cover: padding, vocabulary and OOV buckets."""
    return tuple(FIRST_ID + tf_transform_output.vocabulary_size_by_name(name) + oov_buckets
                 for name in (WORD_VOCABULARY, CHAR_VOCABULARY))
