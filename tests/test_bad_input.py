"""Bad input that used to crash late, answer wrongly or mislead: each now fails early with a
message naming the file, line, column or input, or has a documented, tested behavior.

The pipeline-level cases (a messy CSV through the whole pipeline, serving checks on
pushed models) are in test_end_to_end.py and test_forecast_end_to_end.py.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import apache_beam as beam
import pytest

from conftest import run_cli, write_csv
from rnnflow.components.ingest.csv_example_gen import _CsvToExample
from rnnflow.components.ingest.csv_input import CsvOptions
from rnnflow.components.ingest.input_report import reporting_example_gen
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline import run_state
from rnnflow.pipeline.config import ConfigError, load_config

LATIN1_ROWS = [("Café crème, très bon", "pos"), ("Mauvais, déçu", "neg"), ("Naïve « plot »", "neg")]


def _preflight(path, *overrides, fmt="csv", config="sentiment"):
    config = load_config(config, [f"data.path={path}", f"data.format={fmt}", *overrides])
    return get_task(config.task_type).preflight(config)


_COLLECTED: list = []  # filled by _collect inside the in-process Beam pipeline


def _collect(example):
    _COLLECTED.append({k: list(getattr(v, v.WhichOneof("kind")).value) if v.WhichOneof("kind") else []
                       for k, v in example.features.feature.items()})


def _example_gen(directory, file_name, options):
    """What the pipeline's CSV ExampleGen makes of a file: [{column: [values]}]."""
    config = load_config("sentiment", [f"data.encoding={options.encoding}", f"data.delimiter='{options.delimiter}'"])
    component = reporting_example_gen(config, {"train": os.path.join(str(directory), file_name)}, buckets={"train": 1})
    properties = {"input_base": str(directory), "custom_config": component.exec_properties["custom_config"]}
    _COLLECTED.clear()
    with beam.Pipeline(runner="DirectRunner", options=beam.options.pipeline_options.PipelineOptions(
            ["--direct_running_mode=in_memory"])) as pipeline:
        _ = pipeline | _CsvToExample(properties, file_name) | beam.Map(_collect)  # noqa: E1120
    return list(_COLLECTED)


def _texts(rows):
    return sorted(r["text"][0].decode("utf-8") if r["text"] else "" for r in rows)


# --- 1, 5: encodings and the byte-order mark ------------------------------------------------

def test_latin1_file_reads_correctly_with_data_encoding(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in LATIN1_ROWS)).encode("latin-1"))
    report = _preflight(path, "data.encoding=latin-1")
    assert report.rows == 3 and not any("not valid" in w for w in report.warnings)
    assert _texts(_example_gen(tmp_path, "latin1.csv", CsvOptions("latin-1"))) == sorted(t for t, _ in LATIN1_ROWS)


def test_latin1_file_read_as_utf8_warns_with_line_offset_and_the_encoding_to_set(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in LATIN1_ROWS)).encode("latin-1"))
    report = _preflight(path)
    [warning] = [w for w in report.warnings if "not valid" in w]
    # Line 2 starts at byte 11; "Caf" is 4 bytes into it after the quote.
    assert f"3 of 3 rows contain bytes that are not valid utf-8 (first: {path} line 2, byte offset 15)" in warning
    assert "replaced by U+FFFD" in warning and "set data.encoding: cp1252" in warning
    # ... and the pipeline's ExampleGen keeps the rows (it used to die with UnicodeDecodeError).
    texts = _texts(_example_gen(tmp_path, "latin1.csv", CsvOptions()))
    assert texts[0].startswith("Caf\ufffd cr\ufffdme") and len(texts) == 3


def test_one_bad_byte_is_replaced_and_the_rest_of_the_row_kept(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'text,label\ngood film,pos\ncaf\xe9 ok,neg\n')
    rows = _example_gen(tmp_path, "d.csv", CsvOptions())
    assert _texts(rows) == ["caf\ufffd ok", "good film"]


def test_byte_order_mark_is_dropped_from_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext,label\ngood,pos\nbad,neg\n".encode("utf-8"))
    assert _preflight(path).rows == 2
    rows = _example_gen(tmp_path, "excel.csv", CsvOptions())
    assert sorted(rows[0]) == ["label", "text"]


@pytest.mark.parametrize("override, message", [
    ("data.encoding=klingon", "data.encoding: unknown encoding 'klingon'"),
    ("data.encoding=utf-16", "data.encoding: 'utf-16' is not ASCII-compatible"),
    ("data.delimiter=;;", "data.delimiter: ';;' must be one character"),
])
def test_csv_options_are_validated_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("sentiment", [override])


# --- 7: quotes --------------------------------------------------------------------------------

def test_unclosed_quote_in_the_last_row_is_named_in_preflight_and_in_the_example_gen(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngood,pos\nbad,neg\n"never closed,pos\n')
    message = rf"{path} line 4: unclosed quote"
    with pytest.raises(DataError, match=message):
        _preflight(path)
    with pytest.raises(Exception, match=message):  # the pipeline reads it the same way
        _example_gen(tmp_path, "d.csv", CsvOptions())


def test_unclosed_quote_in_the_middle_is_named_at_its_own_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngood,pos\n"bad film,neg\nfine,pos\nok,neg\n')
    with pytest.raises(DataError, match=rf"{path} line 3: unclosed quote"):
        _preflight(path)
    path.write_text('text,label\ngood,pos\n"bad film,neg\nfine,pos\nhe said "wow,neg\nok,pos\n')
    with pytest.raises(DataError, match=rf"{path} lines 3-5: .*\(a quoted field opened on line 3 "
                                        "runs over 3 lines: check for an unclosed quote"):
        _preflight(path)


def test_quoted_fields_may_span_lines_and_stray_quotes_are_literal(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"a review\nover two lines",pos\nbad,neg\na 5" screen,pos\n"said ""hi""",neg\n')
    assert _preflight(path).rows == 4
    assert _texts(_example_gen(tmp_path, "d.csv", CsvOptions())) == [
        'a 5" screen', "a review\nover two lines", "bad", 'said "hi"']


# --- 8: format mismatches and delimiters -------------------------------------------------------

def test_csv_read_as_tfrecord_suggests_csv(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "pos"], ["bad", "neg"]])
    with pytest.raises(DataError, match=rf"{path}: not a readable TFRecord file .*it looks like csv: "
                                        "set data.format: csv"):
        _preflight(path, fmt="tfrecord")


def test_tfrecord_read_as_csv_suggests_tfrecord(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "d.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(tf.train.Example().SerializeToString())
    with pytest.raises(DataError, match=rf"{path}: not a CSV text file \(binary content; it looks like "
                                        r"tfrecord\): set data.format: tfrecord"):
        _preflight(path)


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 10)
    with pytest.raises(DataError, match=rf"{path}: cannot read as parquet"):
        _preflight(path, fmt="parquet")
    csv_path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "pos"]])
    with pytest.raises(DataError, match="it looks like csv: set data.format: csv"):
        _preflight(csv_path, fmt="parquet")


def test_semicolon_file_gets_a_delimiter_hint_and_reads_with_the_option(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text;label\ngood, really;pos\nbad;neg\n")
    with pytest.raises(DataError, match=r"column 'text' not found; columns: text;label \(the header looks "
                                        r"';'-separated: set data.delimiter: ';'\)"):
        _preflight(path)
    assert _preflight(path, "data.delimiter=;").details["label_values"] == ["neg", "pos"]
    assert _texts(_example_gen(tmp_path, "d.csv", CsvOptions(delimiter=";"))) == ["bad", "good, really"]


def test_forecast_series_honours_encoding_delimiter_and_format_hints(tmp_path):
    rows = "".join(f"2024-01-01 {h:02d}:00;{h};{h % 3}\n" for h in range(24))
    path = tmp_path / "s.csv"
    path.write_text("time;a;b\n" + rows)
    overrides = ["data.time_column=time", "data.target_columns=[a]", "task.lookback=2", "task.horizon=1"]
    with pytest.raises(DataError, match=r"set data.delimiter: ';'"):
        _preflight(path, *overrides, config="forecast")
    assert _preflight(path, *overrides, "data.delimiter=;", config="forecast").rows == 24
    with pytest.raises(DataError, match="it looks like csv: set data.format: csv"):
        _preflight(path, *overrides, fmt="parquet", config="forecast")


# --- 9: hopeless data ---------------------------------------------------------------------------

def test_classes_too_rare_for_the_eval_split_are_warned_about(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [[f"text {i}", f"class{i}"] for i in range(50)])
    report = _preflight(path)  # the built-in split: 3 train buckets, 1 eval bucket
    assert any("50 of 50 classes have fewer than 4 examples: 'class0' (1)" in w
               and "with 1 of 4 hash buckets in eval, each is expected to have no eval example" in w
               for w in report.warnings)


def test_strict_data_fails_before_any_component(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [[f"text {i}", f"class{i}"] for i in range(50)])
    output_dir = tmp_path / "run"
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(output_dir), "--strict-data",
                      "--set", f"data.path={path}"])
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((output_dir / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["components"] == []
    assert summary["error"].startswith("DataError: --strict-data: 1 data warning(s): 50 of 50 classes")


def test_constant_target_is_warned_about(tmp_path):
    rows = "".join(f"2024-01-01 {h:02d}:00,{h},5.0\n" for h in range(24))
    path = tmp_path / "s.csv"
    path.write_text("time,a,level\n" + rows)
    report = _preflight(path, "data.time_column=time", "data.target_columns=[level]", "task.lookback=2",
                        "task.horizon=1", config="forecast")
    assert any("target 'level' is constant (5) in the train split" in w and "will not be blessed" in w
               for w in report.warnings)


# --- 4, 6, 11: output directory, run state, fast feedback ---------------------------------------

@pytest.mark.parametrize("make_path, reason", [
    (lambda tmp: "/proc/rnnflow-cannot-be-here", "cannot create it"),
    (lambda tmp: str(write_csv(tmp / "a_file", ["x"], [])), "exists and is not a directory"),
])
def test_unusable_output_dir_is_a_usage_error_in_one_line(tmp_path, make_path, reason):
    path = make_path(tmp_path)
    result = run_cli(["run", "--config", "sentiment", "--output-dir", path])
    assert result.returncode == 2
    assert result.stderr.strip() == f"rnnflow: --output-dir {path}: {reason}" + (
        ": No such file or directory" if "cannot" in reason else "")


def test_data_errors_come_before_tensorflow_is_imported(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["review", "label"], [["good", "pos"]])
    script = ("import sys; from rnnflow.pipeline.cli import main; "
              f"code = main(['run', '--config', 'sentiment', '--output-dir', {str(tmp_path / 'run')!r}, "
              f"'--set', 'data.path={path}']); "
              "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow'); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "column 'text' not found" in result.stdout
    assert result.stdout.strip().endswith("no tensorflow")


def test_native_import_noise_goes_to_the_log_only(tmp_path, capfd):
    import logging

    from rnnflow.pipeline.runner import native_stderr_filtered

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("rnnflow.stderr").addHandler(handler)
    logging.getLogger("rnnflow.stderr").setLevel(logging.INFO)
    try:
        with native_stderr_filtered():
            os.write(2, b"E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] Unable to register "
                        b"cuFFT factory: Attempting to register factory\nF real native error\n")
    finally:
        logging.getLogger("rnnflow.stderr").removeHandler(handler)
    console = capfd.readouterr().err
    assert "real native error" in console and "cuFFT" not in console
    assert [r.getMessage()[:1] for r in records] == ["E", "F"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_running_summary(output_dir, pid):
    run_state.write_json(str(output_dir / "run_summary.json"), {
        "status": "running", "pid": pid, "host": socket.gethostname(), "started_at": "2026-01-01T00:00:00+00:00",
        "pushed_model": "/old/serving/1", "output_dir": str(output_dir)})


def test_status_reports_a_killed_run_as_interrupted(tmp_path):
    _write_running_summary(tmp_path, _dead_pid())
    result = run_cli(["status", "--output-dir", str(tmp_path)])
    assert result.returncode == 130
    assert "status: interrupted" in result.stdout and "ended without finishing" in result.stdout
    assert "pushed model" not in result.stdout


def test_status_of_a_live_run_and_of_an_empty_dir(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_running_summary(tmp_path, sleeper.pid)
        result = run_cli(["status", "--output-dir", str(tmp_path)])
        assert result.returncode == run_state.EXIT_RUNNING and "status: running" in result.stdout
        # A second run into the same directory would share its metadata store: refused.
        result = run_cli(["run", "--config", "sentiment", "--output-dir", str(tmp_path)])
        assert result.returncode == 2 and f"pid {sleeper.pid}" in result.stderr and "still running" in result.stderr
    finally:
        sleeper.kill()
    result = run_cli(["status", "--output-dir", str(tmp_path / "empty")])
    assert result.returncode == 2 and "no run_summary.json" in result.stderr


def _wait_until_running(output_dir, process, seconds=60):
    summary_path = output_dir / "run_summary.json"
    deadline = time.time() + seconds
    while time.time() < deadline:
        if summary_path.exists() and json.loads(summary_path.read_text()).get("status") == "running":
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("the run never marked itself running")


def _start_run(output_dir):
    return subprocess.Popen([sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", "sentiment",
                             "--output-dir", str(output_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_killed_run_never_leaves_an_old_succeeded_summary(tmp_path):
    run_state.write_json(str(tmp_path / "run_summary.json"), {
        "status": "succeeded", "started_at": "2026-01-01T00:00:00+00:00", "pushed_model": "/old/serving/1"})
    process = _start_run(tmp_path)
    _wait_until_running(tmp_path, process)
    process.kill()
    process.wait()
    result = run_cli(["status", "--output-dir", str(tmp_path)])
    assert result.returncode == 130 and "status: interrupted" in result.stdout
    previous = json.loads((tmp_path / "run_summary.previous.json").read_text())
    assert previous["status"] == "succeeded" and previous["pushed_model"] == "/old/serving/1"
    # The next run says what happened and keeps the interrupted summary aside.
    result = run_cli(["run", "--config", "sentiment", "--output-dir", str(tmp_path),
                      "--set", "data.path=/nonexistent.csv"])
    assert "the previous run in this directory (started" in result.stdout and "was interrupted" in result.stdout
    assert json.loads((tmp_path / "run_summary.previous.json").read_text())["status"] == "interrupted"


def test_sigterm_ends_a_run_as_interrupted(tmp_path):
    process = _start_run(tmp_path)
    _wait_until_running(tmp_path, process)
    time.sleep(1.0)  # inside the run (input check or imports)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["pushed_model"] is None


# --- 1, 5, 7, 8 through the whole pipeline ------------------------------------------------------

@pytest.mark.e2e
def test_messy_real_world_csv_runs_end_to_end(nights):
    """The IMDB sample as a spreadsheet export might write it (conftest's
    `write_spreadsheet_export`: a byte-order mark, semicolons, a review over two lines, a stray
    byte that is not UTF-8, which used to kill CsvExampleGen after half a minute, and literal
    quotes) runs end to end: it is night 1 of the shared three-night run."""
    _, rows, [(result, summary), *_] = nights
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["status"] == "succeeded" and summary["input"]["rows"] == len(rows)
    assert any("1 of 100 rows contain bytes that are not valid utf-8 (first: " in w and " line 3, byte offset" in w
               for w in summary["input"]["warnings"])
    assert "Unable to register" not in result.stderr  # native import noise stays in the log file
