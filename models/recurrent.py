"""Recurrent encoders and classifier heads (Keras 3).

Defaults keep every recurrent layer eligible for the cuDNN kernel on GPU:
tanh/sigmoid activations, no recurrent dropout (dropout sits between layers),
right-padded masks from `Embedding(mask_zero=True)`.
"""

from __future__ import annotations

import keras

from rnnflow.models.mingru import MinGRU
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

CELLS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
    "mingru": MinGRU,
}


def recurrent_layer(model: ModelConfig, return_sequences: bool, name: str) -> keras.layers.Layer:
    """One (optionally bidirectional) recurrent layer of the configured cell."""
    layer = CELLS[model.cell](model.units, return_sequences=return_sequences, name=name)
    if model.bidirectional:
        return keras.layers.Bidirectional(layer, name=f"bi_{name}")
    return layer


def encode_sequence(x, model: ModelConfig):
    """Stacked recurrent layers; the last returns its final state (many-to-one)."""
    for depth in range(model.layers):
        last = depth == model.layers - 1
        x = recurrent_layer(model, return_sequences=not last, name=f"{model.cell}_{depth}")(x)
        x = keras.layers.Dropout(model.dropout, name=f"dropout_{depth}")(x)
    return x


def build_text_classifier(model: ModelConfig, training: TrainingConfig, *, vocab_size: int,
                          num_classes: int, max_tokens: int, input_name: str,
                          output_name: str = "probabilities") -> keras.Model:
    """token ids [batch, max_tokens] (0 = padding) -> class probabilities [batch, num_classes]."""
    token_ids = keras.Input(shape=(max_tokens,), dtype="int64", name=input_name)
    x = keras.layers.Embedding(vocab_size, model.embedding_dim, mask_zero=True, name="embedding")(token_ids)
    x = encode_sequence(x, model)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name=output_name)(x)
    classifier = keras.Model({input_name: token_ids}, probabilities, name="text_classifier")
    classifier.compile(
        # Clipping by global norm is the standard guard against exploding BPTT gradients.
        optimizer=keras.optimizers.Adam(training.learning_rate, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return classifier


def recurrent_layers(model: keras.Model) -> list[keras.layers.RNN]:
    """Every recurrent layer, looking inside Bidirectional wrappers."""
    found = []
    for layer in model._flatten_layers(include_self=False):  # noqa: SLF001 (Keras' own traversal)
        if isinstance(layer, keras.layers.RNN):
            found.append(layer)
    return found


def disable_cudnn(model: keras.Model) -> None:
    """Use the portable kernel when tracing the export graph.

    A Keras 3 LSTM/GRU traced on a GPU embeds CudnnRNNV3, which CPU TF Serving
    cannot run; Bidirectional clones drop `use_cudnn`, so every nested layer is
    set explicitly. Weights are unchanged.
    """
    for layer in recurrent_layers(model):
        if hasattr(layer, "use_cudnn"):
            layer.use_cudnn = False
