"""Bad input data stops the run before any component, with a message naming the file/column/row."""

import json

import pytest

from conftest import imdb_sample_path, run_cli, write_csv
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline.config import load_config


def _preflight(path, *overrides, fmt="csv"):
    config = load_config("sentiment", [f"data.path={path}", f"data.format={fmt}", *overrides])
    return get_task(config.task_type).preflight(config)


def test_real_sample_passes_with_sorted_classes():
    report = _preflight(imdb_sample_path())
    assert report.rows == 100
    assert report.details["label_values"] == ["0", "1"]
    assert report.warnings == []


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"data.path: file not found: .*nope.csv"):
        _preflight(tmp_path / "nope.csv")


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(DataError, match="matches no files"):
        _preflight(tmp_path / "*.csv")


def test_wildcard_directories_are_rejected(tmp_path):
    with pytest.raises(DataError, match="only the file name may contain wildcards"):
        _preflight(tmp_path / "*" / "d.csv")


def test_missing_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["review", "label"], [["good", "pos"], ["bad", "neg"]])
    with pytest.raises(DataError, match=r"d.csv: column 'text' not found; columns: review, label"):
        _preflight(path)


def test_single_class_label(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "pos"], ["great", "pos"]])
    with pytest.raises(DataError, match=r"label column 'label' has a single class \['pos'\]"):
        _preflight(path)


def test_empty_csv_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty.csv: empty CSV file"):
        _preflight(path)


def test_header_only_csv(tmp_path):
    path = write_csv(tmp_path / "header.csv", ["text", "label"], [])
    with pytest.raises(DataError, match="header.csv: no data rows"):
        _preflight(path)


def test_all_empty_text_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["", "pos"], ["  ", "neg"]])
    with pytest.raises(DataError, match="text column 'text' is empty in all 2 rows"):
        _preflight(path)


def test_malformed_row_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"good film",pos\n"bad, film",neg,extra\n')
    with pytest.raises(DataError, match=r"d.csv line 3: malformed row with 3 fields; the header has 2"):
        _preflight(path)


def test_empty_label_names_the_line(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "pos"], ["bad", ""], ["ok", "neg"]])
    with pytest.raises(DataError, match=r"d.csv line 3: empty label in column 'label'"):
        _preflight(path)


def test_non_integer_numeric_labels_are_rejected(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "0.5"], ["bad", "1.5"]])
    with pytest.raises(DataError, match="non-integer number"):
        _preflight(path)


def test_empty_texts_and_invalid_utf8_are_kept_with_warnings(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'text,label\n"good film",pos\n,neg\n"bad \xff\xfe film",neg\n"multi\nline review",pos\n'
                     b'unicode\xe2\x80\xa8line separator,pos\n')
    report = _preflight(path)
    assert report.rows == 5
    assert report.details["label_values"] == ["neg", "pos"]
    assert any("1 of 5 rows have an empty text" in w for w in report.warnings)
    assert any("1 of 5 rows contain bytes that are not valid utf-8 (first: " in w
               and "d.csv line 4, byte offset 37)" in w for w in report.warnings)


def test_parquet_input(tmp_path):
    import pandas as pd

    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["good", "bad", "fine"], "label": [1, 0, 1]}).to_parquet(path)
    assert _preflight(path, fmt="parquet").details["label_values"] == ["0", "1"]
    with pytest.raises(DataError, match="column 'review' not found"):
        _preflight(path, "data.text_column=review", fmt="parquet")


def test_tfrecord_input(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "d.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for text, label in [(b"good", b"pos"), (b"bad", b"neg")]:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text])),
                "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label]))})).SerializeToString())
    assert _preflight(path, fmt="tfrecord").details["label_values"] == ["neg", "pos"]
    with pytest.raises(DataError, match=r"record 0: feature 'review' not found"):
        _preflight(path, "data.text_column=review", fmt="tfrecord")


def test_cli_stops_early_on_bad_data_and_pushes_nothing(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["review", "sentiment"], [["good", "pos"], ["great", "pos"]])
    output_dir = tmp_path / "run"
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(output_dir),
                      "--set", f"data.path={data}", "--set", "data.text_column=review",
                      "--set", "data.label_column=sentiment"])
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert summary["status"] == "failed"
    assert "single class" in summary["error"] and "d.csv" in summary["error"]
    assert summary["pushed_model"] is None
    assert not (output_dir / "serving").exists()
    assert "single class" in result.stdout


def test_cli_config_error_exit_code(tmp_path):
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(tmp_path),
                      "--set", "model.cell=lsmt"])
    assert result.returncode == 2
    assert "model.cell: 'lsmt' is not one of" in result.stderr
