"""The text preprocessing_fn run through tft_beam on a small in-memory dataset."""

import functools
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from rnnflow.components.text_classification import preprocessing
from rnnflow.components.text_classification.schema import (
    EMPTY_TEXT_ID, FIRST_VOCAB_ID, LABEL_ID, LABEL_VOCABULARY, PAD_ID, TOKEN_IDS, TOKEN_VOCABULARY)

MAX_TOKENS = 6
OOV_BUCKETS = 2


def _config(tokenizer="word", vocab_size=100, min_frequency=1, label_values=("neg", "pos")):
    return {
        "config": {  # the data-shaping sections Transform sees (`data_only`)
            "name": "preprocessing-test",
            "task": {"type": "text_classification", "tokenizer": tokenizer, "max_tokens": MAX_TOKENS,
                     "vocab_size": vocab_size, "oov_buckets": OOV_BUCKETS, "min_frequency": min_frequency},
            "data": {"path": "reviews.csv", "text_column": "review", "label_column": "sentiment"},
        },
        "input": {"details": {"label_values": list(label_values)}},
    }


def _run(rows, custom_config, label_dtype=tf.string):
    spec = {"review": tf.io.FixedLenFeature([], tf.string),
            "sentiment": tf.io.FixedLenFeature([], label_dtype)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    out_dir = tempfile.mkdtemp()
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    # The raw schema beside it, as TFX's Transform writes it (serving reads the raw feature spec).
    metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    return transformed, tft.TFTransformOutput(out_dir)


ROWS = [
    {"review": b"Great film, great cast!", "sentiment": b"pos"},
    {"review": b"great", "sentiment": b"pos"},
    {"review": b"Terrible.", "sentiment": b"neg"},
    {"review": b"", "sentiment": b"neg"},
    {"review": "Caf\u00e9 \u00dcBER gro\u00dfartig".encode(), "sentiment": b"pos"},
    {"review": b"bad \xff\xfe bytes", "sentiment": b"neg"},
    {"review": b"one two three four five six seven eight", "sentiment": b"pos"},
]


@pytest.fixture(scope="module")
def word_run():
    return _run(ROWS, _config())


def _ids(transformed) -> list[list[int]]:
    """Token id rows (Transform writes the ragged feature as its values per row)."""
    return [list(np.asarray(r[f"{TOKEN_IDS}$ragged_values"])) for r in transformed]


def test_rows_are_as_long_as_their_texts_without_padding(word_run):
    ids = _ids(word_run[0])
    # Tokens: "great film , great cast !" (6), "great", "terrible .", "" -> the empty token, ...
    assert [len(row) for row in ids][:4] == [6, 1, 2, 1]
    assert all(1 <= len(row) <= MAX_TOKENS and PAD_ID not in row for row in ids)


def test_batches_are_padded_on_the_right_to_their_longest_row():
    import tensorflow as tf

    from rnnflow.components.text_classification.preprocessing import pad_to_longest
    from rnnflow.components.training.trainer import batched_by_length, length_buckets

    assert length_buckets(64) == [8, 16, 32] and length_buckets(8) == [] and length_buckets(9) == [8]
    rows = tf.ragged.constant([[5, 6, 7], [8], [9, 10], [1] * 20, [2] * 30], dtype=tf.int64)
    padded = pad_to_longest(rows)
    assert padded.shape == (5, 30) and padded[1].numpy().tolist() == [8] + [PAD_ID] * 29
    # Training: rows of similar length share a batch, padded to its own longest row only.
    dataset = tf.data.Dataset.from_tensors(({TOKEN_IDS: rows}, tf.range(5, dtype=tf.int64)))
    batches = [(f[TOKEN_IDS].numpy().tolist(), label.numpy().tolist())
               for f, label in batched_by_length(dataset, TOKEN_IDS, batch_size=2, max_length=32)]
    assert sorted(batches) == sorted([([[5, 6, 7], [8, 0, 0]], [0, 1]), ([[9, 10]], [2]),
                                      ([[1] * 20 + [0] * 10, [2] * 30], [3, 4])])


def test_vocabulary_is_case_folded_and_frequency_ordered(word_run):
    _, output = word_run
    vocab = [t.decode() for t in output.vocabulary_by_name(TOKEN_VOCABULARY)]
    assert vocab[0] == "great"  # 3 occurrences, case-folded
    assert "Great" not in vocab
    ids = _ids(word_run[0])
    assert ids[0][0] == ids[0][3] == ids[1][0] == FIRST_VOCAB_ID + vocab.index("great")
    # Punctuation is its own token.
    assert "!" in vocab and "," in vocab


def test_empty_text_gets_the_empty_token(word_run):
    ids = _ids(word_run[0])
    assert ids[3] == [EMPTY_TEXT_ID]


def test_non_ascii_is_normalized_not_dropped(word_run):
    _, output = word_run
    vocab = [t.decode() for t in output.vocabulary_by_name(TOKEN_VOCABULARY)]
    assert "caf\u00e9" in vocab
    assert "\u00fcber" in vocab
    assert "grossartig" in vocab  # case folding maps \u00df to ss


def test_invalid_utf8_is_replaced_not_fatal(word_run):
    _, output = word_run
    vocab = [t.decode() for t in output.vocabulary_by_name(TOKEN_VOCABULARY)]
    assert "bad" in vocab and "bytes" in vocab
    assert any("\ufffd" in token for token in vocab)


def test_truncation_keeps_the_first_tokens(word_run):
    _, output = word_run
    vocab = [t.decode() for t in output.vocabulary_by_name(TOKEN_VOCABULARY)]
    ids = _ids(word_run[0])[6]
    words = [vocab[i - FIRST_VOCAB_ID] for i in ids]
    assert words == ["one", "two", "three", "four", "five", "six"]


@pytest.fixture(scope="module")
def small_vocabulary_integer_label_run():
    """Integer labels and a 2-token vocabulary in one Transform run (each run costs ~50 s)."""
    rows = [{"review": b"good good", "sentiment": 1}, {"review": b"bad bad", "sentiment": 0},
            {"review": b"fine", "sentiment": 1}, {"review": b"meh", "sentiment": 2}]
    return _run(rows, _config(vocab_size=2, label_values=("0", "1", "2")), label_dtype=tf.int64)


def test_oov_tokens_map_to_oov_buckets(small_vocabulary_integer_label_run):
    transformed, output = small_vocabulary_integer_label_run
    vocab_size = output.vocabulary_size_by_name(TOKEN_VOCABULARY)
    assert vocab_size == 2
    ids = np.concatenate(_ids(transformed))
    oov = (ids >= FIRST_VOCAB_ID + vocab_size)
    assert oov.any()
    assert ids.max() < FIRST_VOCAB_ID + vocab_size + OOV_BUCKETS
    assert preprocessing.vocabulary_size(output, OOV_BUCKETS) == \
        FIRST_VOCAB_ID + vocab_size + OOV_BUCKETS


def test_labels_use_sorted_class_ids_regardless_of_frequency(word_run):
    transformed, output = word_run
    assert [v.decode() for v in output.vocabulary_by_name(LABEL_VOCABULARY)] == ["neg", "pos"]
    labels = [int(r[LABEL_ID]) for r in transformed]
    assert labels == [1, 1, 0, 0, 1, 0, 1]


def test_integer_labels_become_class_names(small_vocabulary_integer_label_run):
    transformed, output = small_vocabulary_integer_label_run
    assert [v.decode() for v in output.vocabulary_by_name(LABEL_VOCABULARY)] == ["0", "1", "2"]
    assert [int(r[LABEL_ID]) for r in transformed] == [1, 0, 1, 2]


def test_character_tokenizer():
    transformed, output = _run(ROWS[:2], _config(tokenizer="char"))
    vocab = [t.decode() for t in output.vocabulary_by_name(TOKEN_VOCABULARY)]
    assert set(vocab) >= {"g", "r", "e", "a", "t", " "}
    ids = _ids(transformed)[1]
    assert [vocab[i - FIRST_VOCAB_ID] for i in ids[:5]] == list("great")
    assert len(ids) == 5  # no padding after "great"


def test_serving_pads_a_batch_only_to_its_longest_text(word_run):
    """The export's serving path (what every text signature calls) hands the model a batch
    padded on the right to its own longest text, never to task.max_tokens."""
    import tensorflow as tf

    from rnnflow.components.text_classification.export import ServingModule

    seen = []

    def model(features, training=False):  # records what the serving graph feeds the classifier
        seen.append(features[TOKEN_IDS].numpy())
        return tf.fill([tf.shape(features[TOKEN_IDS])[0], 2], 0.5)

    module = ServingModule(model, word_run[1], text_column="review", class_names=["neg", "pos"])
    module.predict_text(tf.constant(["great film", "terrible"]))
    assert seen[-1].shape == (2, 2)  # "great film": 2 tokens; MAX_TOKENS is 6
    module.predict_text(tf.constant(["great great great great great", "great"]))
    great = seen[-1][0][0]
    assert seen[-1].tolist() == [[great] * 5, [great] + [PAD_ID] * 4]
    module.predict_text(tf.constant(["", ""]))  # only empty texts: one empty-text token each
    assert seen[-1].tolist() == [[EMPTY_TEXT_ID], [EMPTY_TEXT_ID]]
