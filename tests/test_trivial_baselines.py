"""A first model has no earlier model to beat, so each task's blessing also demands that it beat
the trivial predictor of its kind by `evaluation.baseline_margin`: the most frequent class, every
token tagged O, unigram frequencies (forecasting's skill over persistence is the same idea)."""

import math

import pytest

from rnnflow.components.language_model.schema import unigram_nats_per_token
from rnnflow.components.tasks import InputReport, get_task
from rnnflow.pipeline.config import load_config


def thresholds(eval_config) -> dict[str, object]:
    found = {}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.HasField("threshold"):
                found[metric.class_name + ("" if not metric.config else f":{metric.config}")] = metric.threshold
    return found


def test_a_classifier_must_beat_the_majority_class_whatever_its_lower_bound():
    task = get_task("text_classification")
    config = load_config("sentiment", ["evaluation.metric=accuracy", "evaluation.lower_bound=0.0",
                                       "evaluation.baseline_margin=0.02"])
    report = InputReport(files=["x"], rows=100, details={"label_values": ["neg", "pos"],
                                                          "label_counts": {"neg": 30, "pos": 70}})
    assert task.trivial_scores(config, report) == {"accuracy": 0.7, "auc": 0.5}
    found = thresholds(task.eval_config(config, report))
    assert found["SparseCategoricalAccuracy"].value_threshold.lower_bound.value == pytest.approx(0.72)
    # With AUC as the blessing metric, accuracy still has to beat the majority class, and AUC 0.5.
    auc = load_config("sentiment", ["evaluation.metric=auc", "evaluation.lower_bound=0.0"])
    found = thresholds(task.eval_config(auc, report))
    assert found["SparseCategoricalAccuracy"].value_threshold.lower_bound.value == pytest.approx(0.71)
    assert found["AUC"].value_threshold.lower_bound.value == pytest.approx(0.51)
    # A lower_bound above the trivial score stays the bound; compiling (no report) sets none.
    strict = load_config("sentiment", ["evaluation.metric=accuracy", "evaluation.lower_bound=0.9"])
    assert thresholds(task.eval_config(strict, report))["SparseCategoricalAccuracy"] \
        .value_threshold.lower_bound.value == pytest.approx(0.9)
    assert task.trivial_scores(config, None) == {}


def test_a_tagger_must_beat_tagging_every_token_o():
    task = get_task("sequence_labeling")
    report = InputReport(files=["x"], rows=10, details={"tags": ["B-PER", "O"], "tag_counts": {"B-PER": 10, "O": 90},
                                                         "entity_types": ["PER"]})
    config = load_config("ner", ["data.path=x.txt", "evaluation.metric=token_accuracy", "evaluation.lower_bound=0.5"])
    assert task.trivial_scores(config, report) == {"entity_f1": 0.0, "token_accuracy": 0.9}
    [threshold] = thresholds(task.eval_config(config, report)).values()
    assert threshold.value_threshold.lower_bound.value == pytest.approx(0.91)


def test_unigram_cross_entropy_is_what_token_frequencies_score_on_eval():
    # Train: a x3, b x1; add-one smoothing over {a, b, unseen}: p(a) = 4/7, p(b) = 2/7, p(c) = 1/7.
    nats = unigram_nats_per_token(list("aaab"), list("abc"))
    assert nats == pytest.approx(-(math.log(4 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 3)


def test_a_language_model_must_beat_unigram_frequencies(tmp_path):
    task = get_task("language_model")
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    config = load_config("charlm", [f"data.path={path}", "data.format=text", "evaluation.max_nats_per_token=5"])
    report = task.preflight(config)
    trivial = task.trivial_scores(config, report)
    assert 1.0 < trivial["nats_per_char"] < math.log(12)  # fewer than 12 distinct characters
    assert trivial["bits_per_char"] == pytest.approx(trivial["nats_per_char"] / math.log(2))
    [threshold] = thresholds(task.eval_config(config, report)).values()
    assert threshold.value_threshold.upper_bound.value == pytest.approx(trivial["nats_per_char"] - 0.05)


def test_a_near_perfect_trivial_score_never_asks_for_a_perfect_model():
    from rnnflow.components.tasks.base import bound_over_trivial

    assert bound_over_trivial(0.5, 0.995, 0.01, ceiling=1.0) == pytest.approx(0.9975)
    assert bound_over_trivial(0.5, 0.7, 0.01, ceiling=1.0) == pytest.approx(0.71)
    assert bound_over_trivial(3.0, 2.5, 0.05, higher_is_better=False) == pytest.approx(2.45)


def test_balanced_class_weights_are_not_held_to_the_majority_accuracy():
    task = get_task("text_classification")
    report = InputReport(files=["x"], rows=100, details={"label_values": ["a", "b"], "label_counts": {"a": 90, "b": 10}})
    config = load_config("sentiment", ["task.class_weight=balanced"])  # blessed on AUC
    assert "SparseCategoricalAccuracy" not in thresholds(task.eval_config(config, report))
    assert thresholds(task.eval_config(config, report))["AUC"].value_threshold.lower_bound.value == pytest.approx(0.51)
