"""English -> French translation on the Tatoeba/Anki pairs (manythings.org `fra.txt`, 142,787
pairs, CC-BY 2.0) with the built-in `translate` defaults and only `data.*` set.

    python -m benchmarks.translation_fra_eng --json out.json
        [--data ../shared/datasets/fra_eng/fra.txt] [--pairs N] [--keep DIR] [--set field=value ...]
        [--longest N] [--reverse] [--dev-percent P]

`--longest 31000 --reverse --dev-percent 3.4` is a stand-in for a caption corpus such as
Multi30k (29k training pairs of about 12 words, 1k dev, 1k test, into English): the 31,000
pairs with the longest English sentences (10 words on average), French -> English, a dev file
by source hash given as `data.eval_path`.

A fixed test split by source hash (every pair whose English sentence hashes into the lowest 4
of 100 buckets: no source of the test file is in train or eval) goes to `data.test_path`; the
rest is `data.path`, which the task hash-splits into train and eval by source. One real
`rnnflow run --config translate`. Reported, never asserted: sacreBLEU (13a, detokenized, cased)
and lowercased BLEU with its tokenizer, chrF, greedy and beam (`task.beam_size`), on the test
split (the run's own test report) and eval; training time, epochs and examples/s; and from the
pushed SavedModel in this process, serving latency p50/p99 of a 12-word sentence at batch 1 and
64, greedy (`serving_default`) and beam 5 (`translate_beam`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "fra_eng", "fra.txt")
TEST_BUCKETS = 4  # of 100, by the hash of the English sentence
SENTENCE = "I would like to know where I can buy a ticket for the train."  # 12 words (13a-tokenized: 14)
SENTENCE_FR = "Je voudrais savoir où je peux acheter un billet pour le train."  # 12 words, for --reverse


def bucket(source: str, salt: bytes) -> float:
    """A fixed place in [0, 100) for an English sentence."""
    return int(hashlib.sha256(salt + source.encode("utf-8")).hexdigest()[:8], 16) % 10_000 / 100


def test_bucket(source: str) -> bool:
    return int(hashlib.sha256(b"test:" + source.encode("utf-8")).hexdigest()[:8], 16) % 100 < TEST_BUCKETS


def write_splits(data: str, folder: str, limit: int | None, longest: int | None = None,
                 dev_percent: float = 0.0) -> dict[str, int]:
    with open(data, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if longest:  # by English words; the sort is stable, so ties keep the file's order
        lines = sorted(lines, key=lambda line: len(line.split("\t")[0].split()))[-longest:]
    if limit:
        lines = lines[::max(1, len(lines) // limit)][:limit]
    english = [line.split("\t")[0] for line in lines]
    test = [line for line, source in zip(lines, english) if test_bucket(source)]
    dev = [line for line, source in zip(lines, english) if not test_bucket(source) and bucket(source, b"dev:") < dev_percent]
    train = [line for line, source in zip(lines, english)
             if not test_bucket(source) and not bucket(source, b"dev:") < dev_percent]
    for name, part in (("train.tsv", train), ("test.tsv", test), ("dev.tsv", dev)):
        if part:
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write("\n".join(part) + "\n")
    return {"train_file_pairs": len(train), "dev_pairs": len(dev), "test_pairs": len(test),
            "mean_english_words": round(sum(len(e.split()) for e in english) / max(1, len(english)), 2)}


def latency(model_dir: str, sentence: str = SENTENCE) -> dict:
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(model_dir)
    greedy, beam = model.signatures["serving_default"], model.signatures["translate_beam"]
    result = {}
    for batch in (1, 64):
        source = tf.constant([sentence] * batch)
        calls = {"greedy": lambda: greedy(source=source),
                 "beam_5": lambda: beam(source=source, beam_size=tf.constant(5), max_length=tf.constant(200))}
        for name, call in calls.items():
            call()
            times = []
            for _ in range(30 if batch == 1 else 5):
                start = time.perf_counter()
                answer = call()
                answer["translation"].numpy()
                times.append((time.perf_counter() - start) * 1000)
            result[f"{name}_batch_{batch}"] = {"p50_ms": round(float(np.percentile(times, 50)), 1),
                                               "p99_ms": round(float(np.percentile(times, 99)), 1)}
    result["sentence"] = sentence
    result["translation_greedy"] = greedy(source=tf.constant([sentence]))["translation"].numpy()[0].decode()
    result["translation_beam_5"] = beam(source=tf.constant([sentence]), beam_size=tf.constant(5),
                                        max_length=tf.constant(200))["translation"].numpy()[0].decode()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--pairs", type=int, help="a spread sample of this many pairs (a quick check)")
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config override beyond data.* (a variant of the defaults; reported)")
    parser.add_argument("--longest", type=int, help="only the N pairs with the longest English sentences")
    parser.add_argument("--reverse", action="store_true", help="French -> English")
    parser.add_argument("--dev-percent", type=float, default=0.0,
                        help="a dev file of this share of the pairs, by source hash, as data.eval_path")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        print(f"fra.txt not found at {args.data} (set RNNFLOW_DATASETS or --data)", file=sys.stderr)
        return 2
    scratch = args.keep or tempfile.mkdtemp(prefix="rnnflow-translation-bench-")
    os.makedirs(scratch, exist_ok=True)
    sizes = write_splits(args.data, scratch, args.pairs, args.longest, args.dev_percent)
    data_sets = ["--set", f"data.eval_path={os.path.join(scratch, 'dev.tsv')}"] if sizes["dev_pairs"] else []
    if args.reverse:
        data_sets += ["--set", "data.source_column=1", "--set", "data.target_column=0"]
    output_dir = os.path.join(scratch, "run")
    command = [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "translate", "--output-dir", output_dir,
               "--set", f"data.path={os.path.join(scratch, 'train.tsv')}",
               "--set", f"data.test_path={os.path.join(scratch, 'test.tsv')}", *data_sets,
               *[a for override in args.set for a in ("--set", override)]]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary_path = os.path.join(output_dir, "run_summary.json")
    if not os.path.exists(summary_path):
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        return 1
    with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    training = summary.get("training") or {}
    throughput = training.get("throughput") or [{}]
    report = {
        "benchmark": "translation_fra_eng", "direction": "fr->en" if args.reverse else "en->fr",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "data": {**sizes, "pairs_limit": args.pairs, "longest": args.longest}, "overrides": args.set, "status": summary["status"],
        "error": summary.get("error"),
        "pipeline_wall_seconds": round(wall, 1), "resolved": summary.get("resolved", {}).get("values"),
        "epochs_run": training.get("epochs_run"), "best_epoch": training.get("best_epoch"),
        "stopped_by_budget": training.get("stopped_by_budget"),
        "lr_decay_fitted_to_budget": training.get("lr_decay_fitted_to_budget"),
        "training_seconds": round(sum(e.get("seconds", 0) for e in throughput), 1),
        "train_examples_per_second": throughput[-1].get("train_examples_per_second"),
        "model": summary.get("model"), "sacrebleu_signature": summary.get("sacrebleu_signature"),
        "eval_metrics": summary.get("metrics"), "test_metrics": summary.get("test_metrics"),
        "command": " ".join(command[1:]),
    }
    if summary.get("pushed_model"):
        report["serving_latency"] = latency(summary["pushed_model"], SENTENCE_FR if args.reverse else SENTENCE)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
