"""Paths that mean the same on every machine: pkg:// through TFX's filesystem layer, and
data given as a URI of a tf.io.gfile filesystem (ram:// stands in for gs:// and s3://,
which this sandbox cannot reach)."""

import pytest
import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from conftest import IMDB_SAMPLE, imdb_sample_path
from rnnflow.components import package_filesystem  # noqa: F401 (registers pkg://)
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
    assert report.files == [ram_csv] and report.rows == 20 and report.label_values == ["neg", "pos"]
    glob_config = load_config("sentiment", ["data.path=ram://rnnflow-test/*.csv"])
    assert get_task("text_classification").preflight(glob_config).files == [ram_csv]


def test_a_uri_that_names_nothing_is_a_data_error_naming_it(ram_csv):
    config = load_config("sentiment", ["data.path=ram://rnnflow-test/missing.csv"])
    with pytest.raises(DataError, match="data.path: file not found: ram://rnnflow-test/missing.csv"):
        get_task("text_classification").preflight(config)
