"""Shared fixtures: small real data and one end-to-end run reused by several test modules."""

import contextlib
import csv
import dataclasses
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from typing import Callable, NamedTuple

import pytest

IMDB_SAMPLE = "pkg://tfx/examples/imdb/data/imdb_small_with_labels.txt"
# Few epochs and no quality bar: the end-to-end tests check plumbing and contract, not
# accuracy (test_not_blessed_run_pushes_nothing covers the quality gate).
FAST_OVERRIDES = ["training.epochs=2", "task.max_tokens=64", "model.units=8", "model.embedding_dim=8",
                  "evaluation.lower_bound=0.0", "evaluation.baseline_margin=-1"]  # plumbing, not quality


# The real datasets next to the repository (../shared/datasets, or $RNNFLOW_DATASETS).
DATASETS = os.environ.get("RNNFLOW_DATASETS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets"))


def dataset_file(*parts) -> str:
    """A file of the shared datasets, or a skip naming where it was looked for."""
    path = os.path.join(DATASETS, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{'/'.join(parts)} not found at {path} (set RNNFLOW_DATASETS)")
    return path


def conll_sample(path, source: str = "train.txt", sentences: int = 400) -> str:
    """The first `sentences` sentences of a CoNLL-2003 file (-DOCSTART- lines kept) at `path`."""
    lines, seen = [], 0
    with open(dataset_file("conll2003", source), encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            if not line.strip():
                seen += 1
                if seen > sentences:
                    break
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def imdb_sample_path() -> str:
    return str(resources.files("tfx").joinpath("examples/imdb/data/imdb_small_with_labels.txt"))


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run_fresh(script: str, *args: str) -> dict:
    """Runs a Python `script` (with `args`) in a fresh process, as a model server would load a
    model: nothing of this test process is imported there. Its last stdout line, parsed as JSON."""
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(args, cwd=None, timeout=900):
    """Runs `rnnflow` in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "rnnflow.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


# The built-in defaults as they are (about two minutes): the run must beat every baseline.
WEATHER_OVERRIDES: list[str] = []


def run_forecast(output_dir, *overrides):
    args = ["run", "--config", "forecast", "--output-dir", str(output_dir)]
    for override in overrides:
        args += ["--set", override]
    result = run_cli(args)
    summary_path = output_dir / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return result, summary


@pytest.fixture(scope="session")
def weather_config():
    """The weather run's config, its `auto` lookback resolved as the run's ingest resolves it."""
    from rnnflow.components.forecasting import series as series_lib
    from rnnflow.pipeline.config import load_config

    harness = HARNESS["forecasting"]
    config = load_config(harness.config, list(harness.overrides))
    return series_lib.resolve_auto(config, series_lib.read_series(config))


def last_window_request(config) -> dict:
    """The series' last lookback window as a serving_default request."""
    from rnnflow.components.forecasting import series as series_lib

    series = series_lib.read_series(config)
    request = {c: [series.column(c)[-config.task.lookback:].tolist()] for c in series.columns}
    request["window_end_time"] = [int(series.times[-1].value // 10**9)]
    return request


NER_OVERRIDES = ["training.epochs=15"]


# Small and short: the tests check plumbing and the serving contract, not the model's quality.
CHARLM_OVERRIDES = ["training.epochs=2", "model.units=64", "model.layers=1", "evaluation.max_nats_per_token=5",
                    "evaluation.baseline_margin=-1"]


# A small model for a few minutes: the tests check plumbing and the serving contract, not BLEU.
TRANSLATE_OVERRIDES = ["training.epochs=2", "model.units=32", "model.embedding_dim=32", "task.vocab_size=2000",
                       "evaluation.min_bleu=0", "evaluation.max_regression=100"]


# ---------------------------------------------------------------------------
# The test harness, keyed by the task registry: one row per registered task. Its finished run
# (one per session, shared by every test that asks) feeds the task's own end-to-end tests, the
# conformance tests and its notebook test.
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Harness:
    config: str  # the built-in config the run starts from
    overrides: tuple[str, ...] = ()  # what makes it short: plumbing and contract, not quality
    notebook: str = ""  # notebooks/<name>, executed on the finished run
    data: Callable[[pathlib.Path], list[str]] | None = None  # prepares data in the run dir -> overrides
    # Writes a tiny synthetic dataset in the task's own format into a folder -> overrides reading
    # it (the fast per-task check, `test_check_model.py`).
    synthetic: Callable[[pathlib.Path], list[str]] | None = None


def _conll_data(output_dir: pathlib.Path) -> list[str]:
    """A sample of CoNLL-2003's train file (hash-split into train and eval) and of its test file
    (`data.test_path`, scored once at the end)."""
    return [f"data.path={conll_sample(output_dir / 'conll_train.txt')}",
            f"data.test_path={conll_sample(output_dir / 'conll_test.txt', 'test.txt', 120)}"]


def _review_splits(output_dir: pathlib.Path) -> list[str]:
    """The IMDB sample's reviews as three files: 80 train, 10 eval, 10 test (predefined splits)."""
    with open(imdb_sample_path(), newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    parts = {"path": rows[:80], "eval_path": rows[80:90], "test_path": rows[90:]}
    return [f"data.{field}={write_csv(output_dir / f'reviews_{field}.csv', header, part)}"
            for field, part in parts.items()]


WORDS = ("good", "bad", "film", "plot", "actor", "scene", "great", "dull", "story", "end")


def _synthetic_reviews(folder: pathlib.Path) -> list[str]:
    rows = [(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 5)), "pos" if i % 2 else "neg")
            for i in range(60)]
    return [f"data.path={write_csv(folder / 'reviews.csv', ['text', 'label'], rows)}", "task.max_tokens=16",
            "task.vocab_size=50", "task.min_frequency=1"]


def _synthetic_series(folder: pathlib.Path) -> list[str]:
    import datetime
    import math

    rows = [((datetime.date(2020, 1, 1) + datetime.timedelta(days=i)).isoformat(),
             round(10 + 5 * math.sin(i / 7), 3), round(i % 7 / 7, 3)) for i in range(200)]
    return [f"data.path={write_csv(folder / 'series.csv', ['date', 'level', 'weekday'], rows)}",
            "data.target_columns=[level]", "task.lookback=8", "task.horizon=2"]


def _synthetic_sentences(folder: pathlib.Path) -> list[str]:
    names, places = ("Ann", "Bo", "Cy", "Di"), ("Rome", "Oslo", "Lima")
    lines = []
    for i in range(60):
        sentence = [(names[i % 4], "B-PER"), ("went", "O"), ("to", "O"), (places[i % 3], "B-LOC"),
                    (WORDS[i % len(WORDS)], "O")]
        lines += [f"{token} {tag}" for token, tag in sentence] + [""]
    path = folder / "sentences.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [f"data.path={path}", "task.max_tokens=8", "task.max_word_chars=6", "task.min_frequency=1"]


def _synthetic_text(folder: pathlib.Path) -> list[str]:
    text = " ".join(WORDS[(i * 3) % len(WORDS)] for i in range(600))
    path = folder / "text.txt"
    path.write_text(text, encoding="utf-8")
    return [f"data.path={path}", "data.format=text", "task.window=16"]


def _pair_splits(output_dir: pathlib.Path) -> list[str]:
    """The shipped English-French sample as a train file and a test file (`data.test_path`) of
    about a tenth of its sources (every translation of a source in the same file)."""
    import zlib

    from rnnflow.pipeline.config import load_config, resolve_path

    lines = pathlib.Path(resolve_path(load_config("translate", []).data.path)).read_text(encoding="utf-8").splitlines()
    test = [line for line in lines if zlib.crc32(line.split("\t")[0].encode()) % 10 == 0]
    train = [line for line in lines if zlib.crc32(line.split("\t")[0].encode()) % 10 != 0]
    paths = {"path": output_dir / "pairs_train.tsv", "test_path": output_dir / "pairs_test.tsv"}
    paths["path"].write_text("\n".join(train) + "\n", encoding="utf-8")
    paths["test_path"].write_text("\n".join(test) + "\n", encoding="utf-8")
    return [f"data.{field}={path}" for field, path in paths.items()]


def _synthetic_pairs(folder: pathlib.Path) -> list[str]:
    french = {"good": "bon", "bad": "mauvais", "film": "film", "plot": "intrigue", "actor": "acteur",
              "scene": "scène", "great": "génial", "dull": "ennuyeux", "story": "histoire", "end": "fin"}
    lines = []
    for i in range(80):
        words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(2 + i % 4)]
        lines.append(f"{' '.join(words)}.\t{' '.join(french[w] for w in words)} !")
    path = folder / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [f"data.path={path}", "task.max_source_tokens=12", "task.max_target_tokens=12", "task.min_frequency=1",
            "task.beam_size=2", "data.split.eval_percent=25"]


HARNESS = {
    "text_classification": Harness("sentiment", tuple(FAST_OVERRIDES), "quickstart.ipynb",
                                   synthetic=_synthetic_reviews),
    "forecasting": Harness("forecast", tuple(WEATHER_OVERRIDES), "forecasting.ipynb", synthetic=_synthetic_series),
    # CoNLL-2003's first 400 training sentences and 120 of its test file
    "sequence_labeling": Harness("ner", tuple(NER_OVERRIDES), "ner.ipynb", data=_conll_data,
                                 synthetic=_synthetic_sentences),
    # The built-in config's reviews as train, eval and test files
    "language_model": Harness("charlm", tuple(CHARLM_OVERRIDES), "charlm.ipynb", data=_review_splits,
                              synthetic=_synthetic_text),
    # The shipped English-French sample as train (hash eval split) and a test file split off by source
    "translation": Harness("translate", tuple(TRANSLATE_OVERRIDES), "translation.ipynb", data=_pair_splits,
                           synthetic=_synthetic_pairs),
}


class Run(NamedTuple):
    output_dir: pathlib.Path
    result: subprocess.CompletedProcess
    summary: dict


@pytest.fixture(scope="session")
def task_run(tmp_path_factory) -> Callable[[str], Run]:
    """task type -> its harness row's finished `rnnflow run` (run once per session, on first use)."""
    runs: dict[str, Run] = {}

    def finished(task_type: str) -> Run:
        if task_type not in runs:
            harness = HARNESS[task_type]
            output_dir = tmp_path_factory.mktemp(f"{task_type}_run")
            overrides = [*harness.overrides, *(harness.data(output_dir) if harness.data else [])]
            result = run_cli(["run", "--config", harness.config, "--output-dir", str(output_dir),
                              *[a for o in overrides for a in ("--set", o)]])
            summary_path = output_dir / "run_summary.json"
            runs[task_type] = Run(output_dir, result,
                                  json.loads(summary_path.read_text()) if summary_path.exists() else {})
        run = runs[task_type]
        assert run.result.returncode == 0, \
            f"rnnflow run failed:\n{run.result.stdout[-4000:]}\n{run.result.stderr[-4000:]}"
        return run

    return finished


@pytest.fixture(scope="session")
def sentiment_run(task_run) -> Run:
    return task_run("text_classification")


@pytest.fixture(scope="session")
def weather(task_run) -> Run:
    """Seattle weather, few epochs."""
    return task_run("forecasting")


@pytest.fixture(scope="session")
def ner_run(task_run) -> Run:
    return task_run("sequence_labeling")


@pytest.fixture(scope="session")
def charlm_run(task_run) -> Run:
    """The IMDB sample's reviews as text."""
    return task_run("language_model")


@pytest.fixture(scope="session")
def translate_run(task_run) -> Run:
    """The shipped English-French sample, a test file split off it by source."""
    return task_run("translation")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def real_model_server(model_base_path: str, model_name: str):
    """A real tensorflow_model_server on localhost serving `model_base_path`, as (REST model URL,
    gRPC address) once the model is available; skips where the binary is not on PATH."""
    if shutil.which("tensorflow_model_server") is None:
        pytest.skip("tensorflow_model_server is not on PATH (not installable here: no PyPI/Debian "
                    "package, no Docker); the graph-level checks and the localhost test double still run")
    rest, grpc_port = free_port(), free_port()
    server = subprocess.Popen(["tensorflow_model_server", f"--rest_api_port={rest}", f"--port={grpc_port}",
                               f"--model_name={model_name}", f"--model_base_path={model_base_path}"])
    url = f"http://127.0.0.1:{rest}/v1/models/{model_name}"
    try:
        for _ in range(60):
            try:
                status = json.loads(urllib.request.urlopen(url, timeout=5).read())
                if any(v["state"] == "AVAILABLE" for v in status["model_version_status"]):
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise AssertionError(f"tensorflow_model_server did not make {model_name} available on port {rest}")
        yield url, f"127.0.0.1:{grpc_port}"
    finally:
        server.terminate()
        server.wait(30)


def predict_with_model_server(model_base_path: str, model_name: str, body: dict) -> dict:
    """POSTs `body` to a real tensorflow_model_server's REST :predict; skips where there is none."""
    with real_model_server(model_base_path, model_name) as (url, _):
        request = urllib.request.Request(f"{url}:predict", data=json.dumps(body).encode())
        return json.loads(urllib.request.urlopen(request, timeout=30).read())


def write_spreadsheet_export(path, rows) -> None:
    """[text, label] rows as a spreadsheet export might write them: UTF-8 with a byte-order mark,
    semicolons, the first review over two lines (lines 2-3), a stray byte that is not UTF-8 in
    its second line, and a review with literal quotes."""
    rows = [list(row) for row in rows]
    rows[0][0] += "\nA second line."
    rows[1][0] = 'A 5" screen ' + rows[1][0]
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    data = open(path, "rb").read().replace(b"A second line.", b"A second line \xe9.", 1)
    open(path, "wb").write(data)


@pytest.fixture(scope="session")
def nights(tmp_path_factory):
    """Three nights into one output dir over `span-{SPAN}/reviews.csv`, training on the latest
    two spans (`data.rolling_spans: 2`) and warm-starting when it can. Every span is a
    spreadsheet export (`write_spreadsheet_export`, `data.delimiter: ;`). A new span arrives
    before each night:

    1. span 1, the IMDB sample: trained from scratch, blessed, pushed;
    2. span 2, the same export delivered again: trains on spans 1-2 from night 1's blessed
       model. The token vocabulary is rebuilt from the data every night and a warm start needs
       it unchanged: with `task.min_frequency: 1` the same reviews twice give the same one;
    3. span 3, the reviews with the labels shifted to 96% positive, and the drift gate set to
       fail: it stops before training (so night 3 never reaches its warm start) and pushes nothing.

    Returns the output dir, the 100 sample rows and per night (CompletedProcess, run summary).
    """
    root = tmp_path_factory.mktemp("nights")
    with open(imdb_sample_path(), encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    spans = {1: rows, 2: rows, 3: [(text, "1" if i % 25 else "0") for i, (text, _) in enumerate(rows)]}
    output_dir = root / "out"
    common = ["--config", "sentiment", "--output-dir", str(output_dir), "--set", "validation.schema=previous",
              "--set", f"data.path={root}/span-{{SPAN}}/reviews.csv", "--set", "data.delimiter=;",
              "--set", "data.rolling_spans=2", "--set", "training.warm_start=prefer",
              "--set", "task.min_frequency=1", *[a for o in FAST_OVERRIDES for a in ("--set", o)]]
    results = []
    for night, extra in ((1, []), (2, []), (3, ["--set", "validation.drift.action=fail"])):
        (root / f"span-{night}").mkdir()
        write_spreadsheet_export(root / f"span-{night}" / "reviews.csv", spans[night])
        result = run_cli(["run", *common, *extra])
        results.append((result, json.loads((output_dir / "run_summary.json").read_text())))
    return output_dir, rows, results



# ---------------------------------------------------------------------------
# Two workers (`make test` runs pytest-xdist with --dist loadgroup). Each test is marked with the
# group it belongs in: the harness run it reads (or the nights), else its module, so each shared
# run and module fixture is built on one worker. The lock keeps pytest 8: pytest-xdist 3.8 puts
# the group in `item._nodeid`, which pytest 9 ignores (tests/test_test_workers.py checks it).
# ---------------------------------------------------------------------------

RUN_FIXTURES = {"sentiment_run": "text_classification", "weather": "forecasting", "ner_run": "sequence_labeling",
                "charlm_run": "language_model", "translate_run": "translation", "nights": "nights"}
NOTEBOOK_TASKS = {harness.notebook: task_type for task_type, harness in HARNESS.items()}


def run_group(item) -> str | None:
    """The shared run a test reads, by fixture or, for a test that asks `task_run` for its task
    parameter's run (conformance, notebooks), by that parameter."""
    params = getattr(getattr(item, "callspec", None), "params", {}) if "task_run" in item.fixturenames else {}
    for value in params.values():
        if not isinstance(value, str):
            continue
        if value in HARNESS:
            return value
        if value in NOTEBOOK_TASKS:
            return NOTEBOOK_TASKS[value]
    return next((group for name, group in RUN_FIXTURES.items() if name in item.fixturenames), None)


def pytest_itemcollected(item):
    item.add_marker(pytest.mark.xdist_group(run_group(item) or item.module.__name__))
