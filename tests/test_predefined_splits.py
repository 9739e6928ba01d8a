"""Predefined splits (`data.eval_path`, `data.test_path`): a dataset's own dev and test files,
read through TFX's predefined splits, each checked against train, leakage between them reported,
and the test split scored once at the end (`test_metrics`) without deciding anything.

The NER harness run (conftest `HARNESS`) has a test file beside its train file, the language
model's train, eval and test files; the text classifier (a test file) and the forecaster (eval and
test files) get one small run each here."""

import datetime
import json
import math
import re
import os

import pytest

from conftest import FAST_OVERRIDES, WORDS, run_cli, write_csv
from rnnflow.components.tasks import DataError, get_task, splits
from rnnflow.pipeline.config import ConfigError, load_config


def _reviews(n: int, start: int = 0, label=lambda i: "pos" if i % 2 else "neg"):
    return [(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 5)) + f" review{i}", label(i))
            for i in range(start, start + n)]


def _series_rows(days: int, start: datetime.date):
    return [((start + datetime.timedelta(days=i)).isoformat(), round(10 + 5 * math.sin(i / 7), 3),
             round(i % 7 / 7, 3)) for i in range(days)]


# ---------------------------------------------------------------------------
# Config and the TFX input config
# ---------------------------------------------------------------------------

def test_split_paths_that_cannot_work_are_config_errors_naming_the_field(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["text", "label"], _reviews(10))
    dev = write_csv(tmp_path / "dev.csv", ["text", "label"], _reviews(4, 100))
    with pytest.raises(ConfigError, match=r"data.test_path: .*train.csv is also data.path"):
        load_config("sentiment", [f"data.path={train}", f"data.test_path={train}"])
    with pytest.raises(ConfigError, match=r"data.test_path: .*dev.csv is also data.eval_path"):
        load_config("sentiment", [f"data.path={train}", f"data.eval_path={dev}", f"data.test_path={dev}"])
    with pytest.raises(ConfigError, match=r"data.path has a span spec and the other split paths do not"):
        load_config("sentiment", [f"data.path={tmp_path}/span-{{SPAN}}/a.csv", f"data.eval_path={dev}"])
    with pytest.raises(ConfigError, match=r"data.test_path: a series' splits are consecutive"):
        load_config("forecast", [f"data.path={train}", f"data.eval_path={dev}"])
    assert load_config("sentiment", [f"data.path={train}", f"data.test_path={dev}"]).data.test_path == dev


def test_each_split_file_becomes_one_tfx_input_split_under_their_common_base():
    base, input_config = splits.example_gen_input(
        {"train": "/data/conll/train.txt", "eval": "/data/conll/dev/valid.txt", "test": "/data/other/test.txt"})
    assert base == "/data"
    assert [(s.name, s.pattern) for s in input_config.splits] == [
        ("train", "conll/train.txt"), ("eval", "conll/dev/valid.txt"), ("test", "other/test.txt")]
    base, input_config = splits.example_gen_input({"train": "gs://bucket/a/span-{SPAN}/t.csv",
                                                   "test": "gs://bucket/b/span-{SPAN}/t.csv"})
    assert base == "gs://bucket"
    assert [s.pattern for s in input_config.splits] == ["a/span-{SPAN}/t.csv", "b/span-{SPAN}/t.csv"]
    for other in ("gs://another/t.csv", "pkg://tfx/t.csv"):
        with pytest.raises(ConfigError, match="data.path, data.test_path: .* share no root directory, bucket or package"):
            splits.example_gen_input({"train": "gs://bucket/t.csv", "test": other})
    with pytest.raises(ConfigError, match="share no root directory"):
        load_config("sentiment", ["data.path=gs://bucket/train.csv", "data.test_path=/data/test.csv"])


def test_leakage_counts_records_shared_between_splits_and_names_the_first():
    warnings = splits.leakage("texts", {
        "train": [("a", "train line 2"), ("b", "train line 3"), ("c", "train line 4")],
        "eval": [("b", "eval line 2"), ("x", "eval line 3")],
        "test": [("c", "test line 2"), ("x", "test line 3"), ("a", "test line 4")]})
    assert len(warnings) == 3
    assert warnings[0].startswith("leakage: 1 texts of the eval split also occur in the train split "
                                  "(first: eval line 2, also train line 3: 'b')")
    assert "2 texts of the test split also occur in the train split (first: test line 2, also train line 4" \
        in warnings[1]
    assert "1 texts of the test split also occur in the eval split (first: test line 3" in warnings[2]
    assert splits.leakage("texts", {"train": [("a", "1")], "eval": [("b", "2")]}) == []


# ---------------------------------------------------------------------------
# Pre-flight: each split's files checked against train
# ---------------------------------------------------------------------------

def test_a_classifier_checks_each_split_file_names_unknown_classes_and_leaked_texts(tmp_path):
    train_rows = _reviews(30)
    train = write_csv(tmp_path / "train.csv", ["text", "label"], train_rows)
    dev = write_csv(tmp_path / "dev.csv", ["text", "label"], _reviews(8, 100) + train_rows[:2])
    test = write_csv(tmp_path / "test.csv", ["text", "label"], _reviews(6, 200, lambda i: "meh" if i % 3 else "pos"))
    config = load_config("sentiment", [f"data.path={train}", f"data.eval_path={dev}", f"data.test_path={test}"])
    report = get_task("text_classification").preflight(config)
    assert report.rows == 30 and report.details["split_files"]["test"] == [test]
    assert any(n.startswith("eval split: 10 rows from") for n in report.notes)
    unknown = [w for w in report.warnings if "class the train split never has" in w]
    assert unknown == ["4 rows of the test split have a class the train split never has: 'meh' (4); "
                       "no prediction can be right on them"]
    leaked = [w for w in report.warnings if w.startswith("leakage:")]
    assert len(leaked) == 1 and "2 texts of the eval split also occur in the train split" in leaked[0]
    assert f"{dev} line 10" in leaked[0] and f"{train} line 2" in leaked[0]

    empty = write_csv(tmp_path / "empty.csv", ["text", "label"], [])
    with pytest.raises(DataError, match="empty.csv: no data rows"):
        get_task("text_classification").preflight(load_config("sentiment", [f"data.path={train}",
                                                                            f"data.eval_path={empty}"]))
    with pytest.raises(DataError, match=r"data.test_path: matches no files: .*nothing-\*.csv"):
        get_task("text_classification").preflight(load_config("sentiment", [
            f"data.path={train}", f"data.test_path={tmp_path}/nothing-*.csv"]))
    other = write_csv(tmp_path / "other.csv", ["review", "label"], _reviews(4, 300))
    with pytest.raises(DataError, match="other.csv: column 'text' not found"):
        get_task("text_classification").preflight(load_config("sentiment", [f"data.path={train}",
                                                                            f"data.test_path={other}"]))


def _conll(path, sentences):
    path.write_text("".join("".join(f"{t} {g}\n" for t, g in s) + "\n" for s in sentences), encoding="utf-8")
    return str(path)


def test_a_tagger_reads_the_train_file_whole_and_names_tags_train_never_has(tmp_path):
    names = ("Ann", "Bo", "Cy", "Di")
    train = _conll(tmp_path / "train.txt", [[(names[i % 4], "B-PER"), (f"w{i}", "O")] for i in range(30)])
    dev = _conll(tmp_path / "dev.txt", [[("Oslo", "B-LOC"), (f"d{i}", "O")] for i in range(5)])
    test = _conll(tmp_path / "test.txt", [[("Ann", "B-PER"), ("w0", "O")], [("Acme", "B-ORG")]])
    config = load_config("ner", [f"data.path={train}", f"data.eval_path={dev}", f"data.test_path={test}"])
    ingest = get_task("sequence_labeling").ingest()
    report = ingest.preflight(config)
    assert report.rows == 30  # all of the train file trains: no hash split
    files = {"train": [train], "eval": [dev], "test": [test]}
    config, reads = ingest.read_splits(config, files)
    rows = ingest.rows(config, reads)
    assert {k: len(v) for k, v in rows.items()} == {"train": 30, "eval": 5, "test": 2}
    assert "5 tokens of the eval split have a tag the train split never has: 'B-LOC' (5)" in " ".join(report.warnings)
    assert "1 tokens of the test split have a tag the train split never has: 'B-ORG' (1)" in " ".join(report.warnings)
    assert any("1 sentences of the test split also occur in the train split" in w for w in report.warnings)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="data.test_path: .*empty.txt: no sentence"):
        ingest.preflight(load_config("ner", [f"data.path={train}", f"data.test_path={empty}"]))


def test_a_language_model_trains_on_all_of_the_train_file_and_scores_the_eval_file(tmp_path):
    text = " ".join(WORDS[(i * 3) % len(WORDS)] for i in range(400))
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")
    (tmp_path / "dev.txt").write_text(text[:300] + " zebra", encoding="utf-8")
    (tmp_path / "test.txt").write_text(text[500:900], encoding="utf-8")
    base = ["data.format=text", "task.window=16"]
    ingest = get_task("language_model").ingest()
    split_default = ingest.preflight(load_config("charlm", [f"data.path={tmp_path}/train.txt", *base]))
    config = load_config("charlm", [f"data.path={tmp_path}/train.txt", f"data.eval_path={tmp_path}/dev.txt",
                                    f"data.test_path={tmp_path}/test.txt", *base])
    report = ingest.preflight(config)
    details = report.details
    assert details["train_tokens"] == len(text) > split_default.details["train_tokens"]
    assert details["eval_tokens"] == 306 and details["test_tokens"] == 400
    # The eval file, shorter than task.eval_window, is one eval window (training windows are 16).
    assert details["eval_windows"] == 1 and details["train_windows"] == (len(text) - 1) // 16
    assert any("of the eval split never occur in train" in n for n in report.notes)  # "zebra"'s z and b
    # Every test window is a stretch of the training text: reported as leakage, although the test
    # split's one window (400 characters) is longer than any training window (compared in pieces).
    assert any("windows of the test split also occur in the train split" in w for w in report.warnings)
    (tmp_path / "tiny.txt").write_text("short", encoding="utf-8")
    with pytest.raises(DataError, match="tiny.txt: the eval split has 5 char tokens, fewer than one window"):
        ingest.preflight(load_config("charlm", [f"data.path={tmp_path}/train.txt",
                                                f"data.eval_path={tmp_path}/tiny.txt", *base]))


def test_a_forecaster_windows_each_split_file_on_its_own_and_flags_overlapping_times(tmp_path):
    header = ["date", "level", "weekday"]
    train = write_csv(tmp_path / "train.csv", header, _series_rows(120, datetime.date(2020, 1, 1)))
    dev = write_csv(tmp_path / "dev.csv", header, _series_rows(40, datetime.date(2020, 5, 1)))
    test = write_csv(tmp_path / "test.csv", header, _series_rows(40, datetime.date(2020, 6, 10)))
    base = ["data.path=" + train, "data.target_columns=[level]", "data.time_column=date", "task.lookback=8",
            "task.horizon=2", "data.feature_columns=[]"]
    config = load_config("forecast", [*base, f"data.eval_path={dev}", f"data.test_path={test}"])
    report = get_task("forecasting").ingest().preflight(config)
    facts = report.details["splits"]
    assert facts["train"]["rows"] == 120 and facts["eval"]["rows"] == 40 and facts["test"]["rows"] == 40
    assert facts["test"]["first_time"].startswith("2020-06-10")
    assert not [w for w in report.warnings if "leakage" in w]

    overlapping = write_csv(tmp_path / "overlap.csv", header, _series_rows(40, datetime.date(2020, 4, 1)))
    report = get_task("forecasting").ingest().preflight(
        load_config("forecast", [*base, f"data.eval_path={overlapping}", f"data.test_path={test}"]))
    assert any(w.startswith("leakage: 29 timestamps of the eval split are also in the train split") for w in report.warnings)
    other = write_csv(tmp_path / "other.csv", ["date", "level"], [r[:2] for r in _series_rows(40, datetime.date(2020, 8, 1))])
    with pytest.raises(DataError, match=r"data.test_path: .*other.csv: columns \['level'\] differ"):
        get_task("forecasting").ingest().preflight(
            load_config("forecast", [*base, f"data.eval_path={dev}", f"data.test_path={other}"]))


# ---------------------------------------------------------------------------
# Runs: the test report from inside the run
# ---------------------------------------------------------------------------

def _components(summary) -> dict:
    return {c["name"]: c["state"] for c in summary["components"]}


@pytest.mark.e2e
def test_a_tagger_run_on_a_corpus_own_splits_reports_test_scores_that_decide_nothing(ner_run):
    summary = ner_run.summary
    assert _components(summary)["TestEvaluator"] == "complete"
    assert set(summary["test_metrics"]) >= {"entity_f1", "entity_precision", "entity_recall", "token_accuracy"}
    assert summary["test_metrics"] != summary["metrics"]
    assert any(re.match(r"test split: 1[0-2][0-9] sentences from .*conll_test.txt", n) for n in summary["input"]["notes"])
    assert "test metrics: " in ner_run.result.stdout
    _assert_test_split_never_reaches_training(ner_run.output_dir)


@pytest.mark.e2e
def test_a_language_model_run_on_train_eval_and_test_files_reports_test_nats(charlm_run):
    summary = charlm_run.summary
    assert _components(summary)["TestEvaluator"] == "complete"
    name = next(k for k in summary["metrics"] if k.startswith("nats_per_"))
    assert 0 < summary["test_metrics"][name] < 10
    assert summary["input"]["details"]["test_windows"] > 0
    _assert_test_split_never_reaches_training(charlm_run.output_dir)


def _assert_test_split_never_reaches_training(output_dir) -> None:
    """ExampleGen wrote a test split; Transform (so the Tuner and Trainer) only train and eval."""
    root = os.path.join(output_dir, "pipeline_root")
    example_gen = next(d for d in os.listdir(root) if d.endswith("ExampleGen"))
    examples = os.path.join(root, example_gen, "examples")
    assert any(os.path.isdir(os.path.join(examples, v, "Split-test")) for v in os.listdir(examples))
    transformed = os.path.join(root, "Transform", "transformed_examples")
    for version in os.listdir(transformed):
        assert sorted(os.listdir(os.path.join(transformed, version))) == ["Split-eval", "Split-train"]


@pytest.mark.e2e
def test_a_classifier_run_with_a_test_file_hash_splits_train_and_reports_test_accuracy(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["text", "label"], _reviews(80))
    test = write_csv(tmp_path / "test.csv", ["text", "label"], _reviews(20, 500) + [("an unheard of class", "meh")])
    output_dir = tmp_path / "run"
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(output_dir),
                      *[a for o in [f"data.path={train}", f"data.test_path={test}", "task.min_frequency=1",
                                    *FAST_OVERRIDES] for a in ("--set", o)]])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert _components(summary)["TestEvaluator"] == "complete"
    assert 0.0 <= summary["test_metrics"]["accuracy"] <= 1.0
    assert summary["test_metrics"]["example_count"] == 21
    assert any("'meh' (1)" in w for w in summary["input"]["warnings"])
    _assert_test_split_never_reaches_training(output_dir)
    examples = os.path.join(output_dir, "pipeline_root", "CsvExampleGen", "examples")
    (version,) = os.listdir(examples)
    assert sorted(os.listdir(os.path.join(examples, version))) == ["Split-eval", "Split-test", "Split-train"]


@pytest.mark.e2e
def test_a_forecaster_run_on_eval_and_test_files_reports_the_test_file(tmp_path):
    """Also the end-to-end run of the segments encoder with RevIN, and of the gate against the
    baselines: a sinusoid obeys a linear recurrence, so the linear baseline fitted on the train
    windows forecasts it almost exactly; two epochs of the recurrent model lose to it, and the
    default evaluation.min_skill (0: beat every baseline) refuses the model."""
    header = ["date", "level", "weekday"]
    paths = {field: write_csv(tmp_path / f"{field}.csv", header, _series_rows(days, start))
             for field, days, start in (("path", 160, datetime.date(2020, 1, 1)),
                                        ("eval_path", 50, datetime.date(2020, 6, 9)),
                                        ("test_path", 50, datetime.date(2020, 7, 29)))}
    output_dir = tmp_path / "run"
    overrides = [*(f"data.{field}={path}" for field, path in paths.items()), "data.target_columns=[level]",
                 "data.time_column=date", "data.feature_columns=[]", "task.lookback=8", "task.horizon=2",
                 "training.epochs=2", "task.encoder=segments", "task.anchor=revin",
                 "task.calendar_features=false", "task.segment_length=3", "model.units=16"]
    result = run_cli(["run", "--config", "forecast", "--output-dir", str(output_dir),
                      *[a for o in overrides for a in ("--set", o)]])
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    metrics = summary["metrics"]
    assert summary["status"] == "not_blessed" and summary["pushed_model"] is None
    assert metrics["baseline_linear_mae"] < 0.05 * metrics["baseline_persistence_mae"]
    assert metrics["best_baseline_mae"] == metrics["baseline_linear_mae"] < metrics["mae"]
    assert metrics["skill"] == pytest.approx(1 - metrics["mae"] / metrics["baseline_linear_mae"]) and metrics["skill"] < 0
    assert _components(summary)["ForecastReport"] == "complete"
    assert summary["test_windows"] == 50 - 8 - 2 + 1
    assert summary["test_metrics"]["mae"] > 0
    # The segment-recurrent model (lookback 8 padded to 3 segments of 3).
    assert [c["layer"] for c in summary["model"]["cudnn"]] == ["segment_recurrence/segment_gru"]
    # Every baseline scored on the test file's windows; the linear one from the Trainer's side file.
    for baseline in ("persistence", "seasonal_naive", "linear", "climatology"):
        assert summary["test_metrics"][f"baseline_{baseline}_mae"] is not None, baseline
    assert summary["input"]["details"]["splits"]["test"]["first_time"].startswith("2020-07-29")


@pytest.mark.e2e
def test_with_the_linear_path_the_forecaster_starts_from_the_linear_baseline_and_serves(tmp_path):
    """`task.linear_skip`: the same sinusoid, which the plain recurrence loses on (above); the
    linear path starts at the Trainer's least-squares map, so after one small-step epoch the
    model forecasts about as well as the linear baseline, and its export passes serving validation."""
    header = ["date", "level", "weekday"]
    path = write_csv(tmp_path / "series.csv", header, _series_rows(260, datetime.date(2020, 1, 1)))
    output_dir = tmp_path / "run"
    overrides = [f"data.path={path}", "data.target_columns=[level]",
                 "data.time_column=date", "data.feature_columns=[]", "task.lookback=8", "task.horizon=2",
                 "training.epochs=1", "training.learning_rate=0.0001", "task.encoder=segments",
                 "task.anchor=revin", "task.calendar_features=false", "task.segment_length=3", "model.units=16",
                 "task.linear_skip=true", "task.linear_combination=false", "evaluation.min_skill=-1"]
    result = run_cli(["run", "--config", "forecast", "--output-dir", str(output_dir),
                      *[a for o in overrides for a in ("--set", o)]])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    metrics = summary["metrics"]
    assert summary["status"] == "succeeded" and summary["pushed_model"]
    assert _components(summary)["ServingValidator"] == "complete"
    assert metrics["baseline_linear_mae"] < 0.05 * metrics["baseline_persistence_mae"]
    assert metrics["mae"] < 0.1 * metrics["baseline_persistence_mae"]
    assert summary["config"]["task"]["linear_skip"] is True and summary["config"]["task"]["linear_combination"] is False
