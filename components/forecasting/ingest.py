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
from rnnflow.components.tasks import splits
from rnnflow.components.tasks.base import DataError, InputReport, resolve_input_files


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
        # Beside predefined eval and test files (given together), the train file is all train.
        return series, series_lib.plan_windows(series, config, "train" if config.data.eval_path else None)

    def resolve(self, config, train_read):
        return series_lib.resolve_auto(config, train_read[0])

    def read_split(self, config, split, files):
        series = series_lib.read_series(config, files)
        return series, series_lib.plan_windows(series, config, split)

    def records(self, config, read) -> list:
        _, plan = read
        return [window for windows in plan.values() for window in windows]

    def record_text(self, record) -> None:
        return None  # a window is a time range: `check_split` compares the splits' times instead

    def check_split(self, config, split, files, read, report, train) -> None:
        (series, _), (train_series, _) = read, train
        where = f"{splits.FIELDS[split]}: {splits.described(files)}"
        if series.columns != train_series.columns:
            raise DataError(f"{where}: columns {series.columns} differ from the train file's {train_series.columns}")
        if series.frequency_seconds != train_series.frequency_seconds:
            raise DataError(f"{where}: one row every {series.frequency_seconds} s, the train file every "
                            f"{train_series.frequency_seconds} s")
        report.warnings.extend(f"{split} split: {w}" for w in series.warnings)
        shared = series.times.isin(train_series.times)
        if shared.any():
            report.warnings.append(f"leakage: {int(shared.sum())} timestamps of the {split} split are also in the "
                                   f"train split (first: {series.times[shared][0]}); its scores overstate the model")
        elif series.times[0] <= train_series.times[-1]:
            report.warnings.append(f"the {split} split starts at {series.times[0]}, before the train split ends "
                                   f"({train_series.times[-1]}): it does not measure forecasting the future")
        report.details.setdefault("splits", {}).update(series_lib.split_summary(series, config, read[1]))

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

    def properties(self, config, reads, rows) -> dict[str, int | str]:
        properties: dict[str, int | str] = {"frequency_seconds": reads["train"][0].frequency_seconds}
        for series, plan in reads.values():
            for split, facts in series_lib.split_summary(series, config, plan).items():
                properties[f"split_{split}"] = json.dumps(facts)
                properties[f"{split}_windows"] = facts["windows"]
        return properties
