"""Forecasting input: cleaning policies, windowing, the chronological split, baselines."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from rnnflow.components.forecasting import baselines, metrics, series as series_lib
from rnnflow.components.forecasting.schema import OWNED_ROWS, WINDOW_END_TIME, future_feature
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline.config import ConfigError, load_config


def write_csv(tmp_path, rows, name="series.csv", header="time,a,b"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


def hourly(n, start="2024-01-01 00:00", a=lambda i: i, b=lambda i: 100 + i):
    times = pd.date_range(start, periods=n, freq="h")
    return [f"{t:%Y-%m-%d %H:%M},{a(i)},{b(i)}" for i, t in enumerate(times)]


def config_for(path, *overrides):
    return load_config("forecast", [f"data.path={path}", "data.time_column=time", "data.target_columns=[a]",
                                    "data.frequency=null", "task.lookback=3", "task.horizon=2",
                                    "data.split.train_fraction=0.5", "data.split.eval_fraction=0.25",
                                    *overrides])


def test_windows_of_a_tiny_series_are_hand_checkable(tmp_path):
    from rnnflow.components.forecasting.ingest import window_example

    config = config_for(write_csv(tmp_path, hourly(20)))
    series = series_lib.read_series(config)
    assert series.columns == ["a", "b"] and series.frequency_seconds == 3600
    plan = series_lib.plan_windows(series, config)
    # rows 0-9 train, 10-14 eval, 15-19 test; a window spans lookback 3 + horizon 2 = 5 rows.
    assert [w.start for w in plan["train"]] == [0, 1, 2, 3, 4, 5]
    assert [w.start for w in plan["eval"]] == [10]
    assert [w.start for w in plan["test"]] == [15]

    example = window_example(series, plan["train"][2], lookback=3, horizon=2)
    features = example.features.feature
    assert list(features["a"].float_list.value) == [2, 3, 4]
    assert list(features["b"].float_list.value) == [102, 103, 104]
    assert list(features[future_feature("a")].float_list.value) == [5, 6]
    assert future_feature("b") not in features  # b is an input only
    assert features[WINDOW_END_TIME].int64_list.value[0] == pd.Timestamp("2024-01-01 04:00").value // 10**9
    assert features[OWNED_ROWS].int64_list.value[0] == 1
    # The one feature spec every reader uses parses what the ExampleGen writes.
    from rnnflow.components.forecasting.features import window_feature_spec

    parsed = tf.io.parse_single_example(example.SerializeToString(), window_feature_spec(
        series.columns, 3, targets=series.targets, horizon=2, owned=True))
    assert parsed["b"].numpy().tolist() == [102, 103, 104] and parsed[future_feature("a")].numpy().tolist() == [5, 6]
    assert set(parsed) == set(features)


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_each_train_input_row_is_owned_exactly_once(tmp_path, stride):
    config = config_for(write_csv(tmp_path, hourly(40)), f"task.stride={stride}")
    plan = series_lib.plan_windows(series_lib.read_series(config), config)
    owned = [row for w in plan["train"] for row in range(w.start, w.start + w.owned)]
    inputs = {row for w in plan["train"] for row in range(w.start, w.start + 3)}
    assert sorted(owned) == sorted(inputs)  # no row twice, none missing
    assert all(w.owned == 0 for split in ("eval", "test") for w in plan[split])
    assert [w.start for w in plan["train"]] == list(range(0, 20 - 5 + 1, stride))


def test_no_window_crosses_a_split_and_eval_test_targets_follow_all_train_targets():
    config = load_config("forecast")
    series = series_lib.read_series(config)
    config = series_lib.resolve_auto(config, series)
    plan = series_lib.plan_windows(series, config)
    bounds = series_lib.split_rows(series, config)
    lookback, horizon = config.task.lookback, config.task.horizon
    target_times = {}
    for split, windows in plan.items():
        first, end = bounds[split]
        assert all(first <= w.start and w.start + lookback + horizon <= end for w in windows)
        target_times[split] = [series.times[w.start + lookback + h] for w in windows for h in range(horizon)]
    assert max(target_times["train"]) < min(target_times["eval"])
    assert max(target_times["eval"]) < min(target_times["test"])
    # Eval/test inputs are after every train target too.
    assert series.times[plan["eval"][0].start] > max(target_times["train"])


def test_date_split(tmp_path):
    config = config_for(write_csv(tmp_path, hourly(48)), "data.split.eval_start=2024-01-02 00:00",
                        "data.split.test_start=2024-01-02T12:00:00")
    series = series_lib.read_series(config)
    assert series_lib.split_rows(series, config) == {"train": (0, 24), "eval": (24, 36), "test": (36, 48)}


def test_unsorted_rows_are_sorted_with_a_warning(tmp_path):
    rows = hourly(20)
    rows[3], rows[7] = rows[7], rows[3]
    series = series_lib.read_series(config_for(write_csv(tmp_path, rows)))
    assert list(series.column("a")) == list(range(20))
    assert any("not in time order" in w for w in series.warnings)


def test_duplicate_timestamps_fail_naming_the_line_or_keep_the_first(tmp_path):
    rows = hourly(20)
    rows.insert(5, rows[4].replace(",4,", ",999,"))
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"duplicate timestamps in time: series.csv line 7"):
        series_lib.read_series(config_for(path))
    series = series_lib.read_series(config_for(path, "data.on_bad_rows=ffill"))
    assert 999 not in series.column("a") and len(series.times) == 20
    assert any("duplicate" in w for w in series.warnings)


def test_missing_and_non_numeric_cells(tmp_path):
    rows = hourly(20)
    rows[4] = rows[4].replace(",4,", ",abc,")
    rows[8] = rows[8].replace(",8,", ",,")
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"2 missing or non-numeric cells: a at series.csv line 6: 'abc'; "
                                        r"a at series.csv line 10: empty"):
        series_lib.read_series(config_for(path))
    assert series_lib.read_series(config_for(path, "data.on_bad_rows=ffill")).column("a")[[4, 8]].tolist() == [3, 7]
    assert series_lib.read_series(config_for(path, "data.on_bad_rows=interpolate")).column("a")[[4, 8]].tolist() \
        == [4, 8]
    dropped = series_lib.read_series(config_for(path, "data.on_bad_rows=drop"))
    assert len(dropped.times) == 18
    assert dropped.segments() == [(0, 4), (4, 7), (7, 18)]


def test_nan_and_infinite_values_are_bad_cells(tmp_path):
    rows = hourly(20)
    rows[2] = rows[2].replace(",2,", ",nan,")
    rows[3] = rows[3].replace(",3,", ",inf,")
    with pytest.raises(DataError, match="2 missing or non-numeric cells"):
        series_lib.read_series(config_for(write_csv(tmp_path, rows)))


def test_gaps_fail_or_are_filled_or_split_the_windows(tmp_path):
    rows = hourly(30)
    del rows[10:13]  # 3 missing hours
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"3 missing time steps of 1h in 1 gaps: after series.csv line 11"):
        series_lib.read_series(config_for(path))
    filled = series_lib.read_series(config_for(path, "data.on_bad_rows=interpolate"))
    assert filled.column("a").tolist() == list(range(30))
    dropped = series_lib.read_series(config_for(path, "data.on_bad_rows=drop"))
    assert dropped.segments() == [(0, 10), (10, 27)]
    plan = series_lib.plan_windows(dropped, config_for(path, "data.on_bad_rows=drop"))
    starts = [w.start for w in plan["train"]]
    assert all(not (s < 10 < s + 5) for s in starts)  # no window spans the gap


def test_off_grid_timestamps_fail(tmp_path):
    rows = hourly(20)
    rows[5] = rows[5].replace(":00,", ":30,", 1)
    with pytest.raises(DataError, match=r"off the 1h grid.*series.csv line 7"):
        series_lib.read_series(config_for(write_csv(tmp_path, rows), "data.frequency=1h"))


def test_unreadable_time(tmp_path):
    rows = hourly(20)
    rows[3] = "yesterday" + rows[3][16:]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"unreadable times in time: series.csv line 5 \('yesterday'\)"):
        series_lib.read_series(config_for(path))
    assert len(series_lib.read_series(config_for(path, "data.on_bad_rows=drop")).times) == 19


def test_missing_target_column_is_named(tmp_path):
    path = write_csv(tmp_path, hourly(20))
    with pytest.raises(DataError, match=r"column 'OT' \(named in data\) is not in series.csv; columns: time, a, b"):
        series_lib.read_series(config_for(path, "data.target_columns=[OT]"))


def test_series_shorter_than_one_window(tmp_path):
    config = config_for(write_csv(tmp_path, hourly(4)))
    with pytest.raises(DataError, match=r"4 rows after cleaning, fewer than lookback \+ horizon = 5"):
        series_lib.plan_windows(series_lib.read_series(config), config)


def test_split_too_short_for_a_window_is_named(tmp_path):
    config = config_for(write_csv(tmp_path, hourly(16)))
    with pytest.raises(DataError, match=r"the eval split \(4 rows.*no complete window.*the longest task.lookback "
                                        r"that fits with task.horizon 2 is 2"):
        series_lib.plan_windows(series_lib.read_series(config), config)


def test_lookback_longer_than_the_train_split_names_the_longest_that_fits(tmp_path):
    config = config_for(write_csv(tmp_path, hourly(200)), "task.lookback=150")
    with pytest.raises(DataError, match=r"the train split \(100 rows.*lookback \+ horizon = 150 \+ 2 steps.*"
                                        r"the longest task.lookback that fits with task.horizon 2 is 98"):
        get_task("forecasting").preflight(config)


def test_horizon_longer_than_the_eval_split_is_named(tmp_path):
    config = config_for(write_csv(tmp_path, hourly(200)), "task.horizon=60")
    with pytest.raises(DataError, match=r"the eval split \(50 rows.*task.horizon 60 alone needs more than 50 rows"):
        get_task("forecasting").preflight(config)


@pytest.mark.parametrize("step, rows, horizon, expected", [
    (3600, 20_000, 96, 720),  # hourly: 30 days, the cap
    (3600, 1_000, 24, 250),  # hourly but short: a quarter of the train rows
    (86400, 1_022, 7, 30),  # daily: 30 days
    (86400, 1_022, 40, 80),  # daily, long horizon: 2 horizons
    (7 * 86400, 2_000, 4, 208),  # weekly: 4 yearly seasons
    (900, 50_000, 96, 720),  # 15 minutes: 30 days = 2880 steps, capped
])
def test_auto_lookback_follows_frequency_and_length(step, rows, horizon, expected):
    from rnnflow.components.forecasting.schema import auto_lookback

    assert auto_lookback(step, rows, horizon)[0] == expected


def test_auto_lookback_is_resolved_once_on_the_train_split_and_reported(tmp_path):
    path = write_csv(tmp_path, hourly(400))
    config = config_for(path, "task.lookback=auto")
    report = get_task("forecasting").preflight(config)
    assert report.details["task"]["lookback"] == 50  # 200 train rows / 4 (30 days of hours would be 720)
    assert report.details["splits"]["train"]["windows"] == 200 - 50 - 2 + 1
    resolved = get_task("forecasting").resolve_data_defaults(config, [], dataclasses.asdict(report))
    # 50 steps: the steps encoder, relative to the last value, with calendar features.
    assert resolved["values"] == {"task.lookback": 50, "task.encoder": "steps", "task.anchor": "last_value",
                                  "task.calendar_features": True, "task.linear_combination": False}
    # Predefined eval/test files take the lookback resolved on the train file, not their own.
    eval_path, test_path = (write_csv(tmp_path, hourly(120, start=start), name=f"{name}.csv")
                            for name, start in (("eval", "2024-02-01"), ("test", "2024-03-01")))
    train_only = config_for(path, "task.lookback=auto", f"data.eval_path={eval_path}", f"data.test_path={test_path}")
    report = get_task("forecasting").preflight(train_only)
    assert report.details["task"]["lookback"] == 100  # all 400 rows train
    assert report.details["splits"]["eval"]["windows"] == 120 - 100 - 2 + 1


def test_malformed_csv_row_names_the_file_and_line(tmp_path):
    rows = hourly(20)
    rows[2] += ",1,2,3"
    with pytest.raises(DataError, match=r"series.csv line 4: malformed row with 6 fields; the header has 3"):
        series_lib.read_series(config_for(write_csv(tmp_path, rows)))


def test_default_features_skip_text_columns_and_include_targets(tmp_path):
    rows = [f"{r},sunny" for r in hourly(20)]
    path = write_csv(tmp_path, rows, header="time,a,b,weather")
    series = series_lib.read_series(config_for(path, "data.feature_columns=[b]"))
    assert series.columns == ["b", "a"]
    series = series_lib.read_series(config_for(path))
    assert series.columns == ["a", "b"] and any("weather" in n for n in series.notes)
    assert not any("weather" in w for w in series.warnings)  # informational: not fatal under --strict-data


def test_column_names_must_work_as_serving_inputs(tmp_path):
    path = write_csv(tmp_path, hourly(20), header="time,a,temp (C)")
    with pytest.raises(DataError, match=r"'temp \(C\)' cannot name a TF Serving input"):
        series_lib.read_series(config_for(path))


@pytest.mark.parametrize("overrides, message", [
    (["data.target_columns=[]"], "data.target_columns: name at least one column"),
    (["data.split.train_fraction=0.9", "data.split.eval_fraction=0.1"], "leaves no test split"),
    (["data.split.eval_start=2024-01-01"], "set both eval_start and test_start"),
    (["data.split.eval_start=2024-02-01", "data.split.test_start=2024-01-01"], "must be before"),
    (["data.frequency=1 month"], "data.frequency: '1 month' is not a fixed step"),
    (["data.target_columns=[time]"], "'time' is the time column"),
    (["tuning.objective=val_accuracy"], "the forecasting task tunes on val_loss, not val_accuracy"),
    (["evaluation.metric=auc"], "evaluation.metric: unknown field"),
    (["task.encoder=steps", "task.anchor=revin"], "task.anchor: revin needs task.encoder: segments"),
    (["task.encoder=steps", "task.segment_length=4"], "task.segment_length: 4 needs task.encoder: segments"),
    (["task.encoder=steps", "task.linear_skip=true"], "task.linear_skip: True needs task.encoder: segments"),
    (["task.encoder=segments", "model.cell=mingru"], "model.cell: the segments encoder runs an lstm or gru"),
    (["task.encoder=segments", "task.calendar_features=true"], "task.calendar_features: the segments encoder"),
    (["task.encoder=segments", "task.calendar_features=false", "task.lookback=12", "task.segment_length=13"],
     "task.segment_length: 13 is longer than task.lookback 12"),
    (["task.encoder=segments", "task.calendar_features=false", "model.layers=2"],
     "model.layers: 2 does nothing for the segments encoder"),
    (["task.encoder=segments", "task.calendar_features=false", "model.bidirectional=true"],
     "model.bidirectional: True does nothing for the segments encoder"),
])
def test_config_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_for(write_csv(tmp_path, hourly(20)), *overrides)


def test_settings_the_auto_encoder_cannot_honour_are_named_once_it_is_resolved(tmp_path):
    """`task.encoder: auto` picks steps for a short lookback: revin (segments only) is then a
    config error at pre-flight, naming the field; a long lookback picks segments, where a
    stacked-encoder field is named."""
    path = write_csv(tmp_path, hourly(800))
    with pytest.raises(ConfigError, match="task.anchor: revin needs task.encoder: segments"):
        get_task("forecasting").preflight(config_for(path, "task.anchor=revin"))
    with pytest.raises(ConfigError, match="model.layers: 2 does nothing for the segments encoder"):
        get_task("forecasting").preflight(config_for(path, "task.lookback=auto", "model.layers=2"))
    with pytest.raises(ConfigError, match="task.linear_skip: true needs task.encoder: segments .*steps encoder"):
        get_task("forecasting").preflight(config_for(path, "task.linear_skip=true"))
    report = get_task("forecasting").preflight(config_for(path, "task.lookback=auto"))
    assert report.details["task"] == {"lookback": 100, "encoder": "segments", "anchor": "revin",
                                      "calendar_features": False, "linear_combination": True}


def test_baselines_by_hand():
    history = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])  # lookback 5, one target
    assert baselines.persistence_forecast(history, 3)[:, 0].tolist() == [5, 5, 5]
    # season 2: step h takes the value 2*ceil(h/2) steps before it.
    assert baselines.seasonal_naive_forecast(history, 5, season=2)[:, 0].tolist() == [4, 5, 4, 5, 4]
    assert baselines.seasonal_naive_forecast(history, 2, season=5)[:, 0].tolist() == [1, 2]
    # linear: last + (x - last) W; W picks the first lookback step's offset for step 1 and 0 for step 2.
    weights = np.zeros((5, 2))
    weights[0, 0] = 1.0
    assert baselines.linear_forecast(history, weights)[:, 0].tolist() == [1.0, 5.0]


def test_the_linear_baseline_recovers_a_linear_law_and_is_shift_and_scale_invariant():
    """Train windows whose future is a fixed linear map of the lookback (relative to the last
    value): fit_linear finds that map from batches, and it forecasts another channel's level and
    scale as well (one map shared by the channels, applied in original units)."""
    rng = np.random.default_rng(0)
    true = rng.normal(size=(6, 3)) * 0.3
    true[-1] = 0.0  # the last step's offset from itself is always 0: nothing to learn there
    histories = rng.normal(size=(200, 6, 2))
    last = histories[:, -1:, :]
    futures = last + np.einsum("lh,blt->bht", true, histories - last)
    weights = baselines.fit_linear(((histories[i:i + 50], futures[i:i + 50]) for i in range(0, 200, 50)), ridge=1e-9)
    assert weights.shape == (6, 3) and np.allclose(weights, true, atol=1e-6)
    shifted = histories[0] * 10 + 100
    assert np.allclose(baselines.linear_forecast(shifted, weights), futures[0] * 10 + 100, atol=1e-4)
    assert baselines.fit_linear(iter([])) is None


def test_climatology_is_the_train_mean_per_seasonal_position():
    hours = np.arange(48) * 3600  # two days, hourly
    values = np.stack([hours // 3600 % 24 + 24 * (hours // 86400)], axis=-1).astype(float)  # hour, +24 on day 2
    climate = baselines.climatology(hours, values, period_seconds=86400, positions=24, frequency_seconds=3600)
    assert climate["means"][5] == [5 + 12.0]  # hour 5: 5 and 29
    # A window ending at hour 22 forecasts hours 23, 0 and 1.
    forecast = baselines.climatology_forecast(22 * 3600, 3, climate)
    assert forecast[:, 0].tolist() == [23 + 12.0, 0 + 12.0, 1 + 12.0]
    # A position no train row reaches takes the overall mean.
    sparse = baselines.climatology(np.array([0, 3600]), np.array([[1.0], [3.0]]), period_seconds=4 * 3600,
                                   positions=4, frequency_seconds=3600)
    assert sparse["means"] == [[1.0], [3.0], [2.0], [2.0]]


def test_daily_climatology_is_by_day_of_year_with_two_years_of_train_rows():
    assert baselines.climatology_period(86400, 7, 730) == (baselines.YEAR_SECONDS, 365)
    assert baselines.climatology_period(86400, 7, 700) == (7 * 86400, 7)
    assert baselines.climatology_period(3600, 24, 10_000) == (86400, 24)
    assert baselines.climatology_period(3600, None, 10_000) is None
    days = pd.date_range("2001-01-01", "2004-12-31", freq="D")
    seconds = days.asi8 // 10**9
    values = days.dayofyear.to_numpy()[:, None].astype(float)  # a perfect annual cycle
    climate = baselines.climatology(seconds, values, period_seconds=baselines.YEAR_SECONDS, positions=365,
                                    frequency_seconds=86400)
    # Forecasting mid-July of a later year from its day of year stays within a day of the truth.
    end = pd.Timestamp("2007-07-14").value // 10**9
    forecast = baselines.climatology_forecast(end, 3, climate)[:, 0]
    assert np.abs(forecast - np.array([196, 197, 198])).max() <= 1.0


def test_the_linear_baseline_fits_a_linear_series_exactly():
    """A ramp: the future continues the slope, which one shared linear map expresses exactly."""
    ramp = np.arange(200, dtype=float)[:, None] * 0.5 + 3.0
    lookback, horizon = 6, 4
    starts = range(len(ramp) - lookback - horizon)
    histories = np.stack([ramp[s:s + lookback] for s in starts])
    futures = np.stack([ramp[s + lookback:s + lookback + horizon] for s in starts])
    weights = baselines.fit_linear([(histories, futures)])
    later = np.arange(1000, 1006, dtype=float)[:, None] * -2.0  # another slope and level
    expected = (np.arange(1006, 1010, dtype=float) * -2.0)[:, None]
    assert np.allclose(baselines.linear_forecast(later, weights), expected, atol=1e-3)


def test_error_metrics_by_hand():
    actual = np.array([[[2.0], [4.0]], [[0.0], [-2.0]]])  # 2 windows, horizon 2
    forecast = np.array([[[1.0], [4.0]], [[0.0], [2.0]]])
    sums = metrics.ErrorSums(horizon=2, targets=1)
    sums.add(actual, forecast)
    result = sums.metrics(per_step=True)
    assert result["mae"] == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert result["rmse"] == pytest.approx(np.sqrt((1 + 0 + 0 + 16) / 4))
    # sMAPE: 2|e|/(|y|+|f|): 2/3, 0, 0 (both zero), 2 -> mean 0.6667 -> 66.67%.
    assert result["smape"] == pytest.approx(100 * (2 / 3 + 0 + 0 + 2) / 4)
    assert result["mae_h1"] == pytest.approx(0.5) and result["mae_h2"] == pytest.approx(2.0)


def test_skill_compares_with_persistence_on_the_same_windows():
    accumulator = metrics.ForecastAccumulator(horizon=2, targets=1)
    history = np.array([[0.0], [1.0]])
    accumulator.add(history, actual=np.array([[2.0], [3.0]]), forecast=np.array([[2.0], [2.0]]))
    result = accumulator.metrics()
    assert result["baseline_persistence_mae"] == pytest.approx(1.5)  # |2-1|, |3-1|
    assert result["mae"] == pytest.approx(0.5)
    assert result["skill"] == pytest.approx(1 - 0.5 / 1.5) == result["skill_over_persistence"]
    assert result["baseline_seasonal_naive_mae"] is None and result["baseline_linear_mae"] is None


def test_skill_is_measured_against_the_best_baseline():
    """A linear map that extrapolates the trend beats persistence on a ramp: the model must beat it."""
    weights = np.array([[-1.0, -2.0], [0.0, 0.0]])  # last + (x0 - last) * (-1, -2): continue the slope
    accumulator = metrics.ForecastAccumulator(horizon=2, targets=1, baselines=baselines.Baselines(linear=weights))
    accumulator.add(np.array([[0.0], [1.0]]), actual=np.array([[2.0], [3.0]]), forecast=np.array([[2.0], [2.5]]))
    result = accumulator.metrics()
    assert result["baseline_linear_mae"] == pytest.approx(0.0)
    assert result["best_baseline_mae"] == 0.0 and result["skill"] == -math.inf
    assert result["skill_over_persistence"] == pytest.approx(1 - 0.25 / 1.5)


def test_parquet_with_native_datetime_and_float_columns(tmp_path):
    times = pd.date_range("2024-03-01", periods=30, freq="15min", tz="Europe/Paris")
    frame = pd.DataFrame({"time": times, "a": np.arange(30, dtype=np.float64), "b": np.arange(30) * 2})
    frame = frame.iloc[::-1]  # unsorted on purpose
    frame.to_parquet(tmp_path / "series.parquet")
    config = config_for(tmp_path / "series.parquet", "data.format=parquet")
    series = series_lib.read_series(config)
    assert series.frequency_seconds == 900 and series.column("a").tolist() == list(range(30))
    assert series.times[0] == pd.Timestamp("2024-02-29 23:00")  # UTC
    assert get_task("forecasting").preflight(config).details["season"] is None  # 96 steps > lookback 3


ETTH1 = os.path.join(os.environ.get("RNNFLOW_DATASETS", os.path.join(os.path.dirname(__file__), "..", "..",
                                                                     "shared", "datasets")), "ett", "ETTh1.csv")


@pytest.mark.skipif(not os.path.exists(ETTH1), reason=f"ETTh1 not found at {ETTH1} (set RNNFLOW_DATASETS)")
def test_the_documented_etth1_command_passes_preflight():
    config = load_config("forecast", [f"data.path={ETTH1}", "data.time_column=date", "data.target_columns=[OT]",
                                      "task.lookback=96", "task.horizon=24"])
    report = get_task("forecasting").preflight(config)
    details = report.details
    assert details["frequency"] == "1h" and details["season"] == 24
    assert details["columns"] == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert report.rows == 17420 and report.warnings == []
    assert sum(s["rows"] for s in details["splits"].values()) == 17420


def test_byte_order_mark_and_invalid_utf8_cells(tmp_path):
    rows = hourly(20)
    rows[6] = rows[6].replace(",6,", ",\udcff6,")
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("time,a,b\n" + "\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))
    with pytest.raises(DataError, match=r"a at bom.csv line 8: '\ufffd6'"):  # the time column is found
        series_lib.read_series(config_for(path))


@pytest.mark.parametrize("combination", [True, False])
def test_the_served_forecaster_is_the_linear_combination_only_when_it_is_on(combination):
    """`task.linear_combination`: the Trainer exports (and checks the export against) the mean of
    the trained model and its linear map; off, the model itself."""
    import keras

    from rnnflow.components.forecasting.trainer import TrainingData
    from rnnflow.models.segment_forecaster import build_segment_forecaster
    from rnnflow.pipeline.config import ModelConfig, TrainingConfig

    model = build_segment_forecaster(ModelConfig(cell="gru", units=8), TrainingConfig(epochs=1, batch_size=4,
                                     learning_rate=0.01, lr_schedule="constant"), lookback=6, input_width=2,
                                     horizon=3, target_indices=[1], normalization="revin", segment=None, loss="mae",
                                     input_name="window")
    weights = np.random.default_rng(0).normal(size=(6, 3))
    data = TrainingData.__new__(TrainingData)  # the Trainer's side only: no Transform output needed
    data.config = config_for("unused.csv", f"task.linear_combination={str(combination).lower()}")
    data.details, data.target_indices = {"columns": ["x", "a"], "targets": ["a"]}, [1]
    data._linear_fitted, data._linear, data._served = True, weights, (None, None)
    window = np.random.default_rng(1).normal(size=(2, 6, 2)).astype("float32")
    served = data.served(model)
    mean = 0.5 * np.stack([baselines.linear_forecast(w[:, [1]], weights) for w in window]) \
        + 0.5 * model({"window": window}).numpy()
    assert (served is model) == (not combination)
    if combination:
        assert isinstance(served, keras.Model) and data.served(model) is served  # built once
        assert np.allclose(served({"window": window}).numpy(), mean, atol=1e-5)
