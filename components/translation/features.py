"""The tf.Example of one sentence pair, as the translation ExampleGen writes it and every reader
(Transform's schema, the export's signatures, the metrics, the tests) reads it.

- `source`: the sentence to translate (UTF-8 text, whitespace as in the file, stripped);
- `target`: its reference translation.
"""

from __future__ import annotations

SOURCE = "source"
TARGET = "target"


def pair_example(pair):
    import tensorflow as tf

    source, target = pair
    return tf.train.Example(features=tf.train.Features(feature={
        SOURCE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode("utf-8")])),
        TARGET: tf.train.Feature(bytes_list=tf.train.BytesList(value=[target.encode("utf-8")]))}))


def feature_spec() -> dict:
    import tensorflow as tf

    return {SOURCE: tf.io.FixedLenFeature([], tf.string), TARGET: tf.io.FixedLenFeature([], tf.string)}
