"""Batch scoring in a run (`inference.path`): the new rows become tf.Examples typed by the model's
signature, BulkInferrer scores them with the blessed, servable model, and the PredictionLogs
agree with `rnnflow predict` on the same file."""

import glob
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from conftest import FAST_OVERRIDES, last_window_request, run_cli
from rnnflow.components.serving.batch_inference import SKIPPED_FILE, write_examples
from rnnflow.components.serving.batch_scoring import InputFileError, predict_file

pytestmark = pytest.mark.e2e


def new_reviews(path):
    with open(path, "wb") as f:
        f.write(b'id,text\nn1,"What a warm, funny film."\nn2,Boring.\nn3,\nn4,"caf\xe9"\n')
    return str(path)


def prediction_logs(uri):
    files = glob.glob(os.path.join(uri, "*.gz"))
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.fixture(scope="module")
def scored_run(sentiment_run, tmp_path_factory):
    """The session's sentiment run again (cached up to the Trainer) with inference.path set."""
    import shutil

    output_dir = sentiment_run.output_dir
    root = tmp_path_factory.mktemp("inference")
    copy = root / "run"
    shutil.copytree(output_dir, copy)
    reviews = new_reviews(root / "new_reviews.csv")
    args = ["run", "--config", "sentiment", "--output-dir", str(copy), "--set", f"inference.path={reviews}"]
    for override in FAST_OVERRIDES:
        args += ["--set", override]
    result = run_cli(args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return reviews, result, json.loads((copy / "run_summary.json").read_text())


def test_a_run_scores_the_inference_file_as_rnnflow_predict_does(scored_run):
    reviews, result, summary = scored_run
    inference = summary["inference"]
    assert (inference["rows"], inference["skipped"], inference["predictions"]) == (3, 1, 3)
    assert open(inference["skipped_rows"]).read() == "line 5: column `text`: invalid UTF-8 (byte 0xe9 at character 3)\n"
    assert f"inference: 3 predictions for 3 rows of {reviews} (1 rows skipped" in result.stdout
    logs = prediction_logs(inference["inference_result"])
    by_id = {}
    for log in logs:
        example = tf.train.Example.FromString(log.predict_log.request.inputs["examples"].string_val[0])
        row_id = example.features.feature["id"].bytes_list.value[0].decode()
        by_id[row_id] = tf.make_ndarray(log.predict_log.response.outputs["probabilities"])[0]
    assert sorted(by_id) == ["n1", "n2", "n3"]
    scored = os.path.join(os.path.dirname(reviews), "scored.jsonl")
    predict_file(summary["pushed_model"], reviews, scored, progress=False)
    for line in open(scored):
        row = json.loads(line)
        np.testing.assert_allclose(by_id[row["id"]], row["probabilities"], atol=1e-6)


def test_forecast_windows_become_examples_the_forecast_signature_reads(weather, weather_config, tmp_path):
    _, _, summary = weather
    request = last_window_request(weather_config)
    rows = [{"id": "last", **{k: v[0] for k, v in request.items()}},
            {"id": "short", **{k: v[0] for k, v in request.items()}, "wind": [1.0, 2.0]}]
    path = tmp_path / "windows.parquet"
    pd.DataFrame(rows).to_parquet(path)
    written, skipped = write_examples(str(path), summary["pushed_model"], str(tmp_path / "out"))
    # The wrong-length window is converted (the length is the model's to check) and refused there.
    assert (written, skipped) == (2, [])
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(
        str(tmp_path / "out" / "Split-inference" / "data_tfrecord-00000-of-00001.gz"), compression_type="GZIP")]
    model = tf.saved_model.load(summary["pushed_model"])
    from_examples = model.signatures["serving_examples"](examples=tf.constant(serialized[:1]))["forecast"].numpy()
    direct = model.signatures["serving_default"](**{
        k: tf.constant(v, tf.int64 if k == "window_end_time" else tf.float32) for k, v in request.items()})
    np.testing.assert_allclose(from_examples, direct["forecast"].numpy(), rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError):
        model.signatures["serving_examples"](examples=tf.constant(serialized[1:]))


def test_an_inference_file_without_the_input_column_or_any_usable_row_is_an_error(sentiment_run, tmp_path):
    output_dir = sentiment_run.output_dir
    model_dir = json.loads((output_dir / "run_summary.json").read_text())["pushed_model"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("review\nfine\n")
    with pytest.raises(InputFileError, match=r"wrong.csv: no column `text` for the input of model .* \(signature "
                                             r"serving_default takes text; the file has review\)"):
        write_examples(str(wrong), model_dir, str(tmp_path / "a"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": 5}\nnot json\n')
    with pytest.raises(InputFileError, match=r"inference.path .*broken.jsonl: no row to score\n  line 1: column "
                                             r"`text`: expected a text, got 5\n  line 2: not JSON"):
        write_examples(str(broken), model_dir, str(tmp_path / "b"))
    assert not os.path.exists(tmp_path / "b" / SKIPPED_FILE)
