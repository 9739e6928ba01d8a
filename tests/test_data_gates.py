"""Runs that build on earlier runs in the same output dir (conftest's `nights`): the drift gate
against the last accepted run's statistics, validation against the previous run's schema, and
warm starts from the last blessed model."""

import json

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from conftest import run_cli
from rnnflow.components.gates.data_gates import describe_drift, measure_drift, without_value_domains
from rnnflow.components.training.trainer import incompatibility
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


def test_a_kept_schema_lets_free_text_take_new_values():
    """TFDV gives a string feature with few distinct values a domain; kept for later runs,
    every new review would then be an anomaly."""
    before = pd.DataFrame({"text": ["a film", "a play", "a show"] * 10, "label": ["pos", "neg", "pos"] * 10})
    inferred = tfdv.infer_schema(_stats(before))
    assert tfdv.get_domain(inferred, "text").value  # the texts became a closed set
    kept = without_value_domains(inferred, ["text"])
    after = _stats(pd.DataFrame({"text": ["a new review"] * 5, "label": ["maybe"] * 5}))
    anomalies = tfdv.validate_statistics(after, kept).anomaly_info
    assert set(anomalies) == {"label"}  # the label domain still holds
    assert [d.name for d in kept.string_domain] == ["label"]


def test_each_night_ingests_the_newest_span_and_trains_on_the_latest_two(nights):
    _, _, results = nights
    (first, one), (second, two), (_, three) = results
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert one["spans"] == [1] and two["spans"] == [1, 2]
    for night, summary in ((1, one), (2, two), (3, three)):
        assert [f.rsplit("/", 2)[1] for f in summary["input"]["files"]] == [f"span-{night}"]
    assert "spans: 1, 2" in second.stdout


def test_a_later_night_warm_starts_from_the_last_blessed_model(nights):
    output_dir, _, results = nights
    (_, one), (second, two), _ = results
    assert one["training"]["warm_start"] == {"mode": "prefer", "used": False, "from": None,
                                             "reason": "there is no blessed model yet"}
    warm = two["training"]["warm_start"]
    assert warm["used"] is True and warm["mode"] == "prefer"
    assert warm["from"].startswith(str(output_dir / "pipeline_root" / "Trainer" / "model"))
    assert "warm start: from" in second.stdout
    assert two["pushed_model"] and two["pushed_model"] != one["pushed_model"]


def test_a_drifted_night_stops_at_the_drift_gate_with_a_readable_report(nights):
    output_dir, _, results = nights
    _, (_, two), (third, summary) = results
    assert third.returncode == 1, third.stdout[-3000:]
    states = {c["name"]: c["state"] for c in summary["components"]}
    assert states["DriftGate"] == "failed" and states["Transform"] == states["Pusher"] == "not_run"
    assert "feature 'label'" in summary["error"] and "threshold 0.2" in summary["error"]
    assert "feature 'label'" in third.stdout
    # Nothing pushed by night 3: the newest version is night 2's.
    assert summary["pushed_model"] is None
    versions = sorted((output_dir / "serving" / "sentiment").iterdir(), key=lambda p: int(p.name))
    assert str(versions[-1]) == two["pushed_model"]
    # Night 2 compared its span with night 1's and found nothing.
    assert two["drift"]["previous"] is not None and two["drift"]["drifted"] == []


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

    from rnnflow.components.common.run_facts import FACTS_FILE
    from rnnflow.components.training.trainer import WarmStartError, save_weights, warm_start

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
