"""TimeSeriesExampleGen: a series file -> one tf.Example per window (`features.py` names its
features), split by time.

The split is chronological (see `series.plan_windows`): no window crosses a split
boundary or a gap, so every eval/test target lies after every train target.
Cleaning and sorting need the whole series, so the span's files (with
`data.rolling_spans: K`, the latest K spans' files: consecutive stretches of one series,
windowed and split as one) are read once in the executor; Beam then builds, serializes
and writes the windows in parallel (the series travels to the workers inside the pickled
function). The component is TFX's FileBasedExampleGen, so its driver resolves spans and
fingerprints the input.
"""

from __future__ import annotations

import json

import tensorflow as tf
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_component_specs

from rnnflow.components.forecasting import features
from rnnflow.components.forecasting import series as series_lib
from rnnflow.components.forecasting.schema import SPLITS
from rnnflow.components.ingest_config import config_from
from rnnflow.components.input_report import set_report, window_input
from rnnflow.components.task_example_gen import task_example_gen, write_splits


def window_example(series: series_lib.Series, window: series_lib.Window, lookback: int,
                   horizon: int) -> tf.train.Example:
    start, end = window.start, window.start + lookback
    return features.window_example(
        {column: series.values[start:end, i] for i, column in enumerate(series.columns)},
        {target: series.column(target)[end:end + horizon] for target in series.targets},
        end_time_seconds=series.times[end - 1].value // 10**9, owned_rows=window.owned)


class Executor(BaseBeamExecutor):
    """FileBasedExampleGen executor: the span's files -> windows split by time, with the
    input report (`input_report.REPORT_PROPERTY`) and per-split facts (`split_<name>`
    JSON, `<name>_windows`) as custom properties of the Examples."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        spans, files = window_input(exec_properties, config)
        series = series_lib.read_series(config, files)
        plan = series_lib.plan_windows(series, config)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        task = config.task
        with self._make_beam_pipeline() as pipeline:
            write_splits(pipeline, {split: plan[split] for split in SPLITS},
                         lambda w: window_example(series, w, task.lookback, task.horizon), examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        for split, facts in series_lib.split_summary(series, config, plan).items():
            examples.set_string_custom_property(f"split_{split}", json.dumps(facts))
            examples.set_int_custom_property(f"{split}_windows", facts["windows"])
        examples.set_int_custom_property("frequency_seconds", series.frequency_seconds)
        set_report(examples, series_lib.report_for(series, plan, config), spans)


def time_series_example_gen(config, input_base: str, pattern: str):
    """TFX's FileBasedExampleGen (driver: spans, input fingerprints) with the windowing executor."""
    return task_example_gen(config, input_base, pattern, Executor, SPLITS, "TimeSeriesExampleGen")
