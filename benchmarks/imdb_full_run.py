"""A full `rnnflow run` on the 25,000 IMDB training reviews with only `data.*` overrides, then the
pushed model scored on the 25,000 test reviews through its `serving_default` signature.

    python -m benchmarks.imdb_full_run --json out.json [--data ../shared/datasets/imdb/imdb_50k_split.csv]
        [--output-dir DIR] [--set k=v ...]

The training CSV (review, label: the official train split, nothing else, so the rating column
cannot leak the label) is written to a temporary directory, never into the repository. The
run uses the built-in `sentiment` config as a new user would (`--config sentiment --set
data.path=... --set data.text_column=review --set data.label_column=label`); its `auto` fields
resolve from the data. Reports the run's wall time and per-component seconds, the resolved
values, training examples/s per epoch, test accuracy, and serving throughput (texts/s through
`serving_default` at batch 256) on the test reviews and on their first sentences. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from benchmarks.train_throughput import DEFAULT_DATA, first_sentence

SERVING_BATCH = 256


def split_rows(path: str, split: str) -> list[tuple[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        return [(row["review"], row["label"]) for row in csv.DictReader(f) if row["split"] == split]


def serve(model_dir: str, texts: list[str]) -> tuple[list[str], float]:
    """Predicted labels through serving_default, and texts/s (after one warm-up batch)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (ops of the serving graph)

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    input_name = list(signature.structured_input_signature[1])[0]
    signature(**{input_name: tf.constant(texts[:SERVING_BATCH])})
    labels, started = [], time.perf_counter()
    for start in range(0, len(texts), SERVING_BATCH):
        out = signature(**{input_name: tf.constant(texts[start:start + SERVING_BATCH])})
        labels += [v.decode() for v in out["label"].numpy()]
    return labels, len(texts) / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--json", required=True)
    parser.add_argument("--output-dir", help="keep the run here (default: a temporary directory)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra overrides (the benchmark's claim is about data.* only)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.data):
        raise SystemExit(f"--data {args.data}: not found (see ../shared/datasets/README.md)")
    scratch = tempfile.mkdtemp(prefix="rnnflow-imdb-")
    files = {}
    for split in ("train", "test"):
        files[split] = os.path.join(scratch, f"imdb_{split}.csv")
        with open(files[split], "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "label"])
            writer.writerows(split_rows(args.data, split))
    output_dir = args.output_dir or os.path.join(scratch, "run")
    # IMDB has no dev file: the run hash-splits train.csv into train and eval, and scores the
    # official test reviews itself (data.test_path -> test_metrics).
    command = [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "sentiment", "--output-dir", output_dir,
               "--set", f"data.path={files['train']}", "--set", f"data.test_path={files['test']}",
               "--set", "data.text_column=review", "--set", "data.label_column=label"]
    for override in args.overrides:
        command += ["--set", override]
    started = time.time()
    result = subprocess.run(command, text=True)  # the run's own progress goes to the console
    wall = time.time() - started
    with open(os.path.join(output_dir, "run_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    report = {"data": os.path.abspath(args.data), "overrides": args.overrides, "exit_code": result.returncode,
              "wall_seconds": round(wall, 1), "status": summary["status"],
              "components": {c["name"]: c["seconds"] for c in summary["components"]},
              "resolved": summary.get("resolved"), "eval_metrics": summary.get("metrics"),
              "run_test_metrics": summary.get("test_metrics"),
              "epochs_run": (summary.get("training") or {}).get("epochs_run"),
              "throughput": (summary.get("training") or {}).get("throughput"),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    if summary.get("pushed_model"):
        test = split_rows(args.data, "test")
        predicted, texts_per_s = serve(summary["pushed_model"], [text for text, _ in test])
        report["test_accuracy"] = round(sum(p == label for p, (_, label) in zip(predicted, test)) / len(test), 4)
        report["test_rows"] = len(test)
        report["serving_texts_per_s"] = {"reviews": round(texts_per_s, 1)}
        _, short_per_s = serve(summary["pushed_model"], [first_sentence(text) for text, _ in test[:5000]])
        report["serving_texts_per_s"]["first_sentences"] = round(short_per_s, 1)
    text = json.dumps(report, indent=2)
    with open(args.json, "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
