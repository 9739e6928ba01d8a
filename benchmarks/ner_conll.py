"""Named-entity F1 on CoNLL-2003 (Tjong Kim Sang & De Meulder 2003) with the `ner` defaults and
variants: softmax instead of the CRF, each without the character encoder, without word dropout,
early stopping with the `auto` patience instead of the whole schedule (`patience_auto`).

    python -m benchmarks.ner_conll --json out.json [--data ../shared/datasets/conll2003]
        [--minutes M] [--variant-minutes 4] [--variants crf_chars softmax_chars crf_words ...]
        [--set FIELD=VALUE ...]

Each variant is a real `rnnflow run --config ner` with only `data.*` set (the defaults: no
`--minutes`): the corpus's own splits, `train.txt` to train, `valid.txt` (`data.eval_path`) for early
stopping and the blessing, `test.txt` (`data.test_path`) scored once at the end by the run itself
(`test_metrics`, TFMA with the task's entity metrics). The pushed model then also tags `test.txt`
through its `serving_tokens` signature in this process, scored as the CoNLL scorer counts entities
(`conll.span_scores`): the served model must agree with the run's own test report. Reported per
variant: test and eval entity F1, per-type test F1, epochs, training examples/s, tagging
sentences/s, wall time. Numbers are reported, never asserted.

Published reference points: BiLSTM-CRF from random embeddings 84.3 F1 (Huang et al. 2015);
83.6 with characters and dropout (Lample et al. 2016).
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

DEFAULT_DATA = os.path.join(os.environ.get("RNNFLOW_DATASETS", "../shared/datasets"), "conll2003")
VARIANTS = {
    "crf_chars": [],  # the ner defaults
    "no_word_dropout": ["model.word_dropout=0"],
    # Early stopping after ~600 steps without a better eval entity F1 (3 epochs here).
    "patience_auto": ["training.early_stopping_patience=auto"],
    "softmax_chars": ["task.decoder=softmax"],
    "crf_words": ["task.char_encoder=none"],
    "softmax_words": ["task.decoder=softmax", "task.char_encoder=none"],
}


def tag_file(model_dir: str, path: str, batch: int = 64) -> dict:
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from rnnflow.components.sequence_labeling import conll

    sentences = conll.read_conll(path)
    gold = [conll.normalize_tags(s.tags)[0] for s in sentences]
    serve = tf.saved_model.load(model_dir).signatures["serving_tokens"]
    predicted, start = [], time.perf_counter()
    for i in range(0, len(sentences), batch):
        rows = [s.tokens for s in sentences[i:i + batch]]
        width = max(len(r) for r in rows)
        tags = serve(tokens=tf.constant([r + [""] * (width - len(r)) for r in rows]))["tags"].numpy()
        for row, row_tags in zip(rows, tags):
            tagged = [t.decode() for t in row_tags[:len(row)]]
            predicted.append(tagged + ["O"] * (len(row) - len(tagged)))  # past max_tokens: O
    seconds = time.perf_counter() - start
    scores = conll.span_scores(gold, predicted)
    return {"sentences": len(sentences), "tagging_seconds": round(seconds, 2),
            "sentences_per_second": round(len(sentences) / seconds, 1),
            "entity_f1": round(scores["overall"]["f1"], 4),
            "entity_precision": round(scores["overall"]["precision"], 4),
            "entity_recall": round(scores["overall"]["recall"], 4),
            "f1_by_type": {k: round(v["f1"], 4) for k, v in scores.items() if k != "overall"},
            "token_accuracy": round(float(np.mean([g == p for gs, ps in zip(gold, predicted)
                                                   for g, p in zip(gs, ps)])), 4)}


def run_variant(name: str, overrides: list[str], data: str, minutes: float | None, scratch: str) -> dict:
    output_dir = os.path.join(scratch, name)
    args = [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "ner", "--output-dir", output_dir,
            "--set", f"data.path={os.path.join(data, 'train.txt')}",
            "--set", f"data.eval_path={os.path.join(data, 'valid.txt')}",
            "--set", f"data.test_path={os.path.join(data, 'test.txt')}"]
    if minutes:
        args += ["--set", f"training.max_minutes={minutes}"]
    for override in overrides:
        args += ["--set", override]
    print(f"[{name}] {' '.join(args[3:])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary_path = os.path.join(output_dir, "run_summary.json")
    if not os.path.exists(summary_path):
        return {"overrides": overrides, "error": result.stderr[-2000:]}
    with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    training = summary.get("training") or {}
    throughput = training.get("throughput") or [{}]
    report = {"overrides": overrides, "status": summary["status"], "pipeline_wall_seconds": round(wall, 1),
              "epochs_run": training.get("epochs_run"), "best_epoch": training.get("best_epoch"),
              "history": training.get("history"), "stopped_by_budget": training.get("stopped_by_budget"),
              "train_examples_per_second": throughput[-1].get("train_examples_per_second"),
              "resolved": (summary.get("resolved") or {}).get("values"),
              "eval_entity_f1": (summary.get("metrics") or {}).get("entity_f1"),
              "run_test_metrics": summary.get("test_metrics"), "seconds": summary.get("seconds")}
    model = summary.get("pushed_model") or _trained_model(output_dir)
    if model:
        report["test"] = tag_file(model, os.path.join(data, "test.txt"))
    print(f"[{name}] {json.dumps(report)}", flush=True)
    return report


def _trained_model(output_dir: str) -> str | None:
    """The Trainer's model when nothing was pushed (a variant below the blessing bound)."""
    import glob

    found = sorted(glob.glob(os.path.join(output_dir, "pipeline_root", "Trainer", "model", "*", "Format-Serving")))
    return found[-1] if found else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget of the defaults (crf_chars); default: the config's")
    parser.add_argument("--variant-minutes", type=float, default=4.0, help="training budget of the other variants")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config override after each variant's own (repeatable; recorded in the JSON)")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.data, "train.txt")):
        print(f"CoNLL-2003 not found at {args.data} (set RNNFLOW_DATASETS or --data)", file=sys.stderr)
        return 2
    results = {"benchmark": "ner_conll2003", "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "references": {"huang_2015_bilstm_crf_random_embeddings_f1": 84.3,
                              "lample_2016_bilstm_crf_chars_dropout_f1": 83.6},
               "overrides": args.overrides, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="rnnflow-ner-bench-") as scratch:
        for name in args.variants:
            minutes = args.minutes if name == "crf_chars" else args.variant_minutes
            results["variants"][name] = {"training_budget_minutes": minutes,
                                         **run_variant(name, VARIANTS[name] + args.overrides, args.data, minutes, scratch)}
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
