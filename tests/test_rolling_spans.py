"""data.rolling_spans: K — training on the latest K spans. Text: TFX's SpanRangeStrategy
resolver hands Transform the newest Examples of each of the latest K spans. Forecasting: the
ExampleGen reads the latest K spans as one series, so windows and the time split run across
span boundaries. (The three-night pipeline test in test_data_gates.py runs the text path.)"""

from __future__ import annotations

import pandas as pd
import pytest
from tfx.types import standard_artifacts

from conftest import write_csv
from rnnflow.components.forecasting import series as series_lib
from rnnflow.components.ingest.span_window import RESOLVER_ID, LatestSpansStrategy
from rnnflow.components.tasks import DataError, get_task
from rnnflow.components.tasks.base import latest_spans
from rnnflow.pipeline.config import ConfigError, load_config
from rnnflow.pipeline.pipeline import create_pipeline


def _span(directory, rows, start=0):
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "reviews.csv", ["text", "label"], [[f"text {start + i}", i % 2] for i in range(rows)])


def test_the_latest_k_spans_are_found_by_tfx_span_resolution_skipping_missing_numbers(tmp_path):
    for span, rows in ((1, 3), (2, 4), (4, 5), (10, 6)):
        _span(tmp_path / f"span-{span}", rows)
    pattern = f"{tmp_path}/span-{{SPAN}}/reviews.csv"
    assert [span for span, _ in latest_spans(pattern, 3)] == [10]  # 8 and 9 do not exist
    assert [span for span, _ in latest_spans(pattern, 7)] == [4, 10]
    window = latest_spans(pattern, 3, last=4)  # as the ExampleGen driver resolved it
    assert [(span, [f.rsplit("/", 2)[1] for f in files]) for span, files in window] == [
        (2, ["span-2"]), (4, ["span-4"])]
    with pytest.raises(DataError, match=r"no span 5 matches"):
        latest_spans(pattern, 2, last=5)


def test_rolling_spans_needs_a_span_spec_in_data_path():
    with pytest.raises(ConfigError, match=r"data.rolling_spans: 3 needs spans, but data.path has no \{SPAN\}"):
        load_config("sentiment", ["data.rolling_spans=3"])
    with pytest.raises(ConfigError, match="data.rolling_spans"):
        load_config("sentiment", ["data.rolling_spans=0"])
    assert load_config("sentiment", ["data.rolling_spans=3", "data.path=/d/{YYYY}-{MM}-{DD}/r.csv"]).data.rolling_spans == 3


def _examples(artifact_id, span):
    examples = standard_artifacts.Examples()
    examples.id = artifact_id
    examples.set_int_custom_property("span", span)
    return examples


def test_the_resolver_keeps_the_latest_k_spans_and_the_newest_examples_of_each():
    from tfx.proto import range_config_pb2

    strategy = LatestSpansStrategy(range_config_pb2.RangeConfig(
        rolling_range=range_config_pb2.RollingRange(num_spans=2)))
    # Span 2 ingested on two nights (ids 2 and 4): only the newer counts; span 1 is out of range.
    artifacts = [_examples(1, 1), _examples(2, 2), _examples(3, 3), _examples(4, 2)]
    resolved = strategy.resolve_artifacts(None, {"examples": artifacts})["examples"]
    assert [(a.id, a.get_int_custom_property("span")) for a in resolved] == [(3, 3), (4, 2)]


def test_text_trains_on_the_resolved_spans_and_validates_and_evaluates_the_newest():
    config = load_config("sentiment", ["data.path=/data/span-{SPAN}/reviews.csv", "data.rolling_spans=3"])
    pipeline = create_pipeline(config, "/root", "/serving")
    components = {c.id: c for c in pipeline.components}
    resolver = components[RESOLVER_ID]
    assert {n.id for n in resolver.upstream_nodes} == {"CsvExampleGen"}  # resolves after this run's span is ingested
    assert components["Transform"].inputs["examples"] is resolver.outputs["examples"]
    example_gen = components["CsvExampleGen"].outputs["examples"]
    assert components["StatisticsGen"].inputs["examples"] is example_gen
    assert components["Evaluator"].inputs["examples"] is example_gen
    single = create_pipeline(load_config("sentiment", ["data.path=/data/span-{SPAN}/reviews.csv"]), "/root", "/s")
    assert RESOLVER_ID not in {c.id for c in single.components}
    # Kubeflow V2 cannot compile this resolver: the compile says so, naming the field.
    with pytest.raises(ConfigError, match=r"data.rolling_spans: .*Kubeflow V2"):
        create_pipeline(load_config("sentiment", ["data.path=gs://b/span-{SPAN}/r.csv", "data.rolling_spans=2"]),
                        "gs://b/root", "gs://b/serving", portable=True)


def test_merged_reports_add_rows_and_label_counts_and_keep_every_file():
    task = get_task("text_classification")
    merged = task.merge_reports([
        {"files": ["a"], "rows": 3, "warnings": ["w"], "notes": [],
         "details": {"label_values": ["neg", "pos"], "label_counts": {"neg": 1, "pos": 2}}},
        {"files": ["b"], "rows": 4, "warnings": ["w", "x"], "notes": ["n"],
         "details": {"label_values": ["neu", "pos"], "label_counts": {"neu": 1, "pos": 3}}}])
    assert merged == {"files": ["a", "b"], "rows": 7, "warnings": ["w", "x"], "notes": ["n"],
                      "details": {"label_values": ["neg", "neu", "pos"],
                                  "label_counts": {"neg": 1, "neu": 1, "pos": 5}}}


def test_generic_merge_keeps_the_newest_spans_details():
    task = get_task("forecasting")
    merged = task.merge_reports([{"files": ["a"], "rows": 3, "warnings": [], "notes": [], "details": {"old": 1}},
                                 {"files": ["b"], "rows": 4, "warnings": [], "notes": [], "details": {"new": 2}}])
    assert merged["details"] == {"new": 2} and merged["rows"] == 7


def _hourly_span(directory, start, hours):
    directory.mkdir(parents=True, exist_ok=True)
    times = pd.date_range(start, periods=hours, freq="h")
    (directory / "series.csv").write_text(
        "time,a\n" + "".join(f"{t:%Y-%m-%d %H:%M},{i}\n" for i, t in enumerate(times)))


def test_forecasting_reads_the_latest_spans_as_one_series_and_splits_it_by_time(tmp_path):
    whole = pd.Timestamp("2024-01-01 00:00")
    for span, offset, hours in ((1, 0, 20), (2, 20, 12), (3, 32, 28)):
        _hourly_span(tmp_path / f"span-{span}", whole + pd.Timedelta(hours=offset), hours)
    common = [f"data.path={tmp_path}/span-{{SPAN}}/series.csv", "data.time_column=time", "data.target_columns=[a]",
              "task.lookback=3", "task.horizon=2", "data.split.train_fraction=0.5", "data.split.eval_fraction=0.25"]
    assert get_task("forecasting").spans_form_one_series
    series = series_lib.read_series(load_config("forecast", [*common, "data.rolling_spans=2"]))
    assert len(series.times) == 40 and series.times[0] == whole + pd.Timedelta(hours=20)
    plan = series_lib.plan_windows(series, load_config("forecast", [*common, "data.rolling_spans=2"]))
    # Rows 0-19 train (spans 2 and 3 meet at row 12: windows 8-11 run across it), 20-29 eval, 30-39 test.
    assert [w.start for w in plan["train"]] == list(range(0, 16))
    assert plan["eval"][0].start >= 20 and plan["test"][0].start >= 30
    assert len(series_lib.read_series(load_config("forecast", common)).times) == 28  # default: the newest span
    # The pipeline has no resolver: the ExampleGen reads the window.
    ids = {c.id for c in create_pipeline(load_config("forecast", [*common, "data.rolling_spans=2"]),
                                         "/root", "/serving").components}
    assert RESOLVER_ID not in ids and "TimeSeriesExampleGen" in ids
