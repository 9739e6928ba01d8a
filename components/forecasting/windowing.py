"""TimeSeriesExampleGen: a series file -> one tf.Example per window, split by time.

Each example holds, for a window starting at row s:
- `<feature>`: float [lookback], rows s .. s+lookback-1, for every feature column;
- `<target>__future`: float [horizon], the next `horizon` rows of each target column;
- `window_end_time`: int64, seconds since the epoch (UTC) of row s+lookback-1;
- `train_rows_owned`: int64, how many leading lookback rows count in the train statistics.

The split is chronological (see `series.plan_windows`): no window crosses a split
boundary or a gap, so every eval/test target lies after every train target.
Cleaning and sorting need the whole series, so the file is read once in the
executor; Beam then builds, serializes and writes the windows in parallel (the
series travels to the workers inside the pickled function).
"""

# No `from __future__ import annotations`: TFX reads the component's type hints at runtime.
import json
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import BeamComponentParameter, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from rnnflow.components.forecasting import series as series_lib
from rnnflow.components.forecasting.task import (
    OWNED_ROWS, SPLITS, WINDOW_END_TIME, future_feature)
from rnnflow.pipeline.config import parse_config

EXAMPLES_FILE_PREFIX = "data_tfrecord"


def window_example(series: series_lib.Series, window: series_lib.Window, lookback: int,
                   horizon: int) -> tf.train.Example:
    start, end = window.start, window.start + lookback
    features = {
        column: _floats(series.values[start:end, i]) for i, column in enumerate(series.columns)}
    for target in series.targets:
        features[future_feature(target)] = _floats(series.column(target)[end:end + horizon])
    features[WINDOW_END_TIME] = _ints([series.times[end - 1].value // 10**9])
    features[OWNED_ROWS] = _ints([window.owned])
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_windows(pipeline: beam.Pipeline, series: series_lib.Series, plan: dict, config, output_uri: str):
    task = config.task
    for split in SPLITS:
        _ = (pipeline
             | f"Windows[{split}]" >> beam.Create(plan[split], reshuffle=False)
             | f"ToExample[{split}]" >> beam.Map(
                 lambda w: window_example(series, w, task.lookback, task.horizon).SerializeToString())
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(output_uri, f"Split-{split}", EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"))


@component(use_beam=True)
def TimeSeriesExampleGen(
    examples: OutputArtifact[standard_artifacts.Examples],
    config_json: Parameter[str],
    cache_key: Parameter[str],
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
):
    """Windows `data.path` into train/eval/test Examples; split boundaries and counts
    are recorded as custom properties of the output artifact (`split_<name>` JSON)."""
    del cache_key  # only part of the cache key
    config = parse_config(json.loads(config_json))
    series = series_lib.read_series(config)
    plan = series_lib.plan_windows(series, config)
    with beam_pipeline as pipeline:
        write_windows(pipeline, series, plan, config, examples.uri)
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    for split, facts in series_lib.split_summary(series, config, plan).items():
        examples.set_string_custom_property(f"split_{split}", json.dumps(facts))
        examples.set_int_custom_property(f"{split}_windows", facts["windows"])
    examples.set_int_custom_property("frequency_seconds", series.frequency_seconds)
    examples.set_string_custom_property("warnings", json.dumps(series.warnings))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
