"""The serving SavedModel: raw text in, class probabilities and class names out.

Signatures (the contract TF Serving clients, TFMA and batch inference rely on):
- `serving_default`: `<text_column>` string [batch] -> `probabilities` float32
  [batch, classes], `label` string [batch]. Any other shape (a scalar, the common
  [[text]] or [batch, 1]) is an error naming the input and the expected shape.
- `serving_examples`: `examples` serialized tf.Example [batch] -> same outputs
  (only the text feature is read; several values are joined by spaces). An example
  without the text feature is an error naming the example and the feature, unless
  `serving.missing_text: empty` reads it as an empty text.
- `evaluation_examples`: as `serving_examples`, reading an absent text as empty
  (the ExampleGen writes empty CSV cells so); TFMA evaluates through it.
- `transform_features`: `examples` serialized tf.Example [batch] (with label) ->
  transformed features; TFMA's preprocessing function for the label.

The model is exported with `tf.saved_model.save` on a `tf.Module` holding the
Keras 3 model and Transform's (tf_keras) layer; the two Keras versions never
meet inside one Keras model.
"""

from __future__ import annotations


import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the text ops the transform graph uses)

from rnnflow.components.text_classification.preprocessing import pad_to_longest
from rnnflow.components.text_classification.schema import (
    EVAL_SIGNATURE, EXAMPLES_SIGNATURE, PROBABILITIES, TOKEN_IDS, TRANSFORM_SIGNATURE)
from rnnflow.components.common.run_facts import EXAMPLES_INPUT
from rnnflow.components.training.trainer import as_raw_feature, save_serving_model

LABEL_OUTPUT = "label"


class ServingModule(tf.Module):
    """Tracks the model, the transform graph and the class names for export."""

    def __init__(self, model, tf_transform_output, text_column: str, class_names: list[str],
                 missing_text: str = "error"):
        super().__init__()
        self.missing_text = missing_text
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.class_names = tf.constant(class_names)
        self.text_column = text_column
        self.raw_feature_spec = tf_transform_output.raw_feature_spec()

    def predict_transformed(self, transformed):
        # The batch padded only to its longest text (right-padded, as in training).
        probabilities = self.model({TOKEN_IDS: pad_to_longest(transformed[TOKEN_IDS])}, training=False)
        labels = tf.gather(self.class_names, tf.argmax(probabilities, axis=-1))
        return {PROBABILITIES: probabilities, LABEL_OUTPUT: labels}

    def predict_text(self, text):
        raw = {self.text_column: as_raw_feature(text, self.raw_feature_spec[self.text_column])}
        return self.predict_transformed(self.tft_layer(raw))

    def batch_of_strings(self, text, name: str):
        """`text` once it is [batch]; otherwise an error naming the input and the shape it needs."""
        rank_ok = tf.debugging.Assert(tf.equal(tf.rank(text), 1), [
            f"input `{name}` must be a 1-D batch of strings, shape [batch] (over REST: instances, a list "
            "of strings); got shape", tf.shape(text)])
        with tf.control_dependencies([rank_ok]):
            checked = tf.identity(text)
        checked.set_shape([None])  # not tf.ensure_shape: Grappler may run that before the check
        return checked

    def text_of_examples(self, examples, missing_text: str):
        """The text feature of each serialized tf.Example; several values are joined by spaces."""
        examples = self.batch_of_strings(examples, EXAMPLES_INPUT)
        parsed = tf.io.parse_example(examples, {self.text_column: tf.io.VarLenFeature(tf.string)})
        values = tf.RaggedTensor.from_sparse(parsed[self.text_column])
        if missing_text == "error":
            present = values.row_lengths() > 0
            first_missing = tf.concat([tf.where(~present)[:, 0], tf.zeros([1], tf.int64)], axis=0)[0]
            present_ok = tf.debugging.Assert(tf.reduce_all(present), [tf.strings.format(
                f"example {{}} (0-based) has no `{self.text_column}` feature (or no value in it); send the "
                f"text as a bytes feature named `{self.text_column}`, or export with "
                "serving.missing_text: empty to read it as an empty text", first_missing)])
            with tf.control_dependencies([present_ok]):
                values = tf.identity(values)
        return tf.strings.reduce_join(values, axis=1, separator=" ")

    def signatures(self) -> dict:
        # Any shape here, so that a wrong one reaches the check rather than an internal op.
        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=self.text_column)])
        def serve_text(text):
            return self.predict_text(self.batch_of_strings(text, self.text_column))

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=EXAMPLES_INPUT)])
        def serve_examples(examples):
            return self.predict_text(self.text_of_examples(examples, self.missing_text))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def evaluate_examples(examples):
            return self.predict_text(self.text_of_examples(examples, "empty"))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
        def transform_features(examples):
            return self.tft_layer(tf.io.parse_example(examples, self.raw_feature_spec))

        return {
            "serving_default": serve_text.get_concrete_function(),
            EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
            EVAL_SIGNATURE: evaluate_examples.get_concrete_function(),
            TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        }


def export_serving_model(model, tf_transform_output, *, text_column: str, class_names: list[str],
                         export_dir: str, warmup_texts: list[str], missing_text: str = "error") -> None:
    module = ServingModule(model, tf_transform_output, text_column, class_names, missing_text)
    save_serving_model(module, model, export_dir, [{text_column: np.array(warmup_texts, dtype=object)}])
