"""Corpus BLEU and chrF of the translations as TFMA metrics that emit floats (sacreBLEU: BLEU
with its 13a tokenizer on the detokenized text, cased and lowercased; chrF), for the greedy
translations and the beam's, from the evaluation signature's `translations` [greedy, beam] and
the examples' raw `target`. TFMA 0.47's own `Bleu` returns a sacrebleu object a threshold cannot
read and does not decode bytes; these decode UTF-8 and return numbers. The blessing metric
carries the threshold (`task_metrics.metric_configs`)."""

from __future__ import annotations

import numpy as np

from rnnflow.components.evaluation import task_metrics
from rnnflow.components.translation.features import TARGET
from rnnflow.components.translation.schema import BEAM_METRICS, METRICS


def metric_configs(blessing_metric: str, threshold, beam: bool) -> list:
    return task_metrics.metric_configs(Translations, blessing_metric, threshold, "translation_scores", beam=beam)


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """{"bleu", "bleu_lowercase", "chrf"} of hypotheses against one reference each (0-100)."""
    import sacrebleu

    if not hypotheses:
        return {name: float("nan") for name in METRICS}
    return {"bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
            "bleu_lowercase": float(sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score),
            "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score)}


def signature() -> str:
    """sacreBLEU's signature of the BLEU reported (what the numbers are comparable with)."""
    import sacrebleu

    bleu = sacrebleu.BLEU()
    bleu.corpus_score(["a"], [["a"]])  # the signature names the reference count, known once scored
    return str(bleu.get_signature())


def _text(value) -> str:
    value = np.asarray(value).reshape(-1)
    item = value[0] if value.size else b""
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)


class Sentences(task_metrics.Scores):
    """The eval split's references and translations, scored as one corpus at the end."""

    FEATURES = (TARGET,)

    def __init__(self, beam: bool = True):
        self.beam = beam
        self.references, self.greedy, self.beamed = [], [], []

    @classmethod
    def names(cls, beam: bool = True) -> list[str]:
        return list(METRICS) + (list(BEAM_METRICS) if beam else [])

    def add(self, features: dict, prediction: np.ndarray) -> None:
        translations = np.asarray(prediction).reshape(-1)
        self.references.append(_text(features[TARGET]))
        self.greedy.append(_text(translations[:1]))
        self.beamed.append(_text(translations[1:2] if translations.size > 1 else translations[:1]))

    def merge(self, other: "Sentences") -> "Sentences":
        self.references += other.references
        self.greedy += other.greedy
        self.beamed += other.beamed
        return self

    def scores(self) -> dict[str, float]:
        result = corpus_scores(self.greedy, self.references)
        if self.beam:
            result.update({f"{k}_beam": v for k, v in corpus_scores(self.beamed, self.references).items()})
        return result


class Translations(task_metrics.TaskMetric):
    SCORES = Sentences
