"""Character-level language modeling on tiny-shakespeare (karpathy/char-rnn) with the `charlm`
defaults: validation cross-entropy in nats per character, and generation speed.

    python -m benchmarks.charlm_shakespeare --json out.json
        [--data ../shared/datasets/tiny_shakespeare/input.txt] [--minutes 30]

A real `rnnflow run --config charlm` with `data.format: text`: the first 90% of the characters
train and the last 10% validate (the task's contiguous split), within a training budget
(`training.max_minutes`). Reported: the Evaluator's nats and bits per character on the last 10%,
epochs, training characters/s, wall time, and from the pushed model in this process: seconds to
generate 500 characters (after one warmup call) and characters/s; and the pushed model's nats
per character on the same last 10% scored in windows of other lengths through its `score`
signature (`by_eval_window`: each window from a zero state, every character but the first scored;
100 is the training window, 256 nanoGPT's block). Numbers are reported, never asserted. Reference: nanoGPT's small transformer reaches 1.47 nats/char; char-RNNs reach about
1.4-1.5 after long training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "tiny_shakespeare", "input.txt")
GENERATED = 500


def generation_speed(model_dir: str, prompt: str = "ROMEO:") -> dict:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    generate = tf.saved_model.load(model_dir).signatures["serving_default"]

    def once():
        return generate(prompt=tf.constant([prompt]), max_length=tf.constant(GENERATED, tf.int32),
                        temperature=tf.constant(0.8), top_k=tf.constant(0, tf.int32), seed=tf.constant(1, tf.int64))

    once()
    start = time.perf_counter()
    text = once()["text"].numpy()[0].decode()
    seconds = time.perf_counter() - start
    return {"characters": GENERATED, "seconds": round(seconds, 3), "characters_per_second": round(GENERATED / seconds),
            "sample": prompt + text[:300]}


def by_eval_window(model_dir: str, config: dict, data: str, windows=(100, 256, 512, 1000)) -> dict:
    """{window: nats per character} of the run's eval split (`config`: the run summary's),
    read and cut into windows of window + 1 characters every `window` as the run reads and cuts
    it (`split_texts`, `cut_windows`)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from rnnflow.components.language_model.reading import cut_windows, split_texts
    from rnnflow.pipeline.config import parse_config

    score = tf.saved_model.load(model_dir).signatures["score"]
    parsed = parse_config(config)
    tail = split_texts(parsed, [data]).tokens["eval"]
    scores = {}
    for window in windows:
        pieces = cut_windows(tail, window, parsed.task.tokenizer)
        log_likelihood = tokens = 0.0
        for start in range(0, len(pieces), 64):
            out = score(text=tf.constant(pieces[start:start + 64]))
            log_likelihood += float(tf.reduce_sum(out["log_likelihood"]))
            tokens += float(tf.reduce_sum(out["tokens"]))
        scores[str(window)] = round(-log_likelihood / tokens, 4)
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config override after the benchmark's own (a variant; recorded in the JSON)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        print(f"tiny-shakespeare not found at {args.data} (set RNNFLOW_DATASETS or --data)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rnnflow-charlm-bench-") as scratch:
        if args.keep:
            scratch = args.keep
            os.makedirs(scratch, exist_ok=True)
        command = [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "charlm", "--output-dir", scratch,
                   "--set", f"data.path={os.path.abspath(args.data)}", "--set", "data.format=text",
                   # epochs and patience: the config's auto (about 4,000 steps), within the budget.
                   "--set", f"training.max_minutes={args.minutes}",
                   # The full-size model; the built-in config is sized to finish in minutes.
                   "--set", "model.layers=2", "--set", "model.units=256"]
        for override in args.set:
            command += ["--set", override]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        summary_path = os.path.join(scratch, "run_summary.json")
        if not os.path.exists(summary_path):
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        training = summary.get("training") or {}
        throughput = training.get("throughput") or [{}]
        window = summary["config"]["task"]["window"]
        report = {
            "benchmark": "charlm_tiny_shakespeare", "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "status": summary["status"], "error": summary.get("error"), "training_budget_minutes": args.minutes,
            "overrides": args.set,
            "pipeline_wall_seconds": round(wall, 1), "epochs_run": training.get("epochs_run"),
            "stopped_by_budget": training.get("stopped_by_budget"),
            "resolved": (summary.get("resolved") or {}).get("values"),
            "lr_decay_fitted_to_budget": training.get("lr_decay_fitted_to_budget"),
            "train_characters_per_second": round((throughput[-1].get("train_examples_per_second") or 0) * window),
            "metrics": summary.get("metrics"), "input": summary.get("input"),
            "references": {"nanogpt_small_transformer_nats_per_char": 1.47}}
        model = summary.get("pushed_model")
        if model:
            report["generation"] = generation_speed(model)
            report["nats_per_char_by_eval_window"] = by_eval_window(model, summary["config"], os.path.abspath(args.data))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
