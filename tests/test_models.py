"""Model builders: shapes, masking, export-time cuDNN switch, and the notebook's model cells."""

import json
import os

import numpy as np
import pytest

from rnnflow.models.recurrent import build_text_classifier, disable_cudnn, recurrent_layers
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

MAX_TOKENS = 12


def _model(**model_fields):
    return build_text_classifier(ModelConfig(units=4, embedding_dim=4, **model_fields), TrainingConfig(),
                                 vocab_size=20, num_classes=3, max_tokens=MAX_TOKENS, input_name="token_ids")


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn", "mingru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_output_is_a_distribution_over_classes(cell, bidirectional, layers):
    model = _model(cell=cell, bidirectional=bidirectional, layers=layers)
    ids = np.random.default_rng(0).integers(1, 20, size=(5, MAX_TOKENS))
    probabilities = np.asarray(model({"token_ids": ids}))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    if cell != "mingru":  # minGRU is a plain Layer, not a keras.layers.RNN
        assert len(recurrent_layers(model)) == layers * (2 if bidirectional else 1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru"])
def test_padding_never_changes_a_prediction(cell):
    model = _model(cell=cell, bidirectional=True, layers=2)
    short = np.zeros((1, MAX_TOKENS), dtype="int64")
    short[0, :3] = [5, 6, 7]
    longer = short.copy()
    longer[0, 3:6] = [8, 9, 10]
    # Same tokens, padding only after them: the prediction must not depend on how much padding.
    a = np.asarray(model({"token_ids": short}))
    assert not np.allclose(a, np.asarray(model({"token_ids": longer})))
    trimmed = build_text_classifier(ModelConfig(cell=cell, units=4, embedding_dim=4, layers=2), TrainingConfig(),
                                    vocab_size=20, num_classes=3, max_tokens=4, input_name="token_ids")
    trimmed.set_weights(model.get_weights())
    b = np.asarray(trimmed({"token_ids": short[:, :4]}))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_disable_cudnn_reaches_inside_bidirectional():
    model = _model(cell="lstm", bidirectional=True, layers=2)
    layers = recurrent_layers(model)
    assert len(layers) == 4
    disable_cudnn(model)
    assert all(layer.use_cudnn is False for layer in layers)


def test_notebook_model_cells_run():
    path = os.path.join(os.path.dirname(__file__), "..", "notebooks", "quickstart.ipynb")
    with open(path, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    namespace = {}
    for cell in cells[:2]:  # the cells that need no earlier pipeline run
        exec("".join(cell["source"]), namespace)  # noqa: S102
    assert namespace["config"].model.cell == "gru"
    assert namespace["model"].output_shape == (None, 2)
