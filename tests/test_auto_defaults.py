"""`auto` config fields: resolved from the data size (training.*) and from the training texts
(task.max_tokens / vocab_size / min_frequency, as Transform resolves them)."""

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.text_classification import data_scale
from rnnflow.components.text_classification.schema import TextClassificationConfig
from rnnflow.pipeline.config import (AUTO, ConfigError, TrainingConfig, load_config, resolve_training,
                                     unresolved)


def test_small_data_keeps_the_batch_and_rate_the_sample_was_tuned_for():
    training, resolved = resolve_training(TrainingConfig(epochs=15, early_stopping_patience=4), 75)
    assert (training.batch_size, training.learning_rate, training.lr_schedule) == (16, 0.003, "constant")
    assert resolved == {"training.batch_size": 16, "training.learning_rate": 0.003,
                        "training.lr_schedule": "constant"}


@pytest.mark.parametrize("rows, batch", [(2_000, 16), (4_800, 32), (9_600, 64), (18_750, 64), (67_349, 128),
                                         (10_000_000, 128)])
def test_batch_grows_with_the_rows_while_an_epoch_keeps_150_steps(rows, batch):
    training, _ = resolve_training(TrainingConfig(), rows)
    assert training.batch_size == batch
    assert batch == 16 or rows / batch >= 150
    assert training.learning_rate == pytest.approx(0.003 * (batch / 16) ** 0.5, rel=1e-4)


def test_long_runs_decay_the_learning_rate():
    assert resolve_training(TrainingConfig(epochs=10), 20_000)[0].lr_schedule == "cosine"
    assert resolve_training(TrainingConfig(epochs=2), 1_000)[0].lr_schedule == "constant"


@pytest.mark.parametrize("rows, batch, epochs, patience", [
    (800, 16, 40, 5),  # 50 steps an epoch: the most epochs, the most patience
    (3_400, 16, 19, 3),  # a few thousand sentences: 213 steps an epoch, about 4,000 steps in all
    (14_000, 64, 19, 3),
    (25_000, 128, 21, 3),  # IMDB's training reviews: 196 steps an epoch
    (1_000_000, 128, 3, 1)])  # large data: a few passes, one epoch of patience
def test_epochs_and_patience_resolve_from_the_training_steps(rows, batch, epochs, patience):
    training, resolved = resolve_training(TrainingConfig(), rows)
    assert (training.batch_size, training.epochs, training.early_stopping_patience) == (batch, epochs, patience)
    assert resolved["training.epochs"] == epochs and resolved["training.early_stopping_patience"] == patience
    steps = rows / batch
    assert patience * steps <= 5 * max(steps, 600 / 5) and training.epochs * steps >= min(4000, 3 * steps)
    # Small data gets more epochs than large data, and more patience, never less.
    small, large = resolve_training(TrainingConfig(), 2_000)[0], resolve_training(TrainingConfig(), 200_000)[0]
    assert small.epochs > large.epochs and small.early_stopping_patience > large.early_stopping_patience


@pytest.mark.parametrize("rows, batch, momentum", [
    (16, 16, 0.5),  # one step an epoch
    (100, 16, 0.9286),  # 7 steps an epoch
    (18_750, 64, 0.9983),  # IMDB's training reviews after the 3:1 split: 293 steps
    (10_000_000, 128, 0.999)])  # at most 0.999
def test_weight_averaging_spans_about_two_epochs_of_steps(rows, batch, momentum):
    training, resolved = resolve_training(TrainingConfig(ema_momentum=AUTO), rows)
    assert training.batch_size == batch and training.ema_momentum == resolved["training.ema_momentum"] == momentum
    assert "training.ema_momentum" not in resolve_training(TrainingConfig(), rows)[1]  # off unless asked
    # Explicit batches size it too.
    assert resolve_training(TrainingConfig(ema_momentum=AUTO, batch_size=10), 100)[0].ema_momentum == 0.95


def test_explicit_values_are_kept_and_size_the_rest():
    training, resolved = resolve_training(TrainingConfig(batch_size=32, lr_schedule="constant", epochs=10,
                                                         early_stopping_patience=3), 100_000)
    assert training.batch_size == 32 and training.lr_schedule == "constant"
    assert resolved == {"training.learning_rate": pytest.approx(0.003 * 2 ** 0.5, rel=1e-4)}
    fixed = TrainingConfig(batch_size=8, learning_rate=0.01, lr_schedule="cosine", epochs=10, early_stopping_patience=3)
    assert resolve_training(fixed, 100) == (fixed, {})


def test_auto_is_accepted_where_documented_and_a_bad_value_names_the_field():
    config = load_config("sentiment")
    assert set(unresolved(config)) == {"task.max_tokens", "task.vocab_size", "task.min_frequency", "training.epochs",
                                       "training.batch_size", "training.learning_rate", "training.lr_schedule",
                                       "training.early_stopping_patience", "training.ema_momentum"}
    assert config.training.jit_compile == AUTO  # Keras' own choice, not resolved from data
    assert unresolved(load_config("sentiment", ["task.max_tokens=64", "training.batch_size=8"])) == [
        "task.vocab_size", "task.min_frequency", "training.epochs", "training.learning_rate", "training.lr_schedule",
        "training.ema_momentum", "training.early_stopping_patience"]
    # Weight averaging is auto where a task declares it (text classification), off elsewhere.
    assert "training.ema_momentum" not in unresolved(load_config("ner"))
    with pytest.raises(ConfigError, match=r"task.max_tokens: expected an integer or auto, got 'long'"):
        load_config("sentiment", ["task.max_tokens=long"])
    with pytest.raises(ConfigError, match=r"training.batch_size: 0 is out of range"):
        load_config("sentiment", ["training.batch_size=0"])


def test_a_model_is_never_built_from_an_unresolved_config():
    from rnnflow.models.recurrent import make_optimizer

    with pytest.raises(ValueError, match="training.epochs is auto"):
        make_optimizer(TrainingConfig())
    with pytest.raises(ValueError, match="training.learning_rate is auto"):
        make_optimizer(TrainingConfig(epochs=3))
    with pytest.raises(ValueError, match="training.ema_momentum is auto"):
        make_optimizer(TrainingConfig(epochs=3, learning_rate=0.01, lr_schedule="constant", ema_momentum=AUTO))


def test_a_numeric_range_can_tune_a_field_that_may_be_auto():
    config = load_config("sentiment", ["tuning.search_space={training.batch_size: {min: 16, max: 64, step: 16}}"])
    assert config.tuning.search_space == {"training.batch_size": {"min": 16, "max": 64, "step": 16,
                                                                  "sampling": "linear"}}


# -- task fields, measured on texts -----------------------------------------------------------

def _task(**fields):
    return TextClassificationConfig(**{"type": "text_classification", "tokenizer": "word", "max_tokens": AUTO, "vocab_size": AUTO,
                                       "oov_buckets": 10, "min_frequency": AUTO, **fields})


def _batches(texts, size=3):
    return [tf.constant(texts[i:i + size]) for i in range(0, len(texts), size)]


def test_max_tokens_is_the_95th_percentile_of_token_counts_rounded_up_to_8():
    texts = [" ".join(["w"] * n) for n in range(1, 101)]  # 1..100 tokens
    result = data_scale.resolve(_task(), _batches(texts))
    assert result["values"]["task.max_tokens"] == 96  # p95 = 95.05 -> 96
    assert result["measured"]["train_texts_measured"] == 100


def test_same_length_texts_empty_texts_and_huge_texts_resolve_within_bounds():
    assert data_scale.resolve(_task(), _batches(["a b c"] * 10))["values"]["task.max_tokens"] == 8
    # Empty texts count as one token (the empty-text marker), never as a zero-length cap.
    assert data_scale.resolve(_task(), _batches([""] * 5 + ["a"]))["values"]["task.max_tokens"] == 8
    huge = data_scale.resolve(_task(), _batches([" ".join(["w"] * 5000)] * 4))
    assert huge["values"]["task.max_tokens"] == 1024
    with pytest.raises(ValueError, match="train split has no texts"):
        data_scale.resolve(_task(), [])


def test_vocabulary_covers_95_percent_of_tokens_among_those_seen_twice():
    counts = [50, 30, 10, 5, 3, 1, 1]  # 100 tokens
    assert data_scale.resolve_vocabulary(counts, AUTO, AUTO) == (4, 5, 0.95)
    # Coverage stops at the first token seen once, even below 95%.
    assert data_scale.resolve_vocabulary([10, 2, 1, 1, 1, 1], AUTO, AUTO)[:2] == (2, 2)
    # A given min_frequency or vocab_size constrains the other.
    assert data_scale.resolve_vocabulary(counts, AUTO, 10)[:2] == (3, 10)
    assert data_scale.resolve_vocabulary(counts, 2, AUTO)[:2] == (2, 30)
    # Every token seen once (a tiny dataset): keep tokens rather than none.
    vocab, frequency, _ = data_scale.resolve_vocabulary([1] * 40, AUTO, AUTO)
    assert (vocab, frequency) == (38, 1)


def test_vocabulary_is_counted_on_the_truncated_normalized_tokens_transform_keeps():
    texts = ["Great GREAT great film", "great film!", "film rocks"] * 4
    result = data_scale.resolve(_task(max_tokens=2), _batches(texts))
    # Truncated to 2 tokens, case-folded: great x 12, film x 8, rocks x 4; "!" cut away.
    assert result["measured"]["distinct_tokens"] == 3
    assert result["values"] == {"task.vocab_size": 3, "task.min_frequency": 4}


def test_texts_are_read_from_gzipped_examples_and_a_missing_feature_is_an_empty_text(tmp_path):
    path = str(tmp_path / "data.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for text in (b"one two", None, b"three"):
            feature = {} if text is None else {"review": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    texts = np.concatenate([b.numpy() for b in data_scale.read_texts([path], "review")])
    assert texts.tolist() == [b"one two", b"", b"three"]
    assert len(np.concatenate([b.numpy() for b in data_scale.read_texts([path], "review", limit=2)])) == 2
