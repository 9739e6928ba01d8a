"""Pretrained word vectors (`model.pretrained_embeddings`) aligned to a vocabulary, and word
dropout (`model.word_dropout`). The vectors files are small ones the tests write; check_model
builds every task's model that takes vectors from such a file (tests/test_check_model.py)."""

import gzip

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.tasks import DataError
from rnnflow.components.training.pretrained import aligned_vectors
from rnnflow.models.recurrent import WordDropout, word_embedding
from rnnflow.pipeline.config import ConfigError, ModelConfig, load_config

VOCABULARY = ["the", "paris", "film", "zzz-unknown"]  # ids 1..4 (0: padding), 5: an OOV bucket


def _text(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_vectors_align_to_the_vocabulary_exact_then_lowercase_with_coverage(tmp_path):
    path = _text(tmp_path / "v.txt", ["5 3", "the 1 0 0", "Paris 0 1 0", "paris 0 2 0", "Film 0 0 1", "other 9 9 9",
                                      "the 7 7 7"])
    vectors = aligned_vectors(path, VOCABULARY, first_id=1, size=6, dim=3, seed=1)
    matrix = vectors.matrix
    assert matrix.shape == (6, 3) and matrix.dtype == np.float32
    assert (matrix[0] == 0).all()  # padding
    assert matrix[1].tolist() == [1, 0, 0]  # the first vector of a word wins
    assert matrix[2].tolist() == [0, 2, 0]  # exact "paris" over "Paris"
    assert matrix[3].tolist() == [0, 0, 1]  # "Film" for the lowercased vocabulary's "film"
    assert not np.isin(matrix[4], [0, 1, 2, 7, 9]).all()  # random, at the found vectors' scale
    assert vectors.coverage == {"path": path, "file_words": 6, "vocabulary": 4, "covered": 3, "coverage": 0.75}


def test_gzipped_and_npy_vectors_read_alike(tmp_path):
    with gzip.open(tmp_path / "v.txt.gz", "wt", encoding="utf-8") as f:
        f.write("the 1 2\nfilm 3 4\n")
    gz = aligned_vectors(str(tmp_path / "v.txt.gz"), VOCABULARY, first_id=1, size=5, dim=2, seed=0).matrix
    np.save(tmp_path / "v.npy", np.array([[1, 2], [3, 4]], dtype=np.float32))
    (tmp_path / "v.vocab").write_text("the\nfilm\n", encoding="utf-8")
    npy = aligned_vectors(str(tmp_path / "v.npy"), VOCABULARY, first_id=1, size=5, dim=2, seed=0).matrix
    assert gz[[1, 3]].tolist() == npy[[1, 3]].tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("lines, message", [
    (["the 1 2 3"], r"has 3-dimensional vectors \(line 1\); model.embedding_dim is 2: set model.embedding_dim: 3"),
    (["the 1 2", "film 1 2 3"], r"line 2: 3 values, the file's first vector has 2"),
    (["100 2", "the 1 2", "film 1"], r"line 3: 1 values, the file's first vector has 2 \(a truncated file"),
    (["the 1 x"], r"line 1: 'x' is not a number"),
    (["other 1 2", "more 3 4"], r"none of its 2 words is in the vocabulary of 4 words"),
])
def test_a_bad_vectors_file_is_an_error_naming_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=r"model.pretrained_embeddings: .*" + message):
        aligned_vectors(_text(tmp_path / "v.txt", lines), VOCABULARY, first_id=1, size=5, dim=2, seed=0)


def test_a_truncated_gzip_or_a_npy_without_its_words_is_named(tmp_path):
    data = gzip.compress(b"the 1 2\n" * 1000)
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.txt.gz: cannot read to the end .*truncated or corrupt"):
        aligned_vectors(str(tmp_path / "cut.txt.gz"), VOCABULARY, first_id=1, size=5, dim=2, seed=0)
    np.save(tmp_path / "alone.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match=r"alone.npy: needs its words, one per line, in .*alone.vocab"):
        aligned_vectors(str(tmp_path / "alone.npy"), VOCABULARY, first_id=1, size=5, dim=2, seed=0)


def test_embedding_settings_that_cannot_work_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="model.freeze_embeddings: true freezes random embeddings"):
        load_config("sentiment", ["model.freeze_embeddings=true"])
    with pytest.raises(ConfigError, match="model.pretrained_embeddings: file not found: .*nope.txt"):
        load_config("sentiment", [f"model.pretrained_embeddings={tmp_path}/nope.txt"])
    vectors = _text(tmp_path / "v.txt", ["the 1 2"])
    with pytest.raises(ConfigError, match="model.pretrained_embeddings: .* does nothing for the forecasting task"):
        load_config("forecast", [f"model.pretrained_embeddings={vectors}"])
    with pytest.raises(ConfigError, match="model.word_dropout: 0.1 does nothing for the language_model task"):
        load_config("charlm", ["model.word_dropout=0.1"])


def test_word_dropout_replaces_words_by_the_oov_id_in_training_only_never_padding():
    ids = tf.constant([[5, 6, 7, 0, 0]] * 400, dtype=tf.int64)
    layer = WordDropout(0.3, oov_id=9)
    assert layer(ids, training=False).numpy().tolist() == ids.numpy().tolist()
    dropped = layer(ids, training=True).numpy()
    assert (dropped[:, 3:] == 0).all()
    share = (dropped[:, :3] == 9).mean()
    assert 0.25 < share < 0.35
    assert ((dropped[:, :3] == 9) | (dropped[:, :3] == ids.numpy()[:, :3])).all()


def test_word_embedding_starts_from_the_vectors_and_freezes_them_when_asked():
    import keras

    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    inputs = keras.Input(shape=(None,), dtype="int64")
    frozen = keras.Model(inputs, word_embedding(inputs, ModelConfig(embedding_dim=2, freeze_embeddings=True,
                                                                     pretrained_embeddings="x"),
                                                vocab_size=6, vectors=vectors))
    layer = frozen.get_layer("embedding")
    assert not layer.trainable and np.array_equal(layer.get_weights()[0], vectors)
    tuned = keras.Model(inputs, word_embedding(inputs, ModelConfig(embedding_dim=2), vocab_size=6, vectors=vectors))
    assert tuned.get_layer("embedding").trainable
