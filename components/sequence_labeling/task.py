"""Sequence labeling (named entities, chunks, part-of-speech tags): many-to-many, one tag per token.

Sentences come from CoNLL-style or JSONL files (`reading.py`), with tags normalized to IOB2;
`SentenceExampleGen` writes one tf.Example per sentence (`features.py`) and splits them by a hash
of the sentence; Transform maps words and characters to ids in the graph; the model is a
recurrent tagger with a softmax or CRF output (`rnnflow.models.tagger`); the Evaluator counts
entities as the CoNLL scorer does (exact span and type) and blesses on entity F1.
"""

from __future__ import annotations

import collections

from rnnflow.components.sequence_labeling import conll
from rnnflow.components.sequence_labeling.schema import (ENTITY_TYPES, EVAL_SIGNATURE, EXAMPLES_SIGNATURE,
                                                         PREDICTED_TAG_IDS, SPLITS, TAG_COUNTS, TAG_LIST,
                                                         SequenceDataConfig, SequenceLabelingConfig,
                                                         TaggingEvaluationConfig)
from rnnflow.components.tasks.base import InputReport, Task, blessing_threshold, bound_over_trivial


class SequenceLabelingTask(Task):
    name = "sequence_labeling"
    task_config_cls = SequenceLabelingConfig
    data_config_cls = SequenceDataConfig
    evaluation_config_cls = TaggingEvaluationConfig
    splits = SPLITS
    preprocessing_fn = "rnnflow.components.sequence_labeling.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.sequence_labeling.trainer.run_fn"
    tuner_fn = "rnnflow.components.sequence_labeling.trainer.tuner_fn"
    examples_signature = EXAMPLES_SIGNATURE
    ingest_class = "rnnflow.components.sequence_labeling.ingest.SentenceIngest"
    # Word dropout: a tagger must tag names it has never seen, which the character encoder can
    # read only if training sometimes hides the word (benchmarks/ner_conll.py measures it: 0.3 with
    # 100 character filters scored best on CoNLL-2003's dev file).
    section_defaults = {"model": {"word_dropout": 0.3}}
    # Many-to-many: a tag per step, no pooling; sentences in, no missing-text policy.
    honoured_fields = {"model": ("cell", "bidirectional", "layers", "units", "embedding_dim", "residual", "layer_norm",
                                 "input_dropout", "dropout", "word_dropout", "pretrained_embeddings",
                                 "freeze_embeddings"),
                       "serving": ("base_dir", "model_name", "keep_versions", "tf_serving_version", "validation_examples")}

    def merge_details(self, details: list[dict]) -> dict:
        counts: dict[str, int] = collections.Counter()
        for span in details:
            counts.update(span[TAG_COUNTS])
        return {**details[-1], TAG_LIST: sorted(counts), TAG_COUNTS: dict(sorted(counts.items())),
                ENTITY_TYPES: sorted({t[2:] for t in counts if t != conll.OUTSIDE}),
                **{k: sum(d.get(k, 0) for d in details) for k in ("tokens", "truncated_sentences", "repaired_tags")}}

    def unbounded_features(self, config) -> list[str]:
        from rnnflow.components.sequence_labeling.features import SENTENCE, TOKENS

        return [SENTENCE, TOKENS]

    trivial_predictor = "every token tagged O"

    def trivial_scores(self, config, report: InputReport | None) -> dict[str, float]:
        """Tagging every token O: no entity found (F1 0), the share of O tokens right."""
        if report is None or not report.details.get(TAG_COUNTS):
            return {}
        counts = report.details[TAG_COUNTS]
        return {"entity_f1": 0.0, "token_accuracy": counts.get(conll.OUTSIDE, 0) / sum(counts.values())}

    def eval_config(self, config, report: InputReport | None):
        import tensorflow_model_analysis as tfma

        from rnnflow.components.sequence_labeling.metrics import metric_configs

        evaluation = config.evaluation
        threshold = blessing_threshold(bound_over_trivial(
            evaluation.lower_bound, self.trivial_scores(config, report).get(evaluation.metric),
            evaluation.baseline_margin, ceiling=1.0),
            evaluation.max_regression)
        metrics = metric_configs(report.details[TAG_LIST], evaluation.metric, threshold) if report else []
        return tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(signature_name=EVAL_SIGNATURE, prediction_key=PREDICTED_TAG_IDS)],
            slicing_specs=[tfma.SlicingSpec()],
            metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount"), *metrics])])

    def headline_metrics(self, metrics: dict) -> dict:
        """Overall metrics; per-type ones ("entity_f1[PER]") stay in run_summary.json."""
        return {k: v for k, v in metrics.items() if "[" not in k}

    def summarize(self, summary, outputs) -> None:
        """Entity precision, recall and F1 per type as one table (`entity_scores`)."""
        metrics = summary.get("metrics") or {}
        per_type = {}
        for key, value in metrics.items():
            if "[" in key:
                name, _, kind = key[:-1].partition("[")
                per_type.setdefault(kind, {})[name.replace("entity_", "")] = value
        if per_type:
            summary["entity_scores"] = dict(sorted(per_type.items()))

    plot_file = "entities.png"

    def plot(self, summary):
        from rnnflow.components.sequence_labeling.plots import entities_figure

        return entities_figure(summary) if summary.get("entity_scores") else None


TASK = SequenceLabelingTask()


