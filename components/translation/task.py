"""Translation: an encoder-decoder RNN with attention (sequence to sequence).

Sentence pairs come from tab-separated, line-aligned parallel or JSONL files (`reading.py`);
`PairExampleGen` writes one tf.Example per pair (`features.py`) and splits them by a hash of the
source sentence; Transform learns WordPiece vocabularies on the train split and maps both sides
to subword ids in the graph (`preprocessing.py`); the model is a (bi)directional LSTM/GRU
encoder with an attentive LSTM/GRU decoder trained by teacher forcing (`rnnflow.models.seq2seq`);
the exported model decodes greedily and with a beam inside the graph, text in and text out
(`export.py`); the Evaluator scores sacreBLEU and chrF of the greedy and beam translations and
blesses on the greedy BLEU (or chrF).
"""

from __future__ import annotations

import glob
import os

from rnnflow.components.tasks.base import InputReport, Task, blessing_threshold
from rnnflow.components.translation.commands import TRANSLATE
from rnnflow.components.translation.schema import (ATTENTION, EVAL_SIGNATURE, EXAMPLES_SIGNATURE, SPLITS,
                                                   TRANSLATIONS, ParallelDataConfig, TranslationConfig,
                                                   TranslationEvaluationConfig)
from rnnflow.pipeline.config import ConfigError

ATTENTION_EXAMPLES = 3  # eval sentences the summary's attention heatmap shows


class TranslationTask(Task):
    name = "translation"
    task_config_cls = TranslationConfig
    data_config_cls = ParallelDataConfig
    evaluation_config_cls = TranslationEvaluationConfig
    splits = SPLITS
    preprocessing_fn = "rnnflow.components.translation.preprocessing.preprocessing_fn"
    run_fn = "rnnflow.components.translation.trainer.run_fn"
    tuner_fn = "rnnflow.components.translation.trainer.tuner_fn"
    examples_signature = EXAMPLES_SIGNATURE
    ingest_class = "rnnflow.components.translation.ingest.PairIngest"
    section_defaults = {"model": {"cell": "gru"}}
    # An encoder stack and one decoder layer of model.units; no pooling, no word vectors (yet).
    honoured_fields = {"model": ("cell", "bidirectional", "layers", "units", "embedding_dim", "residual",
                                 "layer_norm", "input_dropout", "dropout"),
                       "serving": ("base_dir", "model_name", "keep_versions", "tf_serving_version", "validation_examples")}
    commands = (TRANSLATE,)

    def validate_config(self, config) -> None:
        from rnnflow.models.seq2seq import DECODER_CELLS, MAX_BEAM

        if config.model.cell not in DECODER_CELLS:
            raise ConfigError(f"model.cell: '{config.model.cell}' has no decoder cell; use "
                              f"{' or '.join(sorted(DECODER_CELLS))}")
        if config.task.beam_size > MAX_BEAM:
            raise ConfigError(f"task.beam_size: {config.task.beam_size} is above the limit of {MAX_BEAM}")
        if config.task.tie_embeddings and config.model.units != config.model.embedding_dim:
            raise ConfigError(f"task.tie_embeddings: needs model.units ({config.model.units}) equal to "
                              f"model.embedding_dim ({config.model.embedding_dim})")
        if config.data.format == "parallel" and not (config.data.source_suffix and config.data.target_suffix):
            raise ConfigError("data.format: parallel needs data.source_suffix and data.target_suffix (e.g. .de, .en)")
        if config.data.format == "tsv" and config.data.source_column == config.data.target_column:
            raise ConfigError(f"data.target_column: {config.data.target_column} is also data.source_column")

    def merge_details(self, details: list[dict]) -> dict:
        summed = ("pairs", "empty_pairs_skipped")
        return {**details[-1], **{k: sum(d.get(k, 0) for d in details) for k in summed}}

    def unbounded_features(self, config) -> list[str]:
        from rnnflow.components.translation.features import SOURCE, TARGET

        return [SOURCE, TARGET]

    def eval_config(self, config, report: InputReport | None):
        import tensorflow_model_analysis as tfma

        from rnnflow.components.translation.metrics import metric_configs

        evaluation = config.evaluation
        threshold = blessing_threshold(evaluation.min_bleu, evaluation.max_regression)
        return tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(signature_name=EVAL_SIGNATURE, prediction_key=TRANSLATIONS)],
            slicing_specs=[tfma.SlicingSpec()],
            metrics_specs=[tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                *metric_configs(evaluation.metric, threshold, evaluation.beam)])])

    def summarize(self, summary, outputs) -> None:
        """The sacreBLEU signature, and the attention of a few eval sentences (for the heatmap)."""
        from rnnflow.components.translation.metrics import signature

        summary["sacrebleu_signature"] = signature()
        model = (outputs.get("Trainer", {}).get("model") or [None])[0]
        examples = (outputs.get("PairExampleGen", {}).get("examples") or [None])[0]
        if model is None or examples is None:
            return
        from tfx.utils import path_utils

        eval_files = sorted(glob.glob(os.path.join(examples.uri, "Split-eval", "*")))
        summary["attention_examples"] = attention_examples(path_utils.serving_model_path(model.uri), eval_files)

    plot_file = "attention.png"

    def plot(self, summary):
        from rnnflow.components.translation.plots import attention_figure

        return attention_figure(summary["attention_examples"]) if summary.get("attention_examples") else None


def attention_examples(model_dir: str, eval_files: list[str], count: int = ATTENTION_EXAMPLES) -> list[dict]:
    """The greedy translation's pieces and attention weights of the first `count` eval sources."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from rnnflow.components.translation.features import SOURCE, feature_spec

    records = [r.numpy() for r in tf.data.TFRecordDataset(eval_files, compression_type="GZIP").take(count)]
    if not records:
        return []
    sources = tf.io.parse_example(records, {SOURCE: feature_spec()[SOURCE]})[SOURCE]
    answer = tf.saved_model.load(model_dir).signatures[ATTENTION](source=sources)
    result = []
    for i in range(len(records)):
        source = [p.decode("utf-8", "replace") for p in answer["source_pieces"][i].numpy()]
        target = [p.decode("utf-8", "replace") for p in answer["target_pieces"][i].numpy()]
        pieces = source.index("") if "" in source else len(source)
        words = target.index("") if "" in target else len(target)
        rows = min(words + 1, len(target))  # the end token's row too
        labels = (target[:words] + ["</s>"])[:rows]
        weights = answer["weights"][i].numpy()[:rows, :max(pieces, 1)].round(3).tolist()
        result.append({"source_pieces": source[:max(pieces, 1)], "target_pieces": labels, "weights": weights})
    return result


TASK = TranslationTask()
