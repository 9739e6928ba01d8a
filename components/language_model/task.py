"""Language modeling and generation (characters or words): many-to-many next-token prediction.

Text files are split into train and eval by contiguous blocks and cut into fixed windows
(`reading.py`) by `TextWindowExampleGen`; Transform maps tokens to ids with a TFT vocabulary; the
model is a stacked recurrent language model (`rnnflow.models.language_model`) trained with
truncated backpropagation through time over the windows, each starting from a zero state
(stateless windows: batches shuffle freely and the model learns context up to `task.window`
tokens; eval windows are longer, `task.eval_window`, so the eval score is that of reading with
the state carried); the Evaluator reports cross-entropy in nats and bits per token and
perplexity, and blesses on a lower-is-better bound of nats per token and its change against the
last blessed model. The exported model generates inside the graph (`serving_default`) and
scores texts (`score`).
"""

from __future__ import annotations

import math

from rnnflow.components.language_model.commands import GENERATE
from rnnflow.components.language_model.schema import (EVAL_SIGNATURE, EXAMPLES_SIGNATURE, SCORES, SCORE_SIGNATURE,
                                                      SPLITS, UNIGRAM_NATS, LanguageModelConfig,
                                                      LanguageModelEvaluationConfig, TextCorpusConfig, metric_names)
from rnnflow.components.tasks.base import InputReport, Task, blessing_threshold, bound_over_trivial
from rnnflow.pipeline.config import ConfigError


class LanguageModelTask(Task):
    name = "language_model"
    task_config_cls = LanguageModelConfig
    data_config_cls = TextCorpusConfig
    evaluation_config_cls = LanguageModelEvaluationConfig
    splits = SPLITS
    preprocessing_fn = "rnnflow.components.language_model.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.language_model.trainer.run_fn"
    tuner_fn = "rnnflow.components.language_model.trainer.tuner_fn"
    examples_signature = EXAMPLES_SIGNATURE
    served_signature = SCORE_SIGNATURE
    ingest_class = "rnnflow.components.language_model.ingest.TextWindowIngest"
    section_defaults = {"model": {"bidirectional": False}}
    # A plain stack read left to right (bidirectional must stay false: validate_config says why).
    honoured_fields = {"model": ("cell", "bidirectional", "layers", "units", "embedding_dim", "dropout"),
                       "serving": ("base_dir", "model_name", "keep_versions", "tf_serving_version", "validation_examples")}

    def validate_config(self, config) -> None:
        if config.model.bidirectional:
            raise ConfigError("model.bidirectional: a language model reads left to right; set it to false")
        if config.model.cell not in ("lstm", "gru", "mingru"):
            raise ConfigError(f"model.cell: '{config.model.cell}' cannot generate step by step; use lstm, gru "
                              "or mingru")

    def merge_details(self, details: list[dict]) -> dict:
        return {**details[-1], **{k: sum(d.get(k, 0) for d in details) for k in details[-1]
                                  if k.endswith(("_tokens", "_windows")) or k == "characters"}}

    def unbounded_features(self, config) -> list[str]:
        from rnnflow.components.language_model.features import TEXT

        return [TEXT]

    commands = (GENERATE,)
    trivial_predictor = "unigram frequencies of the train split"

    def trivial_scores(self, config, report: InputReport | None) -> dict[str, float]:
        """Token frequencies without context: their cross-entropy on the eval split."""
        if report is None or UNIGRAM_NATS not in report.details:
            return {}
        names, nats = metric_names(config.task.tokenizer), report.details[UNIGRAM_NATS]
        return {names["nats"]: nats, names["bits"]: nats / math.log(2), names["perplexity"]: math.exp(nats)}

    def eval_config(self, config, report: InputReport | None):
        import tensorflow_model_analysis as tfma

        from rnnflow.components.language_model.metrics import metric_configs

        evaluation = config.evaluation
        nats = metric_names(config.task.tokenizer)["nats"]
        bound = bound_over_trivial(evaluation.max_nats_per_token, self.trivial_scores(config, report).get(nats),
                                   evaluation.baseline_margin, higher_is_better=False)
        threshold = blessing_threshold(bound, evaluation.max_regression, higher_is_better=False)
        return tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(signature_name=EVAL_SIGNATURE, prediction_key=SCORES)],
            slicing_specs=[tfma.SlicingSpec()],
            metrics_specs=[tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"), *metric_configs(config.task.tokenizer, threshold)])])

    def summarize(self, summary, outputs) -> None:
        """Bits per token from the Trainer's own eval loss too (Keras' val_loss is nats per token)."""
        val_loss = (summary.get("training") or {}).get("history", {}).get("val_loss")
        if val_loss:
            summary["best_val_bits_per_token"] = min(val_loss) / math.log(2)


TASK = LanguageModelTask()
