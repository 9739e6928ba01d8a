"""The one ingest scaffold and the one CSV reader: every task that reads its own input format
gets its ExampleGen and its pre-flight check from `task_example_gen`, and every task that reads
CSV honours `data.encoding`, `data.delimiter` and `data.quote_char` through `csv_input`."""

import os

import pytest

from conftest import HARNESS
from rnnflow.components.ingest import task_example_gen
from rnnflow.components.language_model.reading import read_texts
from rnnflow.components.tasks import DataError, get_task, task_names
from rnnflow.pipeline.config import ConfigError, CsvFields, load_config

BUILTIN = {task_type: harness.config for task_type, harness in HARNESS.items()}
COMPONENTS = os.path.join(os.path.dirname(__file__), "..", "components")


def test_every_task_with_its_own_format_ingests_through_the_one_scaffold(tmp_path):
    with_ingest = [t for t in task_names() if get_task(t).ingest_class]
    # Exactly the task packages with an ingest module of their own (CSV tasks have none).
    assert sorted(with_ingest) == sorted(t for t in task_names() if os.path.exists(os.path.join(COMPONENTS, t, "ingest.py")))
    assert {"forecasting", "language_model", "sequence_labeling", "translation"} <= set(with_ingest)
    for task_type in with_ingest:
        task = get_task(task_type)
        ingest = task.ingest()
        assert isinstance(ingest, task_example_gen.Ingest) and ingest.splits == task.splits
        config = load_config(BUILTIN[task_type], ["data.path=x.txt"] if task_type == "sequence_labeling" else [])
        component = task.example_gen(config, {"train": str(tmp_path / "input.csv")})
        assert component.id == ingest.node_id
        assert component.executor_spec.executor_class is task_example_gen.Executor


# One latin-1 file, ';'-separated, with single quotes around a field that holds the delimiter.
ROWS = ["date;text;OT", "2024-01-01 00:00;'caf\xe9; cr\xe8me';1.5"] + \
       [f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00;'x';{h}.0" for h in range(1, 48)]
OPTIONS = ["data.format=csv", "data.encoding=latin-1", "data.delimiter=;", "data.quote_char=\"'\""]


def write_rows(path):
    path.write_bytes("\n".join(ROWS).encode("latin-1") + b"\n")
    return str(path)


def test_the_language_model_reads_csv_with_the_shared_options(tmp_path):
    path = write_rows(tmp_path / "texts.csv")
    config = load_config("charlm", [f"data.path={path}", *OPTIONS])
    assert read_texts(config.data, path)[0] == "caf\xe9; cr\xe8me"


def test_the_forecaster_reads_csv_with_the_shared_options(tmp_path):
    path = write_rows(tmp_path / "series.csv")
    config = load_config("forecast", [f"data.path={path}", *OPTIONS, "data.time_column=date",
                                      "data.target_columns=[OT]", "task.lookback=4", "task.horizon=2"])
    report = get_task("forecasting").preflight(config)
    assert report.rows == 48 and report.details["targets"] == ["OT"]


def test_text_classification_reads_csv_with_the_shared_options(tmp_path):
    rows = ["text;label"] + [f"'review {i}; {'good' if i % 2 else 'bad'}';{i % 2}" for i in range(40)]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="latin-1")
    config = load_config("sentiment", [f"data.path={path}", *OPTIONS[1:]])
    report = get_task("text_classification").preflight(config)
    assert report.rows == 40


@pytest.mark.parametrize("task_type", ["text_classification", "forecasting", "language_model"])
@pytest.mark.parametrize("override, field", [("data.quote_char=ab", "data.quote_char"),
                                             ("data.delimiter=\"'\"", "data.delimiter"),
                                             ("data.encoding=utf-16", "data.encoding")])
def test_bad_csv_options_are_config_errors_naming_the_field_for_every_csv_task(task_type, override, field):
    overrides = [override, "data.quote_char=\"'\""] if field == "data.delimiter" else [override]
    assert issubclass(get_task(task_type).data_config_cls, CsvFields)
    with pytest.raises(ConfigError, match=field):
        load_config(BUILTIN[task_type], overrides)


def test_a_language_model_csv_with_a_byte_invalid_in_its_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "texts.csv"
    path.write_bytes(b"text\nfine\ncaf\xe9\n")
    config = load_config("charlm", [f"data.path={path}", "data.format=csv"])
    with pytest.raises(DataError, match=r"texts.csv: line 3: invalid utf-8"):
        read_texts(config.data, str(path))
