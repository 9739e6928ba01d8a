"""Multi-worker training: when TF_CONFIG names several workers (as Vertex AI and Kubeflow
training jobs set it), the Trainer trains under MultiWorkerMirroredStrategy. Keras 3.6's
model.fit cannot (keras-team/keras#20585), so rnnflow's `fit` runs its own distributed loop
there; the two-worker test below runs that code path in two processes on localhost."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.training.trainer import distribution_strategy, worker_count

WORKER = textwrap.dedent("""
    import json, logging, sys, types
    import keras
    import numpy as np
    import tensorflow as tf
    from rnnflow.components.training.trainer import distribution_strategy, fit
    from rnnflow.pipeline.config import load_config

    logging.basicConfig(level=logging.INFO)
    distribution_strategy()  # first, as the Trainer's run_fn does: before any TensorFlow op
    kind = sys.argv[3]
    small = ["model.units=8", "model.embedding_dim=8", "training.batch_size=16", "training.learning_rate=0.003",
             "training.lr_schedule=constant", "training.epochs=3", "training.early_stopping_patience=2",
             "training.ema_momentum=0"]
    rng = np.random.default_rng(0)  # the same data on both workers; the strategy shards it
    tokens = rng.integers(1, 50, size=(70, 12))  # 70 rows: the last batch is partial
    class_weight = None
    if kind == "classifier":
        from rnnflow.models.recurrent import build_text_classifier
        config = load_config("sentiment", small)
        inputs, labels = {"token_ids": tokens}, tf.one_hot(rng.integers(0, 2, size=70), 2)
        class_weight = {0: 0.5, 1: 1.5}
        def make():
            return build_text_classifier(config.model, config.training, vocab_size=50, num_classes=2,
                                         input_name="token_ids")
    elif kind == "crf_tagger":  # its loss is a closure over the CRF's transition weights
        from rnnflow.models.tagger import build_tagger
        config = load_config("ner", [*small, "data.path=x.txt"])
        inputs = {"word_ids": tokens}
        labels = np.where(np.arange(12) < rng.integers(3, 12, size=(70, 1)), rng.integers(0, 5, size=(70, 12)), -1)
        def make():
            return build_tagger(config.model, config.training, vocab_size=50, num_tags=5, char_vocab_size=10,
                                word_chars=4, char_encoder="none", decoder="crf")
    else:  # a language model: next-token logits at every step
        import dataclasses
        from rnnflow.models.language_model import build_language_model
        config = load_config("charlm", small)
        inputs, labels = {"token_ids": tokens[:, :-1]}, tokens[:, 1:]
        def make():
            model = build_language_model(50, dataclasses.replace(config.model, layers=1, dropout=0.0))
            model.compile(optimizer=keras.optimizers.Adam(0.003),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            return model

    class Data:
        def train(self):
            return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)
        def eval(self):
            return tf.data.Dataset.from_tensor_slices(({k: v[:20] for k, v in inputs.items()}, labels[:20])).batch(16)
        def compatibility(self):
            return {}

    built = []
    def build():
        model = make()
        built.append([w.copy() for w in model.get_weights()])
        return model

    fn_args = types.SimpleNamespace(model_run_dir=sys.argv[2], base_model=None)
    model, history, warm = fit(config, fn_args, build, Data(), class_weight=class_weight)
    np.savez(sys.argv[1], *model.get_weights())
    moved = any(not np.allclose(a, b) for a, b in zip(built[0], model.get_weights()))
    print(json.dumps({"moved": moved, "epochs": len(history.epoch), "keys": sorted(history.history),
                      "val_loss": history.history["val_loss"]}))
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_tf_config_with_several_workers_selects_multi_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert worker_count() == 3
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}))
    assert worker_count() == 1
    monkeypatch.delenv("TF_CONFIG")
    assert worker_count() == 1 and type(distribution_strategy()).__name__ != "MultiWorkerMirroredStrategy"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        worker_count()


@pytest.mark.parametrize("kind, keys", [
    ("classifier", ["loss", "val_accuracy", "val_loss"]),
    ("crf_tagger", ["loss", "val_loss", "val_token_accuracy"]),
    ("language_model", ["loss", "val_loss"]),
])
def test_two_workers_on_localhost_train_to_the_same_weights(tmp_path, kind, keys):
    hosts = [f"localhost:{port}" for port in _free_ports(2)]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{index}.npz"),
                                           str(tmp_path / f"run{index}"), kind],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        assert "Epoch 1/3 (2 workers)" in err  # the distributed loop ran, not plain fit
        results.append(json.loads(out.strip().splitlines()[-1]))
    # Both trained (the weights moved from the initial values) for the same epochs, and saw the
    # same validation losses: one job, not two.
    assert results[0] == results[1] and results[0]["moved"] is True and results[0]["epochs"] >= 1
    assert results[0]["keys"] == keys
    first, second = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_allclose(first[name], second[name], rtol=1e-6, atol=1e-6)
