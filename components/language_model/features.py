"""The tf.Example of one window, as the language model ExampleGen writes it and every reader
(Transform's schema, the export's signatures, the tests) reads it.

- `text`: the window's tokens as text (characters as they are; words joined by single spaces):
  `task.window + 1` in the train split, `task.eval_window + 1` in the eval split
  (`schema.eval_window_size`); the model reads all but the last and predicts all but the first.
"""

from __future__ import annotations

TEXT = "text"


def window_example(text: str):
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        TEXT: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))}))


def feature_spec() -> dict:
    """The parse spec of the examples `window_example` writes (serving and evaluation parse them)."""
    import tensorflow as tf

    return {TEXT: tf.io.FixedLenFeature([], tf.string)}
