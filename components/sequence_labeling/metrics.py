"""Entity-level precision, recall and F1 (exact start, end and type, as the CoNLL scorer counts
them), overall and per entity type, and token accuracy, as TFMA metrics.

The true tags are the examples' raw `tags` feature (IOB2, as the ExampleGen wrote them); the
predictions are the evaluation signature's `predicted_tag_ids` (-1 past the sentence). Tokens past
`task.max_tokens` have no prediction: they count as O, so their entities count as missed.
"""

from __future__ import annotations

import numpy as np

from rnnflow.components.evaluation import task_metrics
from rnnflow.components.sequence_labeling import conll
from rnnflow.components.sequence_labeling.features import TAGS

OVERALL = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


def metric_configs(tag_names: list[str], blessing_metric: str, threshold) -> list:
    return task_metrics.metric_configs(EntityScores, blessing_metric, threshold, "entity_scores", tag_names=tag_names)


class Counts:
    """Correct, predicted and true entities per type, and right/total tokens."""

    def __init__(self):
        self.entities: dict[str, list[int]] = {}
        self.right_tokens = self.tokens = 0

    def add(self, true: list[str], predicted: list[str]) -> None:
        gold, guessed = set(conll.entity_spans(true)), set(conll.entity_spans(predicted))
        for span in gold | guessed:
            entry = self.entities.setdefault(span[2], [0, 0, 0])
            entry[0] += span in gold and span in guessed
            entry[1] += span in guessed
            entry[2] += span in gold
        self.right_tokens += sum(t == p for t, p in zip(true, predicted))
        self.tokens += len(true)

    def merge(self, other: "Counts") -> "Counts":
        for kind, entry in other.entities.items():
            mine = self.entities.setdefault(kind, [0, 0, 0])
            for i in range(3):
                mine[i] += entry[i]
        self.right_tokens += other.right_tokens
        self.tokens += other.tokens
        return self

    def scores(self, types: list[str]) -> dict[str, float]:
        def prf(correct, guessed, gold):
            precision = correct / guessed if guessed else 0.0
            recall = correct / gold if gold else 0.0
            return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)

        total = [sum(e[i] for e in self.entities.values()) for i in range(3)]
        p, r, f = prf(*total)
        result = {"entity_precision": p, "entity_recall": r, "entity_f1": f,
                  "token_accuracy": self.right_tokens / self.tokens if self.tokens else 0.0}
        for kind in types:
            p, r, f = prf(*self.entities.get(kind, [0, 0, 0]))
            result.update({f"entity_precision[{kind}]": p, f"entity_recall[{kind}]": r, f"entity_f1[{kind}]": f})
        return result


class EntityCounts(task_metrics.Scores):
    """`Counts` over the examples' true `tags` and the predicted tag ids (-1 past the sentence)."""

    FEATURES = (TAGS,)

    def __init__(self, tag_names=()):
        self.tag_names = list(tag_names)
        self.counts = Counts()

    def add(self, features: dict, prediction: np.ndarray) -> None:
        true = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.asarray(features[TAGS]).reshape(-1)]
        ids = prediction.reshape(-1)
        predicted = [self.tag_names[int(i)] for i in ids[:len(true)] if i >= 0]
        predicted += [conll.OUTSIDE] * (len(true) - len(predicted))
        self.counts.add(true, predicted)

    def merge(self, other: "EntityCounts") -> "EntityCounts":
        self.counts.merge(other.counts)
        return self

    def scores(self) -> dict[str, float]:
        return self.counts.scores(sorted({t[2:] for t in self.tag_names if t != conll.OUTSIDE}))


class EntityScores(task_metrics.TaskMetric):
    SCORES = EntityCounts
