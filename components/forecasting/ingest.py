"""TimeSeriesExampleGen: a series file -> one tf.Example per window (`features.py` names its
features), split by time.

The split is chronological (see `series.plan_windows`): no window crosses a split
boundary or a gap, so every eval/test target lies after every train target.
Cleaning and sorting need the whole series, so the span's files (with
`data.rolling_spans: K`, the latest K spans' files: consecutive stretches of one series,
windowed and split as one) are read once in the executor; Beam then builds, serializes
and writes the windows in parallel (the series travels to the workers inside the pickled
function). The ingest scaffold (`rnnflow.components.ingest.task_example_gen`) owns the component: TFX's
FileBasedExampleGen, so its driver resolves spans and fingerprints the input.
"""

from __future__ import annotations

import json

import tensorflow as tf

from rnnflow.components.forecasting import features
from rnnflow.components.forecasting import series as series_lib
from rnnflow.components.forecasting.schema import SPLITS
from rnnflow.components.ingest.input_report import window_input
from rnnflow.components.ingest.task_example_gen import Ingest
from rnnflow.components.tasks.base import InputReport, resolve_input_files


def window_example(series: series_lib.Series, window: series_lib.Window, lookback: int,
                   horizon: int) -> tf.train.Example:
    start, end = window.start, window.start + lookback
    return features.window_example(
        {column: series.values[start:end, i] for i, column in enumerate(series.columns)},
        {target: series.column(target)[end:end + horizon] for target in series.targets},
        end_time_seconds=series.times[end - 1].value // 10**9, owned_rows=window.owned)


class TimeSeriesIngest(Ingest):
    """The span's files (with `data.rolling_spans: K`, the latest K spans') -> windows split by
    time, with per-split facts (`split_<name>` JSON, `<name>_windows`) and the series'
    `frequency_seconds` as custom properties of the Examples."""

    node_id = "TimeSeriesExampleGen"
    splits = SPLITS
    unit = "windows"

    def input_files(self, exec_properties, config):
        return window_input(exec_properties, config)

    def preflight_files(self, config) -> list[str]:
        return resolve_input_files(config.data, spans=config.data.rolling_spans)

    def read(self, config, files) -> tuple[series_lib.Series, dict[str, list[series_lib.Window]]]:
        series = series_lib.read_series(config, files)
        return series, series_lib.plan_windows(series, config)

    def report(self, config, files, read) -> InputReport:
        return series_lib.report_for(*read, config)

    def split(self, config, read) -> dict[str, list]:
        _, plan = read
        return {split: plan[split] for split in SPLITS}

    def to_example(self, config, read):
        series, _ = read
        lookback, horizon = config.task.lookback, config.task.horizon
        return lambda window: window_example(series, window, lookback, horizon)

    def feature_spec(self, config, report) -> dict:
        return features.window_feature_spec(report.details["columns"], config.task.lookback,
                                            targets=report.details["targets"], horizon=config.task.horizon,
                                            owned=True)

    def properties(self, config, read, rows) -> dict[str, int | str]:
        series, plan = read
        properties: dict[str, int | str] = {"frequency_seconds": series.frequency_seconds}
        for split, facts in series_lib.split_summary(series, config, plan).items():
            properties[f"split_{split}"] = json.dumps(facts)
            properties[f"{split}_windows"] = facts["windows"]
        return properties
