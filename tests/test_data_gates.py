"""Data gates across runs: the drift gate against the last accepted run's statistics, and
validation against the previous run's schema."""

import csv
import json

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from conftest import FAST_OVERRIDES, imdb_sample_path, run_cli, write_csv
from rnnflow.components.data_gates import describe_drift, measure_drift


def _stats(frame: pd.DataFrame):
    return tfdv.generate_statistics_from_dataframe(frame)


def test_drift_is_measured_per_feature_by_type():
    before = pd.DataFrame({"label": ["pos", "neg"] * 50, "price": [float(i % 10) for i in range(100)],
                           "text": [f"t{i}" for i in range(100)]})
    after = pd.DataFrame({"label": ["pos"] * 90 + ["neg"] * 10, "price": [float(i % 10) + 50 for i in range(100)],
                          "text": [f"u{i}" for i in range(100)]})
    schema = tfdv.infer_schema(_stats(before))
    report = measure_drift(_stats(after), _stats(before), schema, excluded=["text"],
                           categorical_threshold=0.2, numeric_threshold=0.2)
    label, price = report["features"]["label"], report["features"]["price"]
    assert label["measure"] == "L-infinity distance" and label["value"] == pytest.approx(0.4)
    assert price["measure"] == "Jensen-Shannon divergence" and price["value"] > 0.9
    assert report["drifted"] == ["label", "price"] and "text" not in report["features"]
    assert describe_drift(report)[0] == "feature 'label': L-infinity distance 0.4 > threshold 0.2"
    same = measure_drift(_stats(before), _stats(before), schema, excluded=["text"],
                         categorical_threshold=0.2, numeric_threshold=0.2)
    assert same["drifted"] == [] and same["features"]["label"]["value"] == 0


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    """Night 1 accepts the IMDB sample; night 2 brings the same reviews with the labels
    shifted to 90% positive, into the same output dir, with the drift gate set to fail."""
    root = tmp_path_factory.mktemp("nights")
    with open(imdb_sample_path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    night1 = write_csv(root / "night1.csv", ["text", "label"], [[r["text"], r["label"]] for r in rows])
    night2 = write_csv(root / "night2.csv", ["text", "label"],
                       [[r["text"], "1" if i % 10 else "0"] for i, r in enumerate(rows)])
    output_dir = root / "out"
    common = ["--config", "sentiment", "--output-dir", str(output_dir), "--set", "validation.schema=previous",
              *[a for o in FAST_OVERRIDES for a in ("--set", o)]]
    first = run_cli(["run", *common, "--set", f"data.path={night1}"])
    second = run_cli(["run", *common, "--set", f"data.path={night2}", "--set", "validation.drift.action=fail"])
    return output_dir, first, second


def test_a_drifted_night_stops_at_the_drift_gate_with_a_readable_report(two_nights):
    output_dir, first, second = two_nights
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert second.returncode == 1, second.stdout[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    states = {c["name"]: c["state"] for c in summary["components"]}
    assert states["DriftGate"] == "failed" and states["Transform"] == states["Pusher"] == "not_run"
    assert "feature 'label'" in summary["error"] and "threshold 0.2" in summary["error"]
    assert "feature 'label'" in second.stdout
    # Nothing pushed by night 2: the only version is night 1's.
    previous = json.loads((output_dir / "run_summary.previous.json").read_text())
    versions = list((output_dir / "serving" / "sentiment").iterdir())
    assert [str(v) for v in versions] == [previous["pushed_model"]]
    # Night 1 had no baseline to compare with, and said so.
    assert previous["drift"]["previous"] is None and previous["drift"]["drifted"] == []


def test_the_second_night_is_validated_against_the_first_nights_schema(two_nights):
    output_dir, _, _ = two_nights
    choices = sorted((output_dir / "pipeline_root" / "SchemaChoice" / "schema").iterdir(), key=lambda p: int(p.name))
    assert len(choices) == 2
    assert (choices[1] / "schema.pbtxt").read_text() == (choices[0] / "schema.pbtxt").read_text()


def test_schema_command_writes_the_last_validated_schema(two_nights, tmp_path):
    output_dir, _, _ = two_nights
    target = tmp_path / "curated.pbtxt"
    result = run_cli(["schema", "--output-dir", str(output_dir), "--output", str(target)], timeout=120)
    assert result.returncode == 0, result.stderr
    schema = tfdv.load_schema_text(str(target))
    assert {f.name for f in schema.feature} == {"text", "label"}
    assert f"validation.schema={target}" in result.stdout
    missing = run_cli(["schema", "--output-dir", str(tmp_path / "nothing")], timeout=120)
    assert missing.returncode == 2 and "no schema under" in missing.stderr
