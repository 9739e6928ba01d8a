"""Runs that build on earlier runs in the same output dir: the drift gate against the last
accepted run's statistics, validation against the previous run's schema, and warm starts
from the last blessed model."""

import csv
import json

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from conftest import FAST_OVERRIDES, imdb_sample_path, run_cli, write_csv
from rnnflow.components.data_gates import describe_drift, measure_drift
from rnnflow.components.training import incompatibility
from rnnflow.pipeline.config import load_config


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
def nights(tmp_path_factory):
    """Three runs into one output dir over `span-{SPAN}/reviews.csv`. Night 1 ingests span 1
    (the IMDB sample); night 2 finds no newer span, ingests span 1 again and warm-starts from
    night 1's blessed model; before night 3, span 2 arrives: the same reviews with the labels
    shifted to 90% positive, and the drift gate is set to fail."""
    root = tmp_path_factory.mktemp("nights")
    with open(imdb_sample_path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for span in ("span-1", "span-2"):
        (root / span).mkdir()
    write_csv(root / "span-1" / "reviews.csv", ["text", "label"], [[r["text"], r["label"]] for r in rows])
    output_dir = root / "out"
    common = ["--config", "sentiment", "--output-dir", str(output_dir), "--set", "validation.schema=previous",
              "--set", f"data.path={root}/span-{{SPAN}}/reviews.csv", *[a for o in FAST_OVERRIDES for a in ("--set", o)]]
    first = run_cli(["run", *common])
    second = run_cli(["run", *common, "--set", "training.warm_start=prefer"])
    second_summary = json.loads((output_dir / "run_summary.json").read_text())
    write_csv(root / "span-2" / "reviews.csv", ["text", "label"],
              [[r["text"], "1" if i % 10 else "0"] for i, r in enumerate(rows)])
    third = run_cli(["run", *common, "--set", "validation.drift.action=fail"])
    return output_dir, first, (second, second_summary), third


def test_a_later_night_warm_starts_from_the_last_blessed_model(nights):
    output_dir, first, (second, summary), _ = nights
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert second.returncode == 0, second.stdout[-3000:]
    assert summary["spans"] == [1]
    warm = summary["training"]["warm_start"]
    assert warm["used"] is True and warm["mode"] == "prefer"
    assert warm["from"].startswith(str(output_dir / "pipeline_root" / "Trainer" / "model"))
    assert "warm start: from" in second.stdout


def test_a_drifted_night_stops_at_the_drift_gate_with_a_readable_report(nights):
    output_dir, first, _, second = nights
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert second.returncode == 1, second.stdout[-3000:]
    summary = json.loads((output_dir / "run_summary.json").read_text())
    states = {c["name"]: c["state"] for c in summary["components"]}
    assert states["DriftGate"] == "failed" and states["Transform"] == states["Pusher"] == "not_run"
    assert "feature 'label'" in summary["error"] and "threshold 0.2" in summary["error"]
    assert "feature 'label'" in second.stdout
    assert "span-2" in " ".join(summary["input"]["files"])  # the newest span was checked and ingested
    # Nothing pushed by night 3: the newest version is night 2's.
    previous = json.loads((output_dir / "run_summary.previous.json").read_text())
    versions = sorted((output_dir / "serving" / "sentiment").iterdir(), key=lambda p: int(p.name))
    assert str(versions[-1]) == previous["pushed_model"]
    # Night 2 compared with night 1 and found nothing.
    assert previous["drift"]["previous"] is not None and previous["drift"]["drifted"] == []


def test_later_nights_are_validated_against_the_first_nights_schema(nights):
    output_dir = nights[0]
    choices = sorted((output_dir / "pipeline_root" / "SchemaChoice" / "schema").iterdir(), key=lambda p: int(p.name))
    assert len(choices) >= 2
    assert {(c / "schema.pbtxt").read_text() for c in choices} == {(choices[0] / "schema.pbtxt").read_text()}


def test_schema_command_writes_the_last_validated_schema(nights, tmp_path):
    output_dir = nights[0]
    target = tmp_path / "curated.pbtxt"
    result = run_cli(["schema", "--output-dir", str(output_dir), "--output", str(target)], timeout=120)
    assert result.returncode == 0, result.stderr
    schema = tfdv.load_schema_text(str(target))
    assert {f.name for f in schema.feature} == {"text", "label"}
    assert f"validation.schema={target}" in result.stdout
    missing = run_cli(["schema", "--output-dir", str(tmp_path / "nothing")], timeout=120)
    assert missing.returncode == 2 and "no schema under" in missing.stderr


def _facts(**changes):
    config = load_config("sentiment")
    facts = {"config": config.to_dict(), "compatibility": {"token_vocabulary": "abc", "classes": ["0", "1"]}}
    for key, value in changes.items():
        section, field = key.split("__")
        facts[section][field] = value
    return config, facts


def test_warm_start_needs_the_same_model_task_settings_and_vocabulary():
    config, facts = _facts()
    same = {"token_vocabulary": "abc", "classes": ["0", "1"]}
    assert incompatibility(facts, config, same) is None
    assert incompatibility(None, config, same) == "it was trained before rnnflow recorded what warm starts need"
    assert incompatibility(facts, config, {**same, "token_vocabulary": "def"}) == "the token vocabulary changed"
    _, older = _facts()
    older["config"]["model"]["units"] = 128
    assert incompatibility(older, config, same) == f"model.units changed (128 -> {config.model.units})"


def test_warm_start_loads_weights_or_says_why_not(tmp_path):
    import keras
    import numpy as np

    from rnnflow.components.input_report import FACTS_FILE
    from rnnflow.components.training import WarmStartError, save_weights, warm_start

    def model():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    config = load_config("sentiment", ["training.warm_start=prefer"])
    compatibility = {"token_vocabulary": "abc"}
    base = model()
    serving = tmp_path / "model" / "Format-Serving"
    serving.mkdir(parents=True)
    save_weights(base, str(serving))
    (tmp_path / "model" / FACTS_FILE).write_text(json.dumps({"config": config.to_dict(),
                                                             "compatibility": compatibility}))
    fn_args = type("FnArgs", (), {"base_model": str(serving)})()
    fresh = model()
    record = warm_start(fresh, fn_args, config, compatibility)
    assert record["used"] is True
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), base.get_weights()))
    record = warm_start(model(), fn_args, config, {"token_vocabulary": "new"})
    assert record == {"mode": "prefer", "used": False, "from": str(tmp_path / "model"),
                      "reason": "the token vocabulary changed"}
    required = load_config("sentiment", ["training.warm_start=require"])
    with pytest.raises(WarmStartError, match="training.warm_start: require, .* the token vocabulary changed"):
        warm_start(model(), fn_args, required, {"token_vocabulary": "new"})
    nothing = type("FnArgs", (), {"base_model": None})()
    assert warm_start(model(), nothing, config, compatibility)["reason"] == "there is no blessed model yet"
