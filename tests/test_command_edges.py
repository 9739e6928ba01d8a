"""The edges of the commands (issue 19): where they write, what they refuse before slow work,
and what `status` says of a summary it cannot read. No pipeline runs here: each check happens
before a model loads or a pipeline compiles, which is the point."""

import json
import os
import stat
import time

import pytest

from conftest import run_cli
from rnnflow.components.serving.batch_scoring import InputFileError, _Output, predict_file
from rnnflow.components.common.file_checks import OutputPathError, check_output_dir, check_output_file
from rnnflow.pipeline import run_state
from rnnflow.pipeline import serving_config as deploy
from rnnflow.pipeline.config import ConfigError, load_config, portable_path_notes

IMAGE = "runner.image=gcr.io/p/rnnflow:1"


def one_line_usage_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_directory_as_config_is_a_one_line_usage_error(tmp_path):
    line = one_line_usage_error(run_cli(["show-config", "--config", str(tmp_path)]))
    assert f"--config {tmp_path}: is a directory" in line


def test_a_config_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: bom\ntask:\n  type: text_classification\ndata:\n  path: x.csv\n".encode("utf-8"))
    assert load_config(str(path)).name == "bom"


@pytest.mark.parametrize("flag, value, message", [
    ("--seed", str(2 ** 70), "--seed 1180591620717411303424: must fit in 64 bits"),
    ("--top-k", str(2 ** 63), "--top-k 9223372036854775808: must be between 0 (every token) and 2147483647"),
    ("--temperature", "nan", "--temperature nan: must be a finite number above 0"),
    ("--max-length", "-1", "--max-length -1: must be between 0 and the model's task.max_generate"),
])
def test_generate_settings_are_checked_before_the_model_loads(tmp_path, flag, value, message):
    started = time.monotonic()
    # The model does not exist: the settings are refused before anything tries to load it.
    result = run_cli(["generate", "--model", str(tmp_path / "no-model"), flag, value])
    assert one_line_usage_error(result).startswith(f"rnnflow: generate: {message}")
    assert time.monotonic() - started < 30  # no TensorFlow import, let alone a model load


def test_predict_refuses_to_write_over_its_input_by_name_or_through_a_link(tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("text\ngood\n")
    link = tmp_path / "link.csv"
    link.symlink_to(reviews)
    for output in (reviews, link, tmp_path / "." / "reviews.csv"):
        result = run_cli(["predict", "--model", str(tmp_path / "no-model"), "--input", str(reviews),
                          "--output", str(output)])
        assert f"is the input file {reviews}" in one_line_usage_error(result)
    assert reviews.read_text() == "text\ngood\n"
    with pytest.raises(InputFileError, match="is the input file"):  # the Python API refuses it too
        predict_file(str(tmp_path / "no-model"), str(reviews), str(link))


@pytest.mark.parametrize("output, why", [
    ("/proc/x.jsonl", "/proc is not writable by this user"),
    ("{file}/x.jsonl", "is a file, so the folder"),
    ("{dir}", "is a directory; give a file name"),
])
def test_predict_checks_the_output_location_before_loading_the_model(tmp_path, output, why):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("text\ngood\n")
    (tmp_path / "a-dir").mkdir()
    output = output.format(file=reviews, dir=tmp_path / "a-dir")
    line = one_line_usage_error(run_cli(["predict", "--model", str(tmp_path / "no-model"), "--input",
                                         str(reviews), "--output", output]))
    assert line.startswith(f"rnnflow: predict: --output {output}: ") and why in line


def test_output_checks_name_the_flag_and_create_nothing_when_refusing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match=r"--out .*file/sub/x.json: .*file is a file"):
        check_output_file(str(blocker / "sub" / "x.json"), "--out")
    with pytest.raises(OutputPathError, match="--dir .*: exists and is not a directory"):
        check_output_dir(str(blocker), "--dir")
    assert check_output_file(str(tmp_path / "new" / "x.json"), "--out") == str(tmp_path / "new" / "x.json")
    assert not (tmp_path / "new").exists()  # checked, not created
    assert check_output_file("gs://bucket/x.json", "--out") == "gs://bucket/x.json"  # left to the writer


def test_predictions_file_gets_the_umask_mode_not_a_private_one(tmp_path):
    previous = os.umask(0o022)
    try:
        output = _Output(str(tmp_path / "out.jsonl"), ["line", "score"])
        output.write({"line": 1, "score": 0.5})
        output.commit()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "out.jsonl").st_mode) == 0o644
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [{"line": 1, "score": 0.5}]


@pytest.mark.parametrize("make", ["file", "under-a-file"])
def test_serving_config_output_dir_that_cannot_be_used_is_a_usage_error(tmp_path, make):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker if make == "file" else blocker / "deploy"
    line = one_line_usage_error(run_cli(["serving-config", "--output-dir", str(target), "--config", "sentiment"]))
    assert f"--output-dir {target}: " in line


def test_compile_checks_its_output_before_compiling(tmp_path):
    started = time.monotonic()
    line = one_line_usage_error(run_cli(["compile", "--config", "sentiment", "--set", IMAGE, "--pipeline-root",
                                         "gs://b/r", "--output", "/proc/spec.yaml"]))
    assert "--output /proc/spec.yaml: /proc is not writable" in line
    assert time.monotonic() - started < 30  # not after a compile


def test_compile_and_schedule_refuse_a_relative_pipeline_root_alike(tmp_path):
    compiled = one_line_usage_error(run_cli(["compile", "--config", "sentiment", "--set", IMAGE, "--pipeline-root",
                                             "relroot", "--output", str(tmp_path / "spec.yaml")]))
    scheduled = one_line_usage_error(run_cli(["schedule", "--config", "sentiment", "--set", IMAGE, "--set",
                                              "runner.type=kubeflow_v2", "--cron", "0 3 * * *", "--pipeline-root",
                                              "relroot", "--dry-run"]))
    assert "--pipeline-root: 'relroot' is relative to this machine" in compiled
    assert compiled.split(": ", 1)[1] == scheduled.split(": ", 1)[1]
    assert not (tmp_path / "spec.yaml").exists() and not (tmp_path / "relroot").exists()


def test_input_paths_for_kubeflow_are_checked_before_compiling():
    with pytest.raises(ConfigError, match="data.path: 'reviews.csv' is relative to this machine"):
        portable_path_notes(load_config("sentiment", ["data.path=reviews.csv"]))
    notes = portable_path_notes(load_config("sentiment", ["data.path=/data/reviews.csv"]))
    assert notes == ["data.path: '/data/reviews.csv' is a path on the machines the pipeline runs on: it must exist "
                     "inside the pipeline image or a volume mounted into it (not on this machine)"]
    assert portable_path_notes(load_config("sentiment", ["data.path=gs://b/reviews.csv"])) == []


def test_compile_refuses_a_relative_data_path_before_compiling(tmp_path):
    started = time.monotonic()
    line = one_line_usage_error(run_cli(["compile", "--config", "sentiment", "--set", IMAGE, "--set",
                                         "data.path=reviews.csv", "--pipeline-root", "gs://b/r", "--output",
                                         str(tmp_path / "spec.yaml")]))
    assert "data.path: 'reviews.csv' is relative to this machine" in line
    assert time.monotonic() - started < 15  # the compile takes 16-20 s; this is refused before it


@pytest.mark.parametrize("content, why", [
    (b"", "empty"),
    (b'{"status": "succ', "not valid JSON (line 1, column 12"),
    (b"[1, 2]", "a JSON list, not an object"),
])
def test_status_of_an_unreadable_summary_is_its_own_state(tmp_path, content, why):
    (tmp_path / "run_summary.json").write_bytes(content)
    result = run_cli(["status", "--output-dir", str(tmp_path)])
    assert result.returncode == run_state.EXIT_UNREADABLE == 5
    assert result.stdout.startswith("status: unreadable") and why in result.stdout
    assert "failed" not in result.stdout
    # The next run keeps the unreadable file aside, byte for byte, and says so.
    paths = run_state.RunPaths(str(tmp_path))
    note = run_state.begin_run(paths, {"status": "running"})
    assert "was unreadable" in note and (tmp_path / "run_summary.previous.json").read_bytes() == content


def test_status_of_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "f").write_text("x")
    assert "is a file" in one_line_usage_error(run_cli(["status", "--output-dir", str(tmp_path / "f")]))


def pushed(tmp_path, name, versions):
    directory = tmp_path / "serving" / name
    for version in versions:
        (directory / str(version)).mkdir(parents=True)
        (directory / str(version) / "saved_model.pb").write_bytes(b"")
    return deploy.ServedModel(name, str(directory), "2.16")


def test_a_canary_on_the_stable_version_is_refused(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options())
    with pytest.raises(deploy.ServingConfigError, match="--canary 11: version 11 is model sentiment's stable"):
        deploy.write(str(out), [model], deploy.Options(canary=11))
    with pytest.raises(deploy.ServingConfigError, match="--canary 10: version 10 is model sentiment's stable"):
        deploy.write(str(out), [model], deploy.Options(promote=10, canary=10))


def test_serving_config_says_when_the_canary_label_goes_and_refuses_an_unknown_model(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11, 12])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options(canary=11))
    result = run_cli(["serving-config", "--output-dir", str(out), "--promote", "11"])
    assert result.returncode == 0, result.stderr
    assert "sentiment: the canary label (version 11) is removed: it is now stable" in result.stdout
    line = one_line_usage_error(run_cli(["serving-config", "--output-dir", str(out), "--model", "nosuch",
                                         "--promote", "10"]))
    assert "--model nosuch: not a served model; served: sentiment" in line
    assert json.loads(json.dumps(deploy.read_labels(str(out)))) == {"sentiment": {"stable": 11}}


def test_a_file_read_in_the_wrong_format_gets_a_format_hint_not_a_line_per_row(tmp_path):
    from rnnflow.components.serving.batch_scoring import read_rows

    records = tmp_path / "rows.csv"  # JSON lines under a .csv name
    records.write_text('{"text": "good"}\n{"text": "bad"}\n')
    with pytest.raises(InputFileError, match=r"rows.csv: line 1 is a JSON object, not a CSV header: read as JSON "
                                             r"lines with --format jsonl"):
        read_rows(str(records))
    table = tmp_path / "rows.jsonl"  # CSV under a .jsonl name
    table.write_text("text\n" + "".join(f"review {i}\n" for i in range(21)))
    columns, rows = read_rows(str(table))
    with pytest.raises(InputFileError, match=r"rows.jsonl: line 1: not JSON .*; a CSV file\? read it with --format csv"):
        list(rows)


def test_a_summary_path_that_is_a_directory_stops_the_next_run_naming_it(tmp_path):
    (tmp_path / "run_summary.json").mkdir()
    assert run_state.read_summary(str(tmp_path / "run_summary.json"))["status"] == run_state.UNREADABLE
    with pytest.raises(run_state.OutputDirError, match=r"--output-dir .*run_summary.json"):
        run_state.begin_run(run_state.RunPaths(str(tmp_path)), {"status": "running"})
