"""Trainer throughput on a real text file, through rnnflow's own Transform and input pipeline.

    python -m benchmarks.train_throughput --data ../shared/datasets/imdb/imdb_50k_split.csv \\
        --text-column review --label-column label [--rows 3000] [--json out.json]

For two shapes of text from the file, `long` (the texts as they are, truncated at
`task.max_tokens`) and `short` (each text's first sentence), it runs rnnflow's Transform
(`preprocessing_fn` under tft_beam, in process) on `--rows` rows, then trains the model the
Trainer builds (`build_text_classifier`, the sentiment config's model, or `--set` overrides)
for `--epochs` epochs on the transformed rows, batched two ways:

- `bucketed`: the Trainer's input pipeline (`batched_by_length`: similar lengths together,
  each batch padded to its own longest row);
- `fixed`: every row padded to `task.max_tokens` (rnnflow's shape before length-aware batching).

`--defaults fixed` (default) trains at `task.max_tokens` 200 and batch 16, the shape of the
hand-written comparison in issue 10; `--defaults auto` resolves the sentiment config's `auto`
fields on the rows as a run would (`resolve_config`) and reports them.

Examples/s are the last epoch's (the first one includes tracing), from the Trainer's own
progress callback; inference examples/s are for batches of 256 padded either way. Writes JSON;
asserts nothing. The Transform's reading of files (TFXIO) is not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import sys
import tempfile
import time

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "imdb", "imdb_50k_split.csv")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def read_rows(path: str, text_column: str, label_column: str, rows: int) -> list[tuple[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for column in (text_column, label_column):
            if column not in (reader.fieldnames or []):
                raise SystemExit(f"--data {path}: no column '{column}'; columns: {', '.join(reader.fieldnames or [])}")
        out = [(row[text_column], row[label_column]) for row in reader]
    # A seeded sample, not the first rows: files are often sorted by label (IMDB's is).
    return random.Random(0).sample(out, min(rows, len(out)))


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.replace("<br />", " ").strip(), maxsplit=1)[0]


def transform(rows: list[tuple[str, str]], config) -> tuple[list[list[int]], list[int], int, int]:
    """rnnflow's preprocessing_fn over the rows: (token id rows, label ids, vocab size, classes)."""
    import functools

    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from rnnflow.components.text_classification import preprocessing
    from rnnflow.components.text_classification.schema import LABEL_ID, TOKEN_IDS

    data = config.data
    labels = sorted({label for _, label in rows})
    custom_config = {"config": config.to_dict(), "input": {"details": {"label_values": labels}}}
    spec = {data.text_column: tf.io.FixedLenFeature([], tf.string), data.label_column: tf.io.FixedLenFeature([], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [{data.text_column: text.encode(), data.label_column: label.encode()} for text, label in rows]
    out_dir = tempfile.mkdtemp()
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    output = tft.TFTransformOutput(out_dir)
    ids = [[int(v) for v in r[f"{TOKEN_IDS}$ragged_values"]] for r in transformed]
    return ids, [int(r[LABEL_ID]) for r in transformed], \
        preprocessing.vocabulary_size(output, config.task.oov_buckets), len(labels)


def resolve_config(config, rows: list[tuple[str, str]]):
    """`config` with its auto fields resolved on `rows` as a run resolves them: the task's by
    Transform's measurement (`data_scale`), training's for len(rows) training examples."""
    import dataclasses

    import tensorflow as tf

    from rnnflow.components.text_classification import data_scale
    from rnnflow.pipeline.config import replace_fields, resolve_training

    texts = [text for text, _ in rows]
    measured = data_scale.resolve(config.task, [tf.constant(texts[i:i + 1024])
                                                              for i in range(0, len(texts), 1024)])
    config = replace_fields(config, measured["values"]) if measured["values"] else config
    training, by_rows = resolve_training(config.training, len(rows))
    return dataclasses.replace(config, training=training), {**measured["values"], **by_rows}


def measure(ids, labels, vocab_size: int, classes: int, config, epochs: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from rnnflow.components.training.progress import TrainingProgress
    from rnnflow.components.text_classification.schema import TOKEN_IDS
    from rnnflow.components.training.trainer import batched_by_length
    from rnnflow.models.recurrent import build_text_classifier

    batch, max_tokens = config.training.batch_size, config.task.max_tokens
    ragged = tf.ragged.constant(ids, dtype=tf.int64)
    one_hot = tf.one_hot(labels, classes)
    results = {"rows": len(ids), "mean_tokens": round(float(np.mean([len(r) for r in ids])), 1),
               "max_tokens": max_tokens, "batch_size": batch}
    for mode in ("bucketed", "fixed"):
        keras.utils.set_random_seed(0)
        if mode == "bucketed":
            dataset = batched_by_length(tf.data.Dataset.from_tensors(({TOKEN_IDS: ragged}, one_hot)), TOKEN_IDS,
                                        batch, max_tokens)
        else:
            padded = ragged.to_tensor(shape=[None, max_tokens])
            dataset = tf.data.Dataset.from_tensor_slices(({TOKEN_IDS: padded}, one_hot)).batch(batch)
        dataset = dataset.cache()
        model = build_text_classifier(config.model, config.training, vocab_size=vocab_size, num_classes=classes,
                                      input_name=TOKEN_IDS)
        progress = TrainingProgress(epochs=epochs, batch_size=batch, interval=60, echo=lambda line: None)
        model.fit(dataset, epochs=epochs, verbose=0, callbacks=[progress])
        last = progress.epoch_records[-1]
        # Inference: 256 rows at a time, padded to the batch's longest row or to max_tokens.
        sample = ragged[:256]
        infer_input = sample.to_tensor() if mode == "bucketed" else sample.to_tensor(shape=[None, max_tokens])
        predict = tf.function(lambda x: model({TOKEN_IDS: x}, training=False))
        predict(infer_input)
        start, repeats = time.perf_counter(), 5
        for _ in range(repeats):
            predict(infer_input).numpy()
        infer = repeats * int(sample.shape[0]) / (time.perf_counter() - start)
        results[mode] = {"train_examples_per_s": last["train_examples_per_second"],
                         "epoch_seconds": last["seconds"], "infer_examples_per_s": round(infer, 1)}
    results["bucketed_speedup"] = round(results["bucketed"]["train_examples_per_s"]
                                        / max(results["fixed"]["train_examples_per_s"], 1e-9), 2)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--text-column", default="review")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--shapes", nargs="+", default=["short", "long"], choices=["short", "long"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config overrides on the sentiment config, e.g. task.max_tokens=200")
    parser.add_argument("--defaults", choices=["fixed", "auto"], default="fixed",
                        help="fixed: task.max_tokens 200 and batch 16 (the hand-written comparison's shape); "
                             "auto: the sentiment config's auto fields resolved on the rows, as a run would")
    parser.add_argument("--json", help="write the results here (default: stdout)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.data):
        raise SystemExit(f"--data {args.data}: not found (see ../shared/datasets/README.md)")
    import tensorflow as tf

    from rnnflow.pipeline.config import load_config

    fixed = ["task.max_tokens=200", "training.batch_size=16"] if args.defaults == "fixed" else []
    config = load_config("sentiment", [*fixed, *args.overrides, f"data.text_column={args.text_column}",
                                       f"data.label_column={args.label_column}"])
    rows = read_rows(args.data, args.text_column, args.label_column, args.rows)
    report = {"data": os.path.abspath(args.data), "device": "gpu" if tf.config.list_logical_devices("GPU") else "cpu",
              "cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
              "model": config.to_dict()["model"], "shapes": {}}
    for shape in args.shapes:
        texts = rows if shape == "long" else [(first_sentence(text), label) for text, label in rows]
        shape_config, resolved = resolve_config(config, texts)
        print(f"{shape}: transforming {len(texts)} rows ({resolved or 'nothing auto'})", file=sys.stderr, flush=True)
        ids, labels, vocab_size, classes = transform(texts, shape_config)
        print(f"{shape}: training {args.epochs} epochs, bucketed and fixed", file=sys.stderr, flush=True)
        report["shapes"][shape] = {"resolved": resolved,
                                   **measure(ids, labels, vocab_size, classes, shape_config, args.epochs)}
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
