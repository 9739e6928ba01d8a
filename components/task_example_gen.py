"""The ExampleGen of a task that reads its own input format (a series, CoNLL sentences, plain
text): TFX's FileBasedExampleGen, whose driver resolves spans and fingerprints the input, with the
task's executor, which reads the span's files once, splits them as the task must (by time, by a
hash of the sentence, by contiguous blocks) and writes each split's examples with Beam
(`write_splits`)."""

from __future__ import annotations

import os

import apache_beam as beam
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from rnnflow.components.ingest_config import example_gen_custom_config

EXAMPLES_FILE_PREFIX = "data_tfrecord"


def write_splits(pipeline: beam.Pipeline, rows: dict[str, list], to_example, output_uri: str) -> None:
    """Each split's rows -> `to_example(row)` tf.Examples, serialized into `Split-<name>/`."""
    for split, split_rows in rows.items():
        _ = (pipeline
             | f"Rows[{split}]" >> beam.Create(split_rows, reshuffle=False)
             | f"ToExample[{split}]" >> beam.Map(lambda row: to_example(row).SerializeToString())
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 os.path.join(output_uri, f"Split-{split}", EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"))


def task_example_gen(config, input_base: str, pattern: str, executor, splits: tuple[str, ...], node_id: str):
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="input", pattern=pattern)]),
        # The executor writes these splits; the driver only needs their names.
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=split, hash_buckets=1) for split in splits])),
        custom_config=example_gen_custom_config(config),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor)).with_id(node_id)
