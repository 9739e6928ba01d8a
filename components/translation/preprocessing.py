"""Transform's preprocessing_fn for translation, and the subword encoding serving repeats.

Sentences are normalized (invalid UTF-8 replaced by U+FFFD, optionally lowercased), split at
whitespace into words, and each word into WordPiece pieces (tensorflow-text's
`WordpieceTokenizer`, greedy longest match; a continuation piece starts with `##`). The
vocabulary is learned on the train split by one TFT analyzer over candidate pieces: each word
cut at punctuation into runs (the first bare, the rest `##`-marked: "dog." -> dog ##.), and every
character, bare and `##`-marked, so a word outside the vocabulary is spelled from characters
rather than lost. The `task.vocab_size` most frequent candidates seen `task.min_frequency` times
are kept (per side, or one joint vocabulary).

Ids: PAD_ID, START_ID, END_ID, then the vocabulary file's pieces from FIRST_ID, then one
unknown id (a piece the vocabulary lacks: a character never seen in training). The source is cut
to `task.max_source_tokens` pieces; the target to `max_target_tokens` and ends with END_ID.
Detokenization joins pieces with spaces and removes " ##": whitespace is the only thing lost.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from rnnflow.components.translation.features import SOURCE, TARGET
from rnnflow.components.translation.schema import (END_ID, FIRST_ID, SOURCE_IDS, SOURCE_VOCABULARY, SUFFIX,
                                                   TARGET_IDS, TARGET_VOCABULARY, UNKNOWN)
from rnnflow.pipeline.config import parse_config

MAX_BYTES_PER_WORD = 100  # longer "words" (URLs, runs of symbols) become one unknown piece


def preprocessing_fn(inputs, custom_config):
    import tensorflow_transform as tft

    task = parse_config(custom_config["config"]).task
    words = {side: split_words(dense_text(inputs[side]), task.lowercase) for side in (SOURCE, TARGET)}
    files = {}
    for side, name in ((SOURCE, SOURCE_VOCABULARY), (TARGET, TARGET_VOCABULARY)):
        if task.joint_vocabulary and side == TARGET:
            files[side] = files[SOURCE]
            continue
        sides = (SOURCE, TARGET) if task.joint_vocabulary else (side,)
        files[side] = tft.vocabulary(tf.concat([candidates(words[s]) for s in sides], axis=0),
                                     top_k=task.vocab_size, frequency_threshold=task.min_frequency,
                                     vocab_filename=name)
    ids = {}
    for side in (SOURCE, TARGET):
        pieces = wordpiece(files[side]).tokenize(words[side]).merge_dims(-2, -1)
        ids[side] = tft.apply_vocabulary(pieces, files[side], num_oov_buckets=1) + FIRST_ID
    end = tf.fill([tf.shape(ids[TARGET].row_lengths())[0], 1], tf.constant(END_ID, tf.int64))
    return {SOURCE_IDS: ids[SOURCE][:, :task.max_source_tokens],
            TARGET_IDS: tf.concat([ids[TARGET][:, :task.max_target_tokens], end], axis=1)}


def vocabulary_names(joint: bool) -> dict[str, str]:
    """side -> the Transform vocabulary it reads."""
    return {SOURCE: SOURCE_VOCABULARY, TARGET: SOURCE_VOCABULARY if joint else TARGET_VOCABULARY}


def dense_text(feature) -> tf.Tensor:
    if isinstance(feature, tf.SparseTensor):
        feature = tf.sparse.to_dense(tf.sparse.reset_shape(feature, [feature.dense_shape[0], 1]), default_value="")
    return tf.reshape(feature, [-1])


def split_words(text: tf.Tensor, lowercase: bool) -> tf.RaggedTensor:
    """[batch] text -> [batch, (words)]: invalid UTF-8 replaced, optionally lowercased, split at
    whitespace."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return tf.strings.split(text)


def candidates(words: tf.RaggedTensor) -> tf.Tensor:
    """The vocabulary's candidate pieces of [batch, (words)], flat: punctuation-cut runs (the
    first of a word bare, the rest ##-marked) and every character, bare and ##-marked."""
    flat = words.flat_values
    runs = tf.strings.split(tf.strings.regex_replace(flat, r"([^\pL\pN])", "\x01\\1\x01"), "\x01")
    runs = tf.ragged.boolean_mask(runs, tf.not_equal(runs, ""))  # tf.equal: TFT also traces in TF1 mode
    first = tf.equal(tf.ragged.range(runs.row_lengths()).flat_values, 0)
    pieces = tf.where(first, runs.flat_values, SUFFIX + runs.flat_values)
    chars = tf.strings.unicode_split(flat, "UTF-8").flat_values
    return tf.concat([pieces, chars, SUFFIX + chars], axis=0)


def wordpiece(vocabulary) -> tf_text.WordpieceTokenizer:
    """The WordPiece tokenizer over a vocabulary file (a path, or TFT's vocabulary tensor)."""
    return tf_text.WordpieceTokenizer(vocabulary, suffix_indicator=SUFFIX, max_bytes_per_word=MAX_BYTES_PER_WORD,
                                      token_out_type=tf.string, unknown_token=UNKNOWN)


class Encoder(tf.Module):
    """Serving's side of the same encoding, with its tables made once: text [batch] -> piece ids
    [batch, (pieces)] as `preprocessing_fn` computes them (`max_tokens` cut; no end id)."""

    def __init__(self, vocabulary_file: str, size: int, *, lowercase: bool, max_tokens: int):
        super().__init__()
        self.tokenizer = wordpiece(vocabulary_file)
        self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
            vocabulary_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER), default_value=-1)
        self.unknown_id = size + FIRST_ID
        self.lowercase, self.max_tokens = lowercase, max_tokens

    def __call__(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """(ids cut to max_tokens, pieces cut off [batch] int32)."""
        pieces = self.tokenizer.tokenize(split_words(text, self.lowercase)).merge_dims(-2, -1)
        found = self.table.lookup(pieces)
        ids = tf.ragged.map_flat_values(lambda v: tf.where(v >= 0, v + FIRST_ID, self.unknown_id), found)
        cut = tf.cast(tf.maximum(ids.row_lengths() - self.max_tokens, 0), tf.int32)
        return ids[:, :self.max_tokens], cut


def pieces_of(tf_transform_output, name: str) -> list[str]:
    """The vocabulary file's pieces, in id order from FIRST_ID."""
    return [t.decode("utf-8", errors="replace") for t in tf_transform_output.vocabulary_by_name(name)]


def detokenize(tokens: tf.Tensor, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Piece ids [batch, T] (the first `lengths` of each row are the translation) -> text [batch],
    `tokens` mapping every id to its piece ("" for the special ids)."""
    mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
    pieces = tf.ragged.boolean_mask(tf.gather(tokens, tf.cast(ids, tf.int32)), mask)
    text = tf.strings.reduce_join(pieces, axis=1, separator=" ")
    text = tf.strings.regex_replace(text, " " + SUFFIX, "")
    return tf.strings.regex_replace(text, "^" + SUFFIX, "")


def id_tokens(pieces: list[str]) -> list[str]:
    """Every id's text: "" for padding, start and end, the pieces, U+FFFD for the unknown id."""
    return ["", "", ""] + pieces + ["\ufffd"]
