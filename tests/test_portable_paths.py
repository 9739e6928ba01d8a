"""Paths that mean the same on every machine: pkg:// through TFX's filesystem layer, and
data given as a URI of a tf.io.gfile filesystem (ram:// stands in for gs:// and s3://,
which this sandbox cannot reach)."""

import pytest
import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from conftest import IMDB_SAMPLE, imdb_sample_path
from rnnflow.components.ingest import package_filesystem  # noqa: F401 (registers pkg://)
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline.config import ConfigError, load_config, pipeline_path, portable_path, resolve_path


def test_pkg_uris_read_through_tfx_fileio_as_the_example_gen_driver_does():
    directory = IMDB_SAMPLE.rsplit("/", 1)[0]
    assert fileio.exists(IMDB_SAMPLE) and fileio.isdir(directory)
    # Globs answer in pkg:// terms, so TFX's span regexes built from the pattern match them.
    assert fileio.glob(f"{directory}/*.txt") == [IMDB_SAMPLE]
    with fileio.open(IMDB_SAMPLE, "rb") as f:
        assert f.read(10) == open(imdb_sample_path(), "rb").read(10)
    # The input fingerprint the driver records (and caches on) is the local file's.
    local = io_utils.generate_fingerprint("s", imdb_sample_path())
    assert io_utils.generate_fingerprint("s", IMDB_SAMPLE) == local


def test_pkg_files_are_read_only_and_unknown_packages_are_not_found():
    with pytest.raises(Exception, match="read-only"):
        fileio.open(IMDB_SAMPLE, "w")
    assert not fileio.exists("pkg://no_such_package_xyz/data.csv")


def test_paths_for_local_runs_and_for_portable_specs():
    assert pipeline_path(IMDB_SAMPLE) == IMDB_SAMPLE
    assert pipeline_path("gs://b/x.csv") == "gs://b/x.csv"
    assert pipeline_path("x.csv").startswith("/")
    assert resolve_path("gs://b/x.csv") == "gs://b/x.csv"  # was <cwd>/gs:/b/x.csv
    assert portable_path("/mnt/data/x.csv", "data.path") == "/mnt/data/x.csv"
    with pytest.raises(ConfigError, match="data.path: 'x.csv' is relative"):
        portable_path("x.csv", "data.path")


@pytest.fixture
def ram_csv():
    path = "ram://rnnflow-test/reviews.csv"
    tf.io.gfile.makedirs("ram://rnnflow-test")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("text,label\n" + "".join(f"review number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    yield path
    tf.io.gfile.rmtree("ram://rnnflow-test")


def test_the_input_check_reads_data_at_a_uri(ram_csv):
    config = load_config("sentiment", [f"data.path={ram_csv}"])
    report = get_task("text_classification").preflight(config)
    assert report.files == [ram_csv] and report.rows == 20 and report.details["label_values"] == ["neg", "pos"]
    glob_config = load_config("sentiment", ["data.path=ram://rnnflow-test/*.csv"])
    assert get_task("text_classification").preflight(glob_config).files == [ram_csv]


def test_a_uri_that_names_nothing_is_a_data_error_naming_it(ram_csv):
    config = load_config("sentiment", ["data.path=ram://rnnflow-test/missing.csv"])
    with pytest.raises(DataError, match="data.path: file not found: ram://rnnflow-test/missing.csv"):
        get_task("text_classification").preflight(config)


def test_span_patterns_split_where_tfx_resolves_spans():
    from rnnflow.components.tasks.base import split_input_path

    assert split_input_path("gs://b/data/span-{SPAN}/*.csv") == ("gs://b/data", "span-{SPAN}/*.csv")
    assert split_input_path("/d/{YYYY}-{MM}-{DD}/x.csv") == ("/d", "{YYYY}-{MM}-{DD}/x.csv")
    assert split_input_path("/d/reviews-{SPAN:2}.csv") == ("/d", "reviews-{SPAN:2}.csv")
    assert split_input_path("/d/reviews.csv") == ("/d", "reviews.csv")


def _span_csv(directory, rows):
    directory.mkdir(parents=True)
    (directory / "reviews.csv").write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(rows)))


def test_the_input_check_reads_the_latest_span(tmp_path):
    for span, rows in (("span-1", 10), ("span-2", 12), ("span-10", 14)):
        _span_csv(tmp_path / span, rows)
    config = load_config("sentiment", [f"data.path={tmp_path}/span-{{SPAN}}/reviews.csv"])
    report = get_task("text_classification").preflight(config)
    assert report.files == [str(tmp_path / "span-10" / "reviews.csv")] and report.rows == 14
    dated = tmp_path / "dated"
    for day, rows in (("2026-11-21", 10), ("2026-11-22", 12)):
        _span_csv(dated / day, rows)
    config = load_config("sentiment", [f"data.path={dated}/{{YYYY}}-{{MM}}-{{DD}}/reviews.csv"])
    assert get_task("text_classification").preflight(config).rows == 12


def test_a_pattern_that_matches_no_span_and_an_empty_span_are_errors(tmp_path):
    config = load_config("sentiment", [f"data.path={tmp_path}/span-{{SPAN}}/reviews.csv"])
    with pytest.raises(DataError, match=r"data.path: no span matches .*span-\{SPAN\}/reviews.csv"):
        get_task("text_classification").preflight(config)
    (tmp_path / "span-3").mkdir()
    (tmp_path / "span-3" / "reviews.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="no data rows"):
        get_task("text_classification").preflight(config)


def test_the_example_gen_gets_the_span_pattern_relative_to_its_input_base():
    from rnnflow.pipeline.pipeline import create_pipeline

    config = load_config("sentiment", ["data.path=gs://b/reviews/span-{SPAN}/part-*.csv"])
    components = {c.id: c for c in create_pipeline(config, "gs://b/root", "gs://b/serving", portable=True).components}
    properties = components["CsvExampleGen"].exec_properties
    assert properties["input_base"] == "gs://b/reviews"
    assert "span-{SPAN}/part-*.csv" in properties["input_config"]
