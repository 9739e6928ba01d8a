"""Training and inference throughput of each recurrent cell on the same synthetic batches.

    python -m benchmarks.throughput --json out.json [--quick]

Writes a JSON list, one object per (cell, bidirectional, seq_len) with keys
cell, bidirectional, seq_len, batch, params, train_examples_per_s,
infer_examples_per_s, peak_memory_mb, cudnn_eligible, device. All cells share
the width (`--units`) and the batch shapes, so rows are comparable within a run.
peak_memory_mb is the GPU allocator's peak for the configuration on a GPU; on
CPU it is the process's peak resident set so far (monotone across rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

CELLS = ("simple_rnn", "lstm", "gru", "mingru")
SEQ_LENS = (64, 256, 1024)
FEATURES = 16


def measure(cell: str, bidirectional: bool, seq_len: int, batch: int, units: int, steps: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from rnnflow.models.recurrent import cudnn_eligibility, recurrent_layer
    from rnnflow.pipeline.config import ModelConfig

    keras.utils.set_random_seed(0)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    config = ModelConfig(cell=cell, bidirectional=bidirectional, units=units)
    inputs = keras.Input((seq_len, FEATURES))
    outputs = keras.layers.Dense(1)(recurrent_layer(config, return_sequences=False, name=cell)(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)
    loss_fn = keras.losses.MeanSquaredError()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, seq_len, FEATURES)), tf.float32)
    y = tf.constant(rng.normal(size=(batch, 1)), tf.float32)

    # Compiled once, outside the timed loops (Keras' train_on_batch retraces on every call).
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def infer(x):
        return model(x, training=False)

    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    train_step(x, y).numpy()  # trace and warm up
    started = time.perf_counter()
    for _ in range(steps):
        loss = train_step(x, y)
    loss.numpy()
    train_seconds = time.perf_counter() - started

    infer(x).numpy()
    started = time.perf_counter()
    for _ in range(steps):
        out = infer(x)
    out.numpy()
    infer_seconds = time.perf_counter() - started

    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "cell": cell, "bidirectional": bidirectional, "seq_len": seq_len, "batch": batch,
        "params": int(model.count_params()),
        "train_examples_per_s": round(steps * batch / train_seconds, 1),
        "infer_examples_per_s": round(steps * batch / infer_seconds, 1),
        "peak_memory_mb": round(peak, 1),
        "cudnn_eligible": all(r["eligible"] for r in cudnn_eligibility(model)),
        "device": tf.config.list_logical_devices("GPU")[0].name if gpu else "CPU",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="where to write the JSON list")
    parser.add_argument("--quick", action="store_true", help="smaller width and fewer steps (under two minutes on CPU)")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one model per row: retracing warnings are expected
    batch = args.batch or (16 if args.quick else 64)
    units = args.units or (32 if args.quick else 128)
    steps = args.steps or (3 if args.quick else 10)

    rows = []
    for seq_len in SEQ_LENS:
        for bidirectional in (False, True):
            for cell in CELLS:
                row = measure(cell, bidirectional, seq_len, batch, units, steps)
                rows.append(row)
                print(f"{cell:>10} bi={str(bidirectional):5} len={seq_len:5} "
                      f"train {row['train_examples_per_s']:9.1f}/s  infer {row['infer_examples_per_s']:9.1f}/s  "
                      f"params {row['params']}", flush=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2)
    for bidirectional in (False, True):
        at = {r["cell"]: r for r in rows if r["seq_len"] == max(SEQ_LENS) and r["bidirectional"] == bidirectional}
        ratio = at["mingru"]["train_examples_per_s"] / at["gru"]["train_examples_per_s"]
        print(f"minGRU/GRU training throughput at seq_len {max(SEQ_LENS)} (bidirectional={bidirectional}): "
              f"{ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
