"""A linear-chain CRF over per-step tag scores, in TensorFlow ops (so decoding runs inside an
exported graph, on CPU model servers).

Shapes: `potentials` [batch, steps, tags] (the encoder's per-step scores), `lengths` [batch]
(steps past a sentence's length are padding, on the right), `transitions` [tags, tags] with
`transitions[i, j]` the score of tag j following tag i.

- `sequence_score`: the score of given tag sequences (unary + transition terms, real steps only);
- `log_partition`: log of the sum of exp(score) over every tag sequence (forward algorithm);
- `log_likelihood`: `sequence_score - log_partition`, the training objective (maximized);
- `viterbi_decode`: the best tag sequence and its score; padded steps repeat the last real tag.

A sentence of length 0 has score 0, log-partition 0 and an all-zero path. A batch of one-step
(or empty) sentences works too: the recursions run over one extra padded step, so their scans
are never empty.
"""

from __future__ import annotations

import tensorflow as tf


def _mask(lengths: tf.Tensor, steps) -> tf.Tensor:
    return tf.sequence_mask(lengths, steps, dtype=tf.bool)


def sequence_score(potentials: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor,
                   transitions: tf.Tensor) -> tf.Tensor:
    """[batch] scores of `tags` [batch, steps]."""
    tags = tf.cast(tags, tf.int32)
    steps = tf.shape(potentials)[1]
    mask = tf.cast(_mask(lengths, steps), potentials.dtype)
    unary = tf.reduce_sum(tf.gather(potentials, tags, batch_dims=2) * mask, axis=1)
    pairs = tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1)  # [batch, steps-1, 2]
    binary = tf.reduce_sum(tf.gather_nd(transitions, pairs) * mask[:, 1:], axis=1)
    return unary + binary


def _with_padded_step(potentials: tf.Tensor) -> tf.Tensor:
    """One more step on the right: past every sentence's length, so it changes no score, and the
    scans over steps 1..T-1 below have at least one element (an empty scan cannot be stacked)."""
    return tf.pad(potentials, [[0, 0], [0, 1], [0, 0]])


def log_partition(potentials: tf.Tensor, lengths: tf.Tensor, transitions: tf.Tensor) -> tf.Tensor:
    """[batch] log sum over all tag sequences of exp(score)."""
    potentials = _with_padded_step(potentials)
    steps = tf.shape(potentials)[1]
    mask = _mask(lengths, steps)
    time_major = tf.transpose(potentials, [1, 0, 2])
    step_mask = tf.transpose(mask, [1, 0])

    def forward(alpha, inputs):
        unary, real = inputs
        updated = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + unary
        return tf.where(real[:, None], updated, alpha)

    alphas = tf.scan(forward, (time_major[1:], step_mask[1:]), initializer=time_major[0])
    last = tf.concat([time_major[:1], alphas], axis=0)[-1]
    return tf.where(lengths > 0, tf.reduce_logsumexp(last, axis=1), tf.zeros_like(last[:, 0]))


def log_likelihood(potentials: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor,
                   transitions: tf.Tensor) -> tf.Tensor:
    """[batch] log p(tags | sentence)."""
    return sequence_score(potentials, tags, lengths, transitions) - log_partition(potentials, lengths, transitions)


def viterbi_decode(potentials: tf.Tensor, lengths: tf.Tensor, transitions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(best tags [batch, steps] int32, their scores [batch])."""
    given_steps = tf.shape(potentials)[1]
    potentials = _with_padded_step(potentials)
    steps = tf.shape(potentials)[1]
    num_tags = tf.shape(potentials)[2]
    mask = _mask(lengths, steps)
    time_major = tf.transpose(potentials, [1, 0, 2])
    step_mask = tf.transpose(mask, [1, 0])
    identity = tf.range(num_tags)

    def forward(carry, inputs):
        delta, _ = carry
        unary, real = inputs
        candidates = delta[:, :, None] + transitions[None]  # [batch, from, to]
        best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
        updated = tf.reduce_max(candidates, axis=1) + unary
        # A padded step keeps the score and points each tag to itself.
        pointers = tf.where(real[:, None], best_previous, tf.broadcast_to(identity, tf.shape(best_previous)))
        return tf.where(real[:, None], updated, delta), pointers

    first = time_major[0]
    deltas, pointers = tf.scan(forward, (time_major[1:], step_mask[1:]),
                               initializer=(first, tf.zeros_like(first, dtype=tf.int32)))
    last_delta = tf.concat([first[None], deltas], axis=0)[-1]
    last_tag = tf.argmax(last_delta, axis=1, output_type=tf.int32)

    def backward(tag, step_pointers):
        return tf.gather(step_pointers, tag, batch_dims=1)

    earlier = tf.scan(backward, pointers, initializer=last_tag, reverse=True)  # tags at steps 0 .. T-2
    path = tf.transpose(tf.concat([earlier, last_tag[None]], axis=0), [1, 0])
    real = tf.cast(lengths > 0, tf.int32)
    score = tf.where(lengths > 0, tf.reduce_max(last_delta, axis=1), tf.zeros_like(last_delta[:, 0]))
    return (path * real[:, None])[:, :given_steps], score
