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
import os

import apache_beam as beam
import tensorflow as tf
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from rnnflow.components.forecasting import features
from rnnflow.components.forecasting import series as series_lib
from rnnflow.components.forecasting.task import SPLITS
from rnnflow.components.ingest_config import config_from, example_gen_custom_config
from rnnflow.components.input_report import set_report, window_input

EXAMPLES_FILE_PREFIX = "data_tfrecord"


def window_example(series: series_lib.Series, window: series_lib.Window, lookback: int,
                   horizon: int) -> tf.train.Example:
    start, end = window.start, window.start + lookback
    return features.window_example(
        {column: series.values[start:end, i] for i, column in enumerate(series.columns)},
        {target: series.column(target)[end:end + horizon] for target in series.targets},
        end_time_seconds=series.times[end - 1].value // 10**9, owned_rows=window.owned)


def write_windows(pipeline: beam.Pipeline, series: series_lib.Series, plan: dict, config, output_uri: str):
    task = config.task
    for split in SPLITS:
        _ = (pipeline
             | f"Windows[{split}]" >> beam.Create(plan[split], reshuffle=False)
             | f"ToExample[{split}]" >> beam.Map(
                 lambda w: window_example(series, w, task.lookback, task.horizon).SerializeToString())
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(output_uri, f"Split-{split}", EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"))


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
        with self._make_beam_pipeline() as pipeline:
            write_windows(pipeline, series, plan, config, examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        for split, facts in series_lib.split_summary(series, config, plan).items():
            examples.set_string_custom_property(f"split_{split}", json.dumps(facts))
            examples.set_int_custom_property(f"{split}_windows", facts["windows"])
        examples.set_int_custom_property("frequency_seconds", series.frequency_seconds)
        set_report(examples, series_lib.report_for(series, plan, config), spans)


def time_series_example_gen(config, input_base: str, pattern: str):
    """TFX's FileBasedExampleGen (driver: spans, input fingerprints) with the windowing executor."""
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="series", pattern=pattern)]),
        # The executor writes these splits; the driver only needs their names.
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=split, hash_buckets=1) for split in SPLITS])),
        custom_config=example_gen_custom_config(config),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor)).with_id("TimeSeriesExampleGen")
