"""CSV ExampleGen that reads files exactly as the pre-flight check does (`csv_input`).

The executor of TFX's FileBasedExampleGen for CSV (the component is built in
`input_report.reporting_example_gen`): the driver (spans, input fingerprints,
caching) and the output (hash-split tf.Examples, column types inferred by tfx_bsl)
are TFX's; only reading the records differs, to honour `data.encoding` and
`data.delimiter`, drop a byte-order mark, and keep quoted fields that span lines.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen.executor import _ParsedCsvToTfExample
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx_bsl.coders import csv_decoder

from rnnflow.components.ingest.csv_input import CsvFormatError, CsvOptions, read_records
from rnnflow.components.ingest.ingest_config import config_from


class _ReadRecords(beam.DoFn):
    """One CSV file -> lists of cells (bytes, UTF-8), in file order."""

    def __init__(self, options: CsvOptions, column_names: list[str]):
        self._options = options
        self._column_names = column_names

    def process(self, path: str) -> Iterable[list[bytes]]:
        with beam.io.filesystems.FileSystems.open(path) as stream:
            try:
                names, records = read_records(path, stream, self._options)
                if names != self._column_names:
                    raise CsvFormatError(f"{path}: header {names} differs from the first file's "
                                         f"{self._column_names}")
                for record in records:
                    yield [field.encode("utf-8") for field in record.fields]
            except CsvFormatError as e:
                raise ValueError(str(e)) from None


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _CsvToExample(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str):  # noqa: N802
    data = config_from(exec_properties).data
    options = CsvOptions.of(data)
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    with fileio.open(files[0], "rb") as stream:
        column_names, _ = read_records(files[0], stream, options)
    records = (pipeline
               | "CreateFilenames" >> beam.Create(files)
               | "ReadRecords" >> beam.ParDo(_ReadRecords(options, column_names)))
    column_infos = beam.pvalue.AsSingleton(
        records | "InferColumnTypes" >> beam.CombineGlobally(
            csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)))
    return records | "ToTFExample" >> beam.ParDo(_ParsedCsvToTfExample(), column_infos)


class Executor(BaseExampleGenExecutor):
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX's name)
        return _CsvToExample
