"""`rnnflow run --config forecast` end to end: windowed examples, train-only statistics,
blessing against persistence, the test report, and the serving contract.

Two pipeline runs back these tests: the default weather config (few epochs) and a
constant two-target series, which no model can forecast better than persistence.
"""

import glob
import json
import os
import textwrap

import numpy as np
import pandas as pd
import pytest

from conftest import last_window_request, predict_with_model_server, run_cli, run_forecast, run_fresh

pytestmark = pytest.mark.e2e

COMPONENTS = ["TimeSeriesExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "AnomalyGate",
              "previous_statistics_resolver", "DriftGate", "Transform", "latest_blessed_model_resolver", "Trainer",
              "Evaluator", "ServingValidator", "Pusher", "ForecastReport", "DriftBaselinePublish"]


def artifact_dir(output_dir, component, output):
    found = glob.glob(str(output_dir / "pipeline_root" / component / output / "*"))
    assert len(found) == 1, found
    return found[0]


def test_run_beats_persistence_and_reports_both(weather):
    output_dir, result, summary = weather
    assert summary["status"] == "succeeded" and summary["blessed"] is True
    names = [c["name"] for c in summary["components"]]  # topological order
    assert sorted(names) == sorted(COMPONENTS) and names[0] == "TimeSeriesExampleGen"
    assert names.index("Evaluator") < names.index("ForecastReport")
    # Serving validation scored eval windows through serving_default (columns read from the
    # examples' features) and serving_examples alike, and timed them.
    validation = summary["serving_validation"]
    assert validation["problems"] == [] and validation["text_ops"] == []
    assert validation["agreement"]["examples"] > 0
    assert max(validation["agreement"]["max_abs_difference"].values()) <= 1e-4
    assert validation["latency"]["batch_64"]["p50_ms"] > 0
    # Training/serving skew: the Trainer's model on TFT's transform, in original units, against
    # serving_default on the same raw windows.
    assert validation["skew"]["examples"] == validation["agreement"]["examples"]
    assert validation["skew"]["outputs"]["forecast"]["within_tolerance"]
    metrics = summary["metrics"]
    baselines = ("baseline_persistence_mae", "baseline_seasonal_naive_mae", "baseline_linear_mae",
                 "baseline_climatology_mae")
    for name in ("mae", "rmse", "smape", *baselines, "baseline_persistence_rmse", "baseline_linear_rmse",
                 "skill", "skill_over_persistence", "mae_h1", "rmse_h7", "smape_h7"):
        assert metrics[name] is not None, name
    # Blessed: the model beats every baseline, the linear map fitted on the train windows included.
    assert metrics["best_baseline_mae"] == pytest.approx(min(metrics[b] for b in baselines))
    assert metrics["mae"] < metrics["best_baseline_mae"]
    assert metrics["skill"] == pytest.approx(1 - metrics["mae"] / metrics["best_baseline_mae"], rel=1e-6)
    assert metrics["skill_over_persistence"] == pytest.approx(
        1 - metrics["mae"] / metrics["baseline_persistence_mae"], rel=1e-6)
    assert metrics["example_count"] == summary["input"]["details"]["splits"]["eval"]["windows"]
    # The test split is reported separately, with the same metrics.
    test = summary["test_metrics"]
    assert summary["test_windows"] == summary["input"]["details"]["splits"]["test"]["windows"]
    assert test["mae"] != metrics["mae"] and all(test[b] is not None for b in baselines)
    assert "eval metrics:" in result.stdout and "test metrics:" in result.stdout
    assert "mae_h3" not in result.stdout  # per-step values stay in the JSON
    with open(summary["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_example_gen_records_splits_and_never_leaks(weather, weather_config):
    import tensorflow as tf

    from rnnflow.components.forecasting.schema import WINDOW_END_TIME, future_feature
    from rnnflow.pipeline.summary import MetadataReader, custom_property

    output_dir, _, summary = weather
    reader = MetadataReader(str(output_dir / "metadata.sqlite"), "forecast")
    examples = reader.outputs(reader.latest_execution("TimeSeriesExampleGen"))["examples"][0]
    horizon, day = weather_config.task.horizon, 86400
    target_times = {}
    for split in ("train", "eval", "test"):
        recorded = json.loads(custom_property(examples, f"split_{split}"))
        assert recorded == summary["input"]["details"]["splits"][split]
        files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
        records = [tf.train.Example.FromString(r.numpy())
                   for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        assert len(records) == recorded["windows"] == custom_property(examples, f"{split}_windows")
        ends = np.array([r.features.feature[WINDOW_END_TIME].int64_list.value[0] for r in records])
        assert all(len(r.features.feature[future_feature("temp_max")].float_list.value) == horizon
                   for r in records)
        target_times[split] = (ends.min() + day, ends.max() + horizon * day)
    assert target_times["train"][1] < target_times["eval"][0]
    assert target_times["eval"][1] < target_times["test"][0]


def test_normalization_statistics_are_the_train_rows_mean_and_std(weather, weather_config):
    import tensorflow as tf
    import tensorflow_transform as tft

    from rnnflow.components.forecasting import series as series_lib
    from rnnflow.components.forecasting.schema import TARGET_MEAN, TARGET_STD, WINDOW

    output_dir, _, _ = weather
    series = series_lib.read_series(weather_config)
    plan = series_lib.plan_windows(series, weather_config)
    train_inputs = sorted({r for w in plan["train"] for r in range(w.start, w.start + weather_config.task.lookback)})
    assert train_inputs == list(range(len(train_inputs)))  # the head of the series, nothing after it
    expected_mean = series.values[train_inputs].mean(axis=0)
    expected_std = series.values[train_inputs].std(axis=0)

    transform = tft.TFTransformOutput(artifact_dir(output_dir, "Transform", "transform_graph"))
    lookback = weather_config.task.lookback
    raw = {c: tf.constant([[0.0] * lookback, [1.0] * lookback]) for c in series.columns}
    raw["window_end_time"] = tf.constant([[1_400_000_000], [1_400_000_000]], tf.int64)
    transformed = transform.transform_features_layer()(raw)
    window = transformed[WINDOW].numpy()
    z0, z1 = window[0, 0, :len(series.columns)], window[1, 0, :len(series.columns)]
    std = 1 / (z1 - z0)
    np.testing.assert_allclose(std, expected_std, rtol=1e-4)
    np.testing.assert_allclose(-z0 * std, expected_mean, rtol=1e-4)
    target = series.columns.index("temp_max")
    np.testing.assert_allclose(transformed[TARGET_MEAN].numpy()[0], [expected_mean[target]], rtol=1e-5)
    np.testing.assert_allclose(transformed[TARGET_STD].numpy()[0], [expected_std[target]], rtol=1e-5)


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf  # only TensorFlow: no rnnflow, TFX or Keras imports
    model_dir, request = sys.argv[1], json.loads(sys.argv[2])
    model = tf.saved_model.load(model_dir)
    inputs = {k: tf.constant(v, tf.int64 if k == "window_end_time" else tf.float32) for k, v in request.items()}
    forecast = model.signatures["serving_default"](**inputs)["forecast"].numpy()
    example = tf.train.Example(features=tf.train.Features(feature={
        k: (tf.train.Feature(int64_list=tf.train.Int64List(value=[v[0]])) if k == "window_end_time" else
            tf.train.Feature(float_list=tf.train.FloatList(value=v[0]))) for k, v in request.items()}))
    from_examples = model.signatures["serving_examples"](
        examples=tf.constant([example.SerializeToString()]))["forecast"].numpy()
    ops = {n.op for f in model.signatures["serving_default"].graph.as_graph_def().library.function
           for n in f.node_def}
    print(json.dumps({"forecast": forecast.tolist(), "from_examples": from_examples.tolist(),
                      "cudnn_ops": sorted(o for o in ops if "Cudnn" in o)}))
""")


def serve(model_dir, request, script=SERVE_SCRIPT):
    """Runs `script` on the SavedModel and the JSON request in a fresh process; its last line, parsed."""
    return run_fresh(script, model_dir, json.dumps(request))


def test_pushed_model_forecasts_raw_windows_in_original_units(weather, weather_config):
    _, _, summary = weather
    response = serve(summary["pushed_model"], last_window_request(weather_config))
    forecast = np.array(response["forecast"])
    assert forecast.shape == (1, weather_config.task.horizon, 1)
    # Late December in Seattle: degrees Celsius, not z-scores.
    assert 0.0 < forecast.mean() < 15.0
    np.testing.assert_allclose(response["from_examples"], forecast, rtol=1e-5)
    assert response["cudnn_ops"] == []


BAD_REQUEST_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    good = {k: np.array(v, np.int64 if k == "window_end_time" else np.float32)
            for k, v in json.loads(sys.argv[2]).items()}
    def error(**changes):
        inputs = {k: tf.constant(changes.get(k, v)) for k, v in good.items()}
        try:
            model.signatures["serving_default"](**inputs)
        except tf.errors.InvalidArgumentError as e:
            return [line for line in e.message.splitlines() if "assertion failed" in line][0]
        return "accepted"
    long, short = np.ones([1, 40], np.float32), np.ones([1, 20], np.float32)
    inf, nan = good["wind"].copy(), good["temp_min"].copy()
    inf[0, 3], nan[0, 5] = np.inf, np.nan
    print(json.dumps({"long": error(temp_max=long), "short": error(wind=short),
                      "rows": error(wind=np.concatenate([good["wind"]] * 2)),
                      "inf": error(wind=inf), "nan": error(temp_min=nan),
                      "rank": error(wind=good["wind"][0])}))
""")


def test_model_metadata_declares_each_input_window_length(weather, weather_config):
    """TF Serving's model metadata (the SignatureDef) tells a client the window length; the graph
    still checks what is sent (the test below)."""
    from tensorflow.core.protobuf import saved_model_pb2

    _, _, summary = weather
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(open(os.path.join(summary["pushed_model"], "saved_model.pb"), "rb").read())
    inputs = saved.meta_graphs[0].signature_def["serving_default"].inputs
    shapes = {name: [d.size for d in info.tensor_shape.dim] for name, info in inputs.items()}
    lookback = weather_config.task.lookback
    assert shapes and all(shape == ([-1] if name == "window_end_time" else [-1, lookback])
                          for name, shape in shapes.items()), shapes


def test_serving_rejects_wrong_lengths_and_non_finite_values_naming_the_input(weather, weather_config):
    _, _, summary = weather
    out = serve(summary["pushed_model"], last_window_request(weather_config), script=BAD_REQUEST_SCRIPT)
    lookback = weather_config.task.lookback  # auto: 30 days
    assert 20 < lookback < 40
    assert f"input `temp_max` has 40 steps; this model takes {lookback}" in out["long"]
    assert f"input `wind` has 20 steps; this model takes {lookback}" in out["short"]
    assert "input `wind` has 2 rows; input `precipitation` has 1" in out["rows"]
    assert "input `wind` has a NaN or infinite value at row 0, step 3" in out["inf"]
    assert "input `temp_min` has a NaN or infinite value at row 0, step 5" in out["nan"]
    assert f"input `wind` must be [batch, {lookback}]" in out["rank"]


def test_tensorflow_model_server_round_trip(weather, weather_config):
    _, _, summary = weather
    response = predict_with_model_server(os.path.dirname(summary["pushed_model"]), "forecast",
                                         {"inputs": last_window_request(weather_config)})
    assert np.array(response["outputs"]).shape == (1, weather_config.task.horizon, 1)


@pytest.fixture(scope="module")
def constant(tmp_path_factory):
    directory = tmp_path_factory.mktemp("constant")
    times = pd.date_range("2024-01-01", periods=300, freq="h")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "level": 20.0, "offset": -3.5,
                          "noise": np.random.default_rng(0).normal(size=300)})
    frame.loc[50, "level"] = np.nan  # filled by interpolation
    frame.to_csv(directory / "constant.csv", index=False)
    output_dir = directory / "run"
    result, summary = run_forecast(
        output_dir, f"data.path={directory / 'constant.csv'}", "data.time_column=time",
        "data.target_columns=[level, offset]", "data.frequency=1h", "data.on_bad_rows=interpolate",
        "task.lookback=12", "task.horizon=3", "task.calendar_features=false", "training.epochs=8")
    return output_dir, result, summary


def test_constant_series_forecasts_the_constant_and_is_not_blessed(constant):
    output_dir, result, summary = constant
    # Persistence is exact on a constant series, so nothing can beat it: exit 3, nothing pushed.
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["status"] == "not_blessed" and summary["pushed_model"] is None
    assert summary["metrics"]["baseline_persistence_mae"] == 0.0
    assert any("filled (interpolate)" in w for w in summary["input"]["warnings"])
    # The input check saw it coming.
    assert any("target 'level' is constant (20) in the train split" in w for w in summary["input"]["warnings"])
    assert "warning: target 'offset' is constant (-3.5)" in result.stdout
    model_dir = os.path.join(artifact_dir(output_dir, "Trainer", "model"), "Format-Serving")
    request = {"level": [[20.0] * 12], "offset": [[-3.5] * 12], "noise": [[0.0] * 12]}
    forecast = np.array(serve(model_dir, request)["forecast"])
    assert forecast.shape == (1, 3, 2)
    np.testing.assert_allclose(forecast[0, :, 0], 20.0, atol=0.05)
    np.testing.assert_allclose(forecast[0, :, 1], -3.5, atol=0.05)


def test_bad_series_fails_before_any_component_with_the_row_named(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("date,x\n2024-01-01,1\n2024-01-02,2\n2024-01-02,3\n")
    result = run_cli(["run", "--config", "forecast", "--output-dir", str(tmp_path / "out"),
                      "--set", f"data.path={path}", "--set", "data.target_columns=[x]"])
    assert result.returncode == 1
    assert "duplicate timestamps in date: dup.csv line 4" in result.stdout
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("DataError")
