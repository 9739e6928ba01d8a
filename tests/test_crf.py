"""The linear-chain CRF (models/crf.py) against brute force: every tag sequence of small inputs
enumerated, scored and summed in NumPy."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.models import crf


def brute_force(potentials: np.ndarray, length: int, transitions: np.ndarray):
    """(best path, best score, log partition) over all tag sequences of the first `length` steps."""
    tags = potentials.shape[1]
    scores = {}
    for path in itertools.product(range(tags), repeat=length):
        score = sum(potentials[t, path[t]] for t in range(length))
        score += sum(transitions[path[t - 1], path[t]] for t in range(1, length))
        scores[path] = score
    if not scores or length == 0:
        return (), 0.0, 0.0
    best = max(scores, key=scores.get)
    values = np.array(list(scores.values()))
    log_z = values.max() + np.log(np.exp(values - values.max()).sum())
    return best, scores[best], log_z


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_and_the_partition_match_brute_force_on_small_inputs(seed):
    rng = np.random.default_rng(seed)
    batch, steps, tags = 4, 5, 3
    potentials = rng.normal(size=(batch, steps, tags)).astype(np.float32)
    transitions = rng.normal(size=(tags, tags)).astype(np.float32)
    lengths = np.array([5, 3, 1, 0], np.int32)
    paths, scores = crf.viterbi_decode(tf.constant(potentials), tf.constant(lengths), tf.constant(transitions))
    log_z = crf.log_partition(tf.constant(potentials), tf.constant(lengths), tf.constant(transitions)).numpy()
    for b in range(batch):
        best, best_score, expected_log_z = brute_force(potentials[b], lengths[b], transitions)
        n = lengths[b]
        assert tuple(paths.numpy()[b, :n]) == best
        np.testing.assert_allclose(scores.numpy()[b], best_score, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(log_z[b], expected_log_z, rtol=1e-5, atol=1e-5)
        if n:  # padded steps repeat the last real tag
            assert set(paths.numpy()[b, n:]) <= {best[-1]}


def test_the_likelihood_of_every_sequence_sums_to_one():
    rng = np.random.default_rng(7)
    potentials = rng.normal(size=(1, 3, 3)).astype(np.float32)
    transitions = rng.normal(size=(3, 3)).astype(np.float32)
    sequences = np.array(list(itertools.product(range(3), repeat=3)), np.int32)
    likelihood = crf.log_likelihood(tf.constant(np.repeat(potentials, len(sequences), axis=0)), tf.constant(sequences),
                                    tf.constant([3] * len(sequences)), tf.constant(transitions))
    assert np.exp(likelihood.numpy()).sum() == pytest.approx(1.0, rel=1e-5)


def test_padding_does_not_change_the_score_of_a_sentence():
    rng = np.random.default_rng(3)
    potentials = rng.normal(size=(1, 6, 4)).astype(np.float32)
    transitions = rng.normal(size=(4, 4)).astype(np.float32)
    tags = np.array([[1, 2, 0, 3, 3, 3]], np.int32)
    short = crf.log_likelihood(potentials[:, :3], tags[:, :3], tf.constant([3]), transitions)
    padded = crf.log_likelihood(potentials, tags, tf.constant([3]), transitions)
    np.testing.assert_allclose(short.numpy(), padded.numpy(), rtol=1e-6)


def test_decoding_runs_inside_a_saved_graph(tmp_path):
    transitions = tf.Variable(np.eye(3, dtype=np.float32))

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([None], tf.int32)])
        def decode(self, potentials, lengths):
            return crf.viterbi_decode(potentials, lengths, transitions)[0]

    module = Decoder()
    module.transitions = transitions
    tf.saved_model.save(module, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    potentials = np.zeros((1, 4, 3), np.float32)
    potentials[0, :, 2] = 1.0
    assert loaded.decode(potentials, np.array([4], np.int32)).numpy().tolist() == [[2, 2, 2, 2]]


def test_a_batch_of_one_step_sentences_decodes_to_each_steps_best_tag():
    potentials = tf.constant([[[0.1, 2.0, -1.0]], [[3.0, 0.0, 0.0]]])
    paths, scores = crf.viterbi_decode(potentials, tf.constant([1, 1]), tf.zeros([3, 3]))
    assert paths.numpy().tolist() == [[1], [0]] and scores.numpy().tolist() == pytest.approx([2.0, 3.0])


def test_one_step_and_empty_sentences_decode_inside_a_graph():
    """In a graph an empty tf.scan cannot be stacked: a request of only one-word or empty
    sentences (one step after padding) used to fail with `TensorListStack`."""
    transitions = tf.constant([[0.0, -5.0], [-5.0, 0.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 2]), tf.TensorSpec([None], tf.int32)])
    def decode_and_normalize(potentials, lengths):
        paths, scores = crf.viterbi_decode(potentials, lengths, transitions)
        return paths, scores, crf.log_partition(potentials, lengths, transitions)

    paths, scores, partition = decode_and_normalize(tf.constant([[[0.0, 1.0]], [[2.0, 0.0]]]), tf.constant([1, 0]))
    assert paths.numpy().tolist() == [[1], [0]]
    assert scores.numpy().tolist() == pytest.approx([1.0, 0.0])
    assert partition.numpy().tolist() == pytest.approx([np.log(1 + np.e), 0.0])
