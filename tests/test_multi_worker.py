"""Multi-worker training: when TF_CONFIG names several workers (as Vertex AI and Kubeflow
training jobs set it), the Trainer picks MultiWorkerMirroredStrategy.

Keras 3.6 (the Keras keras-tuner 1.4 needs) cannot run model.fit under that strategy
(keras-team/keras#20585): the two-worker test below reproduces it and is a strict xfail, so it
fails (and must be turned on) once the lock moves to a Keras that can; until then the Trainer
refuses a multi-worker TF_CONFIG with a clear message instead of crashing mid-step."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from rnnflow.components.training import distribution_strategy, worker_count

WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    from rnnflow.components.training import distribution_strategy
    from rnnflow.models.recurrent import build_text_classifier
    from rnnflow.pipeline.config import load_config

    config = load_config("sentiment", ["model.units=8", "model.embedding_dim=8", "training.batch_size=8"])
    strategy = distribution_strategy()
    with strategy.scope():
        model = build_text_classifier(config.model, config.training, vocab_size=50, num_classes=2,
                                      max_tokens=12, input_name="token_ids")
    rng = np.random.default_rng(0)  # the same data on both workers; tf.data shards it
    tokens = rng.integers(1, 50, size=(64, 12))
    labels = tf.one_hot(rng.integers(0, 2, size=64), 2)
    dataset = tf.data.Dataset.from_tensor_slices(({"token_ids": tokens}, labels)).batch(16)
    initial = [w.copy() for w in model.get_weights()]
    model.fit(dataset, epochs=2, verbose=0)
    np.savez(sys.argv[1], *model.get_weights())
    moved = any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights()))
    print(json.dumps({"strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                      "moved": moved}))
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


def test_the_trainer_refuses_multi_worker_with_a_clear_message(monkeypatch):
    from rnnflow.components.training import UnsupportedStrategyError, check_supported

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1", "localhost:2"]},
                                                "task": {"type": "worker", "index": 0}}))

    class FakeMultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        def __init__(self):  # no cluster needed to check the type
            pass

    with pytest.raises(UnsupportedStrategyError, match=r"2 workers, but Keras 3\.\d+.*keras-team/keras#20585"):
        check_supported(FakeMultiWorker())
    check_supported(tf.distribute.get_strategy())


@pytest.mark.xfail(strict=True, reason="Keras 3.6 model.fit under MultiWorkerMirroredStrategy: keras-team/keras#20585")
def test_two_workers_on_localhost_train_to_the_same_weights(tmp_path):
    hosts = [f"localhost:{port}" for port in _free_ports(2)]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{index}.npz")],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    # Both trained (the weights moved from the broadcast initial values) as one 2-replica job.
    assert results == [{"strategy": "MultiWorkerMirroredStrategy", "replicas": 2, "moved": True}] * 2
    first, second = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_allclose(first[name], second[name], rtol=1e-6, atol=1e-6)
