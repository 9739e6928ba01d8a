"""Batch scoring inside a scheduled run (`inference.path`): the new inputs become tf.Examples
(`InferenceExamples`), which TFX's BulkInferrer scores with the run's model when it is blessed
and servable, writing PredictionLogs (the `inference_result` artifact). BulkInferrer is given
a TF2 model loader (`TF2Model`; tfx_bsl's own TF1 loader cannot run these models).

The input file is what `rnnflow predict` reads (CSV, JSONL or Parquet; rows with the columns of
the model's `serving_default` inputs, read as `components/serving/batch_scoring.py` documents), so a file
scored by hand and the same file scored by the pipeline give the same predictions. Each input
becomes the feature of the same name, typed by the signature (text: bytes; numbers: floats;
integers: int64), which is what the task's tf.Example signature parses; the id column, when
there is one, is kept as a bytes feature so each PredictionLog names its row. Rows that cannot
be converted are skipped, counted and listed (`skipped_rows.txt` in the artifact); a file with
no usable row, or without a column for an input, fails the step naming the file and column.
"""


import json
import os
import tempfile

import numpy as np
from tfx import v1 as tfx
from tfx.components.bulk_inferrer import executor as bulk_inferrer_executor
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from rnnflow.components.ingest import package_filesystem
from rnnflow.components.serving.serving_client import INTEGER_DTYPES, load_saved_model

SPLIT = "inference"
EXAMPLES_FILE = "data_tfrecord-00000-of-00001.gz"
SKIPPED_FILE = "skipped_rows.txt"
ROWS_PROPERTY, SKIPPED_PROPERTY = "rows", "skipped"


def signature_defs(model_dir: str):
    """The SavedModel's SignatureDefs, read from saved_model.pb without loading the model."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    with tf.io.gfile.GFile(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def


def signature_inputs(model_dir: str, signature: str) -> dict[str, str]:
    """The signature's inputs (name -> DT_* dtype name)."""
    from tensorflow.core.framework import types_pb2

    signatures = signature_defs(model_dir)
    if signature not in signatures:
        raise ValueError(f"{model_dir} has no signature {signature!r} (it has {', '.join(sorted(signatures))})")
    return {name: types_pb2.DataType.Name(info.dtype) for name, info in signatures[signature].inputs.items()}


def to_example(values: dict, inputs: dict[str, str], row_id=None):
    import tensorflow as tf

    features = {}
    for name, value in values.items():
        listed = value if isinstance(value, list) else [value]
        if inputs[name] == "DT_STRING":
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode("utf-8") if isinstance(v, str) else v for v in listed]))
        elif inputs[name] in INTEGER_DTYPES:
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in listed]))
        else:
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in listed]))
    if row_id is not None:
        features["id"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(row_id).encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_examples(path: str, model_dir: str, output_dir: str, *, input_format: str = "", id_column: str = "",
                   delimiter: str = ",", signature: str = "serving_default") -> tuple[int, list[tuple[str, str]]]:
    """Converts `path` into `output_dir`/Split-inference; returns (rows written, skipped rows)."""
    import tensorflow as tf

    from rnnflow.components.serving.batch_scoring import InputFileError, check_columns, read_rows, row_inputs

    inputs = signature_inputs(model_dir, signature)
    with tempfile.TemporaryDirectory(prefix="rnnflow-inference-") as scratch:
        local = package_filesystem.local_path(path)
        if "://" in local:  # gs:// and the like: the readers take local files
            local = os.path.join(scratch, os.path.basename(path))
            fileio.copy(path, local)
        columns, rows = read_rows(local, input_format or None, delimiter=delimiter)
        check_columns(columns, inputs, path, f"model {model_dir}", signature, id_column or None)
        id_column = id_column or ("id" if columns and "id" in columns else "")
        split_dir = os.path.join(output_dir, f"Split-{SPLIT}")
        tf.io.gfile.makedirs(split_dir)
        written, skipped = 0, []
        with tf.io.TFRecordWriter(os.path.join(split_dir, EXAMPLES_FILE), options="GZIP") as writer:
            for row in rows:
                try:
                    if row.error:
                        raise ValueError(row.error)
                    example = to_example(row_inputs(row, inputs, signature), inputs,
                                         row.values.get(id_column) if id_column else row.line)
                except ValueError as e:
                    skipped.append((row.where, str(e)))
                    continue
                writer.write(example.SerializeToString())
                written += 1
    if not written:
        detail = "".join(f"\n  {where}: {why}" for where, why in skipped[:20])
        raise InputFileError(f"inference.path {path}: no row to score{detail}")
    return written, skipped


@component
def InferenceExamples(  # noqa: N802 (TFX component naming)
        model: InputArtifact[standard_artifacts.Model],
        examples: OutputArtifact[standard_artifacts.Examples],
        path: Parameter[str],
        input_format: Parameter[str] = "",
        id_column: Parameter[str] = "",
        delimiter: Parameter[str] = ",",
        signature: Parameter[str] = "serving_default"):
    """The rows of `path` as tf.Examples typed by the model's `signature` (the task's served
    signature; module docstring)."""
    import tensorflow as tf

    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    written, skipped = write_examples(path, model_dir, examples.uri, input_format=input_format,
                                      id_column=id_column, delimiter=delimiter, signature=signature)
    with tf.io.gfile.GFile(os.path.join(examples.uri, SKIPPED_FILE), "w") as f:
        f.write("".join(f"{where}: {why}\n" for where, why in skipped))
    examples.split_names = artifact_utils.encode_split_names([SPLIT])
    examples.set_int_custom_property(ROWS_PROPERTY, written)
    examples.set_int_custom_property(SKIPPED_PROPERTY, len(skipped))
    examples.set_string_custom_property("source", json.dumps(path))


class TF2Model:
    """A SavedModel loaded with TF2's `tf.saved_model.load`, answering the one call tfx_bsl's
    RunInference makes on a loaded model: `run(fetches, feed_dict)` with the signature_def's
    tensor names.

    tfx_bsl loads models with the TF1 loader into a Session, which cannot run these models: the
    Keras 3 variables inside their tf.functions are not restored that way ("Could not find
    variable bi_lstm_0/.../bias"). TF Serving and `tf.saved_model.load` run them as they are."""

    def __init__(self, path: str, tags=None):
        self.model = load_saved_model(path, tags)
        signatures = signature_defs(path)
        # tensor name -> (signature, input or output key)
        self.inputs = {i.name: (key, alias) for key, sig in signatures.items() for alias, i in sig.inputs.items()}
        self.outputs = {o.name: (key, alias) for key, sig in signatures.items() for alias, o in sig.outputs.items()}

    def run(self, fetches: dict, feed_dict: dict) -> dict:
        import tensorflow as tf

        [(input_name, values)] = feed_dict.items()
        signature, input_key = self.inputs[input_name]
        answer = self.model.signatures[signature](**{input_key: tf.constant(values)})
        return {alias: _rows(answer[self.outputs[tensor][1]].numpy()) for alias, tensor in fetches.items()}


class _Rows(np.ndarray):
    """A [batch] string output whose rows stay arrays: tfx_bsl splits outputs row by row and
    reads each row's `dtype`, which a bare `bytes` row does not have."""

    def __getitem__(self, index):
        value = super().__getitem__(index)
        return value if isinstance(value, np.ndarray) else np.asarray(value, dtype=self.dtype)


def _rows(array: np.ndarray) -> np.ndarray:
    return array.view(_Rows) if array.dtype == object and array.ndim == 1 else array


def load_tf2_model(path: str, tags) -> TF2Model:
    return TF2Model(path, tags)


class _BulkInferrerExecutor(bulk_inferrer_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802
        import functools
        from unittest import mock

        # TFX's executor offers no way to pass RunInference a loader; this hands it ours, for this
        # execution only.
        run_inference = bulk_inferrer_executor.run_inference
        with mock.patch.object(run_inference, "RunInference", functools.partial(
                run_inference.RunInference, load_override_fn=load_tf2_model)):
            super().Do(input_dict, output_dict, exec_properties)


class BulkInferrer(tfx.components.BulkInferrer):
    """TFX's BulkInferrer, loading the model as TF2 does (`TF2Model`)."""
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(_BulkInferrerExecutor)


def count_predictions(inference_result_uri: str) -> int:
    import tensorflow as tf

    files = tf.io.gfile.glob(os.path.join(inference_result_uri, "*.gz"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) if files else 0
