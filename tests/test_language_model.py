"""The recurrent language model and its in-graph generator (models/language_model.py)."""

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.models.language_model import Generator, build_language_model
from rnnflow.pipeline.config import ModelConfig

VOCAB = 12


@pytest.fixture(scope="module", params=["lstm", "gru", "mingru"])
def generator(request):
    keras_seed = 3
    tf.keras.utils.set_random_seed(keras_seed)
    model = build_language_model(VOCAB, ModelConfig(embedding_dim=8, units=16, layers=2, cell=request.param,
                                                    bidirectional=False, dropout=0.0))
    return Generator(model)


def generate(generator, prompts, max_length=10, temperature=1.0, top_k=0, seed=0):
    width = max(len(p) for p in prompts)
    ids = np.array([p + [0] * (width - len(p)) for p in prompts], np.int64)
    tokens, log_probs = generator.generate(tf.constant(ids), tf.constant(max_length), tf.constant(temperature),
                                           tf.constant(top_k), tf.constant(seed, tf.int64))
    return tokens.numpy(), log_probs.numpy()


def test_greedy_generation_carrying_the_state_equals_rereading_the_whole_prefix(generator):
    prompt = [3, 5, 7]
    tokens, _ = generate(generator, [prompt], max_length=12, top_k=1)
    prefix = list(prompt)
    for _ in range(12):  # the naive way: the full model over the whole prefix, every step
        logits = generator.model(np.array([prefix], np.int64), training=False).numpy()[0, -1]
        logits[0] = -np.inf  # padding is never generated
        prefix.append(int(np.argmax(logits)))
    assert tokens[0].tolist() == prefix[len(prompt):]


def test_prompts_of_different_lengths_continue_as_they_would_alone(generator):
    together, _ = generate(generator, [[3, 5, 7, 9], [4]], top_k=1)
    alone = [generate(generator, [p], top_k=1)[0][0] for p in ([3, 5, 7, 9], [4])]
    np.testing.assert_array_equal(together, np.stack(alone))


def test_sampling_is_seeded_and_never_emits_padding(generator):
    first, log_probs = generate(generator, [[2, 3]] * 3, max_length=50, seed=11)
    again, _ = generate(generator, [[2, 3]] * 3, max_length=50, seed=11)
    other, _ = generate(generator, [[2, 3]] * 3, max_length=50, seed=12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.min() >= 1 and first.max() < VOCAB
    assert np.all(log_probs <= 0)


def test_top_k_keeps_generation_among_the_k_most_likely_tokens(generator):
    tokens, _ = generate(generator, [[2]], max_length=1, top_k=2, seed=5)
    logits = generator.model(np.array([[2]], np.int64), training=False).numpy()[0, -1]
    logits[0] = -np.inf
    assert tokens[0, 0] in set(np.argsort(logits)[-2:])


@pytest.mark.parametrize("changes, message", [
    ({"temperature": 0.0}, "temperature must be above 0"),
    ({"temperature": -1.0}, "temperature must be above 0"),
    ({"max_length": 100000}, "max_length must be in 0..10000"),
    ({"max_length": -1}, "max_length must be in 0..10000"),
    ({"top_k": -3}, "top_k must be 0"),
])
def test_bad_generation_settings_are_errors_naming_the_setting(generator, changes, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        generate(generator, [[2]], **changes)


def test_zero_length_and_an_empty_prompt(generator):
    tokens, log_probs = generate(generator, [[2], [3]], max_length=0)
    assert tokens.shape == (2, 0) and log_probs.shape == (2, 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="every prompt needs at least one token"):
        generate(generator, [[2], [0]])


def test_generation_runs_from_a_saved_model(generator, tmp_path):
    tf.saved_model.save(generator, str(tmp_path / "lm"))
    loaded = tf.saved_model.load(str(tmp_path / "lm"))
    tokens, _ = loaded.generate(tf.constant([[3, 5]], tf.int64), tf.constant(8), tf.constant(1.0), tf.constant(1),
                                tf.constant(0, tf.int64))
    np.testing.assert_array_equal(tokens.numpy(), generate(generator, [[3, 5]], max_length=8, top_k=1)[0])
