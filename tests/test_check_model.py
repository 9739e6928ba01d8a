"""One fast check over the whole registry (NeuralForecast's `check_model`): for every task, on a
tiny synthetic dataset in its own format (the harness row's `synthetic`), in-process and without
the pipeline's orchestration:

1. its config round-trips;
2. its pre-flight check reads and reports the data;
3. every record becomes a tf.Example that parses back through the task's feature spec;
4. its `preprocessing_fn` analyzes and transforms the examples (TFT, in memory);
5. its TrainingData builds a tiny model, fits two steps and exports a SavedModel whose
   examples signature answers one row per example; a task whose model takes word vectors
   (`model.pretrained_embeddings`) starts from a small vectors file this check writes, frozen,
   with word dropout on.

The harness runs check the same contract end to end through the pipeline, in minutes; this
check names the broken piece in seconds.
"""

import dataclasses
import functools
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import HARNESS, WORDS
from rnnflow.components.common import run_facts
from rnnflow.components.ingest.csv_input import CsvOptions, read_records
from rnnflow.components.tasks import get_task, task_names
from rnnflow.components.tasks.base import load_dotted
from rnnflow.pipeline.config import load_config, parse_config, replace_fields

TINY = ["model.units=4", "model.embedding_dim=4", "model.layers=1", "training.epochs=1", "training.batch_size=8",
        "training.learning_rate=0.01", "training.lr_schedule=constant"]


def examples_of(task, config, report, files) -> tuple[dict, dict[str, list[bytes]]]:
    """(parse spec, split -> serialized tf.Examples) as the task's ExampleGen writes them."""
    if task.ingest_class:
        ingest = task.ingest()
        read = ingest.read(config, files)
        config = ingest.resolve(config, read)
        rows = ingest.split(config, read)
        to_example = ingest.to_example(config, read)
        return ingest.feature_spec(config, report), {
            split: [to_example(row).SerializeToString() for row in split_rows] for split, split_rows in rows.items()}
    # CSV rows: every cell a string feature, as the CSV ExampleGen writes text columns.
    with open(files[0], "rb") as f:
        names, records = read_records(files[0], f, CsvOptions.of(config.data))
        records = list(records)
    examples = [tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        for name, value in zip(names, record.fields)})).SerializeToString() for record in records]
    return ({name: tf.io.FixedLenFeature([], tf.string) for name in names},
            {"train": [e for i, e in enumerate(examples) if i % 4], "eval": examples[::4]})


def instance(parsed: dict) -> dict:
    return {k: (v.values.numpy() if isinstance(v, tf.SparseTensor) else v.numpy()) for k, v in parsed.items()}


def as_schema_gen_infers(spec: dict) -> dict:
    """Single values as SchemaGen infers them for the pipeline's Transform: shape [1]."""
    return {k: tf.io.FixedLenFeature([1], v.dtype) if isinstance(v, tf.io.FixedLenFeature) and not v.shape else v
            for k, v in spec.items()}


def transformed_dataset(graph: str, raw_spec: dict, serialized: dict[str, list[bytes]]):
    """A DataAccessor's tf_dataset_factory ("files" are split names): the split's raw examples,
    parsed and transformed by the transform graph, as the Trainer reads Transform's output."""
    import tensorflow_transform as tft

    layer = tft.TFTransformOutput(graph).transform_features_layer()

    def factory(files, options, schema):
        rows = [row for name in files for row in serialized[name]]
        dataset = tf.data.Dataset.from_tensor_slices(rows).batch(options.batch_size)
        dataset = dataset.map(lambda batch: layer(tf.io.parse_example(batch, raw_spec)))
        if options.label_key:
            label = options.label_key
            dataset = dataset.map(lambda f: ({k: v for k, v in f.items() if k != label}, f[label]))
        return dataset
    return factory


@pytest.mark.parametrize("task_type", task_names())
def test_check_model(task_type, tmp_path):
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs

    harness, task = HARNESS[task_type], get_task(task_type)
    tiny = [o for o in TINY if task.honours(o.partition("=")[0])]
    vectors = {}
    if task.honours("model.pretrained_embeddings"):
        rng = np.random.default_rng(0)
        vectors = {word: rng.normal(size=4).round(4) for word in WORDS[:6]}
        path = tmp_path / "vectors.txt"
        path.write_text(f"{len(vectors) + 1} 4\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items())
                        + "unrelated 1 2 3 4\n", encoding="utf-8")
        tiny += [f"model.pretrained_embeddings={path}", "model.freeze_embeddings=true", "model.word_dropout=0.2"]
    config = load_config(harness.config, [*harness.synthetic(tmp_path), *tiny])
    assert parse_config(config.to_dict()).to_dict() == config.to_dict()  # 1

    report = task.preflight(config)  # 2
    assert report.rows > 0

    spec, examples = examples_of(task, config, report, report.files)  # 3
    spec = as_schema_gen_infers(spec)
    parsed = {split: [instance(tf.io.parse_single_example(e, spec)) for e in rows] for split, rows in examples.items()}
    assert all(set(row) == set(spec) for rows in parsed.values() for row in rows)

    raw_train = str(tmp_path / "raw-train.gz")  # 4: as Transform does, auto fields first
    with tf.io.TFRecordWriter(raw_train, options="GZIP") as writer:
        for record in examples["train"]:
            writer.write(record)
    resolved = task.resolve_data_defaults(config, [raw_train], dataclasses.asdict(report))
    config = replace_fields(config, resolved["values"]) if resolved["values"] else config
    graph = str(tmp_path / "transform_graph")
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    custom_config = {"config": config.to_dict(), "input": dataclasses.asdict(report)}
    with tft_beam.Context(temp_dir=str(tmp_path / "tft"), force_tf_compat_v1=False):
        transform_fn = (parsed["train"], metadata) | tft_beam.AnalyzeDataset(
            functools.partial(load_dotted(task.preprocessing_fn), custom_config=custom_config))
        _ = transform_fn | tft_beam.WriteTransformFn(graph)
    metadata_io.write_metadata(metadata, os.path.join(graph, tft.TFTransformOutput.RAW_METADATA_DIR))
    run_facts.write_json(os.path.join(graph, run_facts.INPUT_REPORT_FILE), dataclasses.asdict(report))
    run_facts.write_json(os.path.join(graph, run_facts.RESOLVED_FILE), resolved)

    fn_args = FnArgs(  # 5
        transform_graph_path=graph, train_files=["train"], eval_files=["eval"],
        data_accessor=DataAccessor(tf_dataset_factory=transformed_dataset(graph, spec, examples),
                                   record_batch_factory=None, data_view_decode_fn=None),
        serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"),
        custom_config={"config": config.to_dict()}, hyperparameters=None, base_model=None)
    data = task.training_data()(fn_args, config)
    model = data.build_model(data.config)
    if vectors:  # every vector is a row of the frozen embedding; word dropout sits before it
        embedding = model.get_layer("embedding")
        rows = embedding.get_weights()[0]
        assert not embedding.trainable and model.get_layer("word_dropout").rate == 0.2
        assert all(np.isclose(rows, vector, atol=1e-6).all(axis=1).any() for vector in vectors.values())
        assert data.pretrained_coverage()["pretrained_embeddings"]["covered"] == len(vectors)
    history = model.fit(data.train().take(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    data.export(model, fn_args.serving_model_dir)
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    assert {"serving_default", task.examples_signature} <= set(loaded.signatures)
    batch = examples["eval"][:2]
    outputs = loaded.signatures[task.examples_signature](**{run_facts.EXAMPLES_INPUT: tf.constant(batch)})
    assert outputs and all(value.shape[0] == len(batch) for value in outputs.values())

