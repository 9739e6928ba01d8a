"""The tf.Example of one sentence, as the sequence labeling ExampleGen writes it and every reader
(Transform's schema, the export's signatures, the metrics, the tests) reads it.

- `sentence`: the tokens joined by single spaces (bytes, one value): what `serving_default`
  takes, so serving validation and batch inference send the very tokens training saw;
- `tokens`: the tokens (bytes list);
- `tags`: their tags in IOB2/BIO (bytes list, as long as `tokens`).
"""

from __future__ import annotations

SENTENCE = "sentence"
TOKENS = "tokens"
TAGS = "tags"
TOKEN_SEPARATOR = " "


def sentence_example(tokens: list[str], tags: list[str]):
    import tensorflow as tf

    def strings(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))

    return tf.train.Example(features=tf.train.Features(feature={
        SENTENCE: strings([TOKEN_SEPARATOR.join(tokens)]), TOKENS: strings(tokens), TAGS: strings(tags)}))


def feature_spec() -> dict:
    """The parse spec of the examples `sentence_example` writes (serving and evaluation parse them)."""
    import tensorflow as tf

    return {SENTENCE: tf.io.FixedLenFeature([], tf.string), TOKENS: tf.io.VarLenFeature(tf.string),
            TAGS: tf.io.VarLenFeature(tf.string)}
