"""Reading, checking and cleaning a time series, and planning its windows.

Shared by the pre-flight check (which fails fast, before any component runs)
and `TimeSeriesExampleGen` (which writes the windows), so both see exactly the
same cleaned series. Rows are named by file and line in every message.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from rnnflow.components.forecasting.baselines import climatology, climatology_period
from rnnflow.components.forecasting.schema import (
    AUTO_TASK_FIELDS, as_naive_utc, auto_task_fields, check_column_name, frequency_seconds, season_steps)
from rnnflow.components.ingest.csv_input import (CsvFormatError, CsvOptions, delimiter_hint, format_hint, not_csv_message,
                                         read_head, read_records)
from rnnflow.components.tasks.base import DataError, InputReport, open_input, resolve_input_files
from rnnflow.pipeline.config import replace_fields

_SHOWN = 5  # rows named per problem in an error message


@dataclasses.dataclass
class Series:
    """A cleaned series: strictly increasing times on a fixed grid (gaps only under "drop")."""
    times: pd.DatetimeIndex  # naive UTC
    values: np.ndarray  # [rows, columns] float64, no NaN
    columns: list[str]  # feature columns; targets included
    targets: list[str]
    frequency_seconds: int
    warnings: list[str]  # data fixed up or doubtful (errors under --strict-data)
    notes: list[str]  # informational (e.g. columns left out)
    files: list[str]  # the input files read, in order

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def segments(self) -> list[tuple[int, int]]:
        """[start, end) row ranges without gaps."""
        steps = np.diff(self.times.asi8) // 10**9
        breaks = np.flatnonzero(steps != self.frequency_seconds) + 1
        edges = [0, *breaks.tolist(), len(self.times)]
        return [(s, e) for s, e in zip(edges[:-1], edges[1:]) if e > s]


@dataclasses.dataclass(frozen=True)
class Window:
    start: int  # first lookback row
    owned: int  # leading lookback rows counted in the train statistics (0 outside train)


def read_series(config, files: list[str] | None = None) -> Series:
    """Reads `files` (default: those `data.path` names) and applies `data.on_bad_rows`; a
    DataError names every problem."""
    data = config.data
    files = files or resolve_input_files(data, spans=data.rolling_spans)
    frame = pd.concat([_read_file(path, data) for path in files], ignore_index=True)
    if frame.empty:
        raise DataError(f"data.path: no rows in {', '.join(files)}")
    for column in [data.time_column, *data.target_columns, *data.feature_columns]:
        if column not in frame.columns:
            hint = ""
            if data.format == "csv":
                with open_input(files[0]) as f:
                    hint = delimiter_hint(files[0], f.readline(), CsvOptions.of(data))
            raise DataError(f"column '{column}' (named in data) is not in {_where(frame)}; "
                            f"columns: {', '.join(c for c in frame.columns if not c.startswith('_'))}{hint}")
    warnings: list[str] = []
    notes: list[str] = []
    columns = _feature_columns(frame, data, notes)
    for column in columns:
        problem = check_column_name(column)
        if problem:
            raise DataError(f"column {problem}")

    policy = data.on_bad_rows
    frame = _parse_times(frame, data.time_column, policy, warnings)
    values = _parse_numbers(frame, columns)
    frame = pd.concat([frame[["_time", "_file", "_line"]], values], axis=1)

    order = np.argsort(frame["_time"].to_numpy(), kind="stable")
    if (order != np.arange(len(order))).any():
        warnings.append("rows were not in time order; sorted by time")
        frame = frame.iloc[order].reset_index(drop=True)
    duplicated = frame["_time"].duplicated(keep="first").to_numpy()
    if duplicated.any():
        if policy == "fail":
            raise DataError(f"duplicate timestamps in {data.time_column}: {_rows(frame, duplicated, '_time')} "
                            "(set data.on_bad_rows to keep the first row of each timestamp)")
        warnings.append(f"{int(duplicated.sum())} rows with a duplicate timestamp dropped (first kept)")
        frame = frame[~duplicated].reset_index(drop=True)

    step = frequency_seconds(data.frequency) if data.frequency else _infer_step(frame["_time"])
    seconds = (frame["_time"].astype("int64") // 10**9).to_numpy()
    off_grid = (seconds - seconds[0]) % step != 0
    if off_grid.any():
        raise DataError(f"timestamps off the {_step_name(step)} grid that starts at {frame['_time'][0]}: "
                        f"{_rows(frame, off_grid, '_time')} (check data.frequency)")
    frame = _handle_gaps(frame, seconds, step, policy, warnings)
    frame = _handle_bad_cells(frame, columns, policy, warnings)
    return Series(times=pd.DatetimeIndex(frame["_time"]), values=frame[columns].to_numpy(np.float64),
                  columns=columns, targets=list(data.target_columns), frequency_seconds=step,
                  warnings=warnings, notes=notes, files=files)


def split_rows(series: Series, config, only: str | None = None) -> dict[str, tuple[int, int]]:
    """Chronological [first, end) row range of each split; `only`: the series is all that split
    (a predefined split's file, or the train file beside them)."""
    split, rows = config.data.split, len(series.times)
    if only:
        return {only: (0, rows)}
    if split.eval_start is not None:
        eval_at, test_at = (int(series.times.searchsorted(as_naive_utc(pd.Timestamp(t))))
                            for t in (split.eval_start, split.test_start))
    else:
        eval_at = int(rows * split.train_fraction)
        test_at = int(rows * (split.train_fraction + split.eval_fraction))
    return {"train": (0, eval_at), "eval": (eval_at, test_at), "test": (test_at, rows)}


def resolve_auto(config, series: Series):
    """`config` with the task's `auto` fields (lookback, encoder, anchor, calendar features, linear
    combination) resolved on the train series (`schema.auto_task_fields`: its frequency and train
    rows); unchanged when none is auto. The ingest resolves them once, on the train read, and records
    them in the input report (details `task`); Transform hands them to the Trainer."""
    first, end = split_rows(series, config, "train" if config.data.eval_path else None)["train"]
    values = auto_task_fields(config.task, series.frequency_seconds, end - first)
    return replace_fields(config, values) if values else config


def plan_windows(series: Series, config, only: str | None = None) -> dict[str, list[Window]]:
    """Windows of lookback + horizon rows, each inside one split and one gap-free segment.

    Train windows own their first `min(stride, lookback)` lookback rows, the last one in
    a segment all of its lookback rows, so every train row that the model sees as input
    counts exactly once in the normalization statistics. An `auto` lookback is resolved on this
    series (`resolve_auto`: pass the resolved config when the series is not the train's).
    """
    task = resolve_auto(config, series).task
    length = task.lookback + task.horizon
    if len(series.times) < length:
        raise DataError(f"the series has {len(series.times)} rows after cleaning, fewer than "
                        f"lookback + horizon = {length}{_longest_fit(len(series.times), task)}")
    plan: dict[str, list[Window]] = {}
    for split, (first, end) in split_rows(series, config, only).items():
        windows = []
        for seg_first, seg_end in series.segments():
            lo, hi = max(first, seg_first), min(end, seg_end)
            starts = list(range(lo, hi - length + 1, task.stride))
            for i, start in enumerate(starts):
                owned = task.lookback if i == len(starts) - 1 else min(task.stride, task.lookback)
                windows.append(Window(start, owned if split == "train" else 0))
        if not windows:
            raise DataError(_no_window_message(series, split, first, end, task))
        plan[split] = windows
    return plan


def split_summary(series: Series, config, plan: dict[str, list[Window]]) -> dict[str, dict]:
    """Rows, windows and time ranges per split of the plan (the ExampleGen records these)."""
    task = config.task
    summary = {}
    only = next(iter(plan)) if len(plan) == 1 else None
    for split, (first, end) in split_rows(series, config, only).items():
        windows = plan[split]
        summary[split] = {
            "rows": end - first,
            "windows": len(windows),
            "first_time": str(series.times[first]),
            "last_time": str(series.times[end - 1]),
            "first_target_time": str(series.times[windows[0].start + task.lookback]),
            "last_target_time": str(series.times[windows[-1].start + task.lookback + task.horizon - 1]),
        }
    return summary


def report_for(series: Series, plan: dict[str, list[Window]], config) -> InputReport:
    """The input report of a read series and its window plan."""
    season = season_steps(config, series.frequency_seconds)
    warnings, notes = [*series.warnings, *_constant_targets(series, config)], list(series.notes)
    climatology = _train_climatology(series, config, season)
    if season is not None and season > config.task.lookback:
        notes.append(f"season {season} is longer than lookback {config.task.lookback}: "
                     "no seasonal-naive baseline")
        season = None
    return InputReport(files=series.files, rows=len(series.times), warnings=warnings, notes=notes, details={
        # The task fields that `auto` may leave to the data, as this run has them (`resolve_auto`).
        "task": {f: getattr(config.task, f) for f in AUTO_TASK_FIELDS},
        "columns": series.columns,
        "targets": series.targets,
        "frequency_seconds": series.frequency_seconds,
        "frequency": _step_name(series.frequency_seconds),
        "season": season,
        "climatology": climatology,
        "splits": split_summary(series, config, plan),
    })


def _train_climatology(series: Series, config, season: int | None) -> dict | None:
    """The climatology baseline: each target's train mean per seasonal position (None without a
    season or train rows)."""
    first, end = split_rows(series, config, "train" if config.data.eval_path else None)["train"]
    period = climatology_period(series.frequency_seconds, season, end - first)
    if period is None or end <= first:
        return None
    indices = [series.columns.index(t) for t in series.targets]
    return climatology(series.times.asi8[first:end] // 10**9, series.values[first:end][:, indices],
                       period_seconds=period[0], positions=period[1], frequency_seconds=series.frequency_seconds)


def _constant_targets(series: Series, config) -> list[str]:
    """Warnings for targets that never change in the train split: persistence is exact there,
    so no model can beat it by `evaluation.min_skill` and the run cannot be blessed."""
    first, end = split_rows(series, config, "train" if config.data.eval_path else None)["train"]
    warnings = []
    for target in series.targets:
        values = series.column(target)[first:end]
        if len(values) and np.ptp(values) == 0:
            warnings.append(f"target '{target}' is constant ({values[0]:g}) in the train split: the "
                            "persistence forecast is exact, so no model can beat it and the run will "
                            "not be blessed")
    return warnings


# ---------------------------------------------------------------------------

def _read_file(path: str, data) -> pd.DataFrame:
    fmt = data.format
    head = read_head(path)
    not_csv = not_csv_message(path, head) if fmt == "csv" else None
    if not_csv:
        raise DataError(not_csv)
    hint = format_hint(head, fmt)
    try:
        if fmt == "parquet":
            with open_input(path) as f:
                frame = pd.read_parquet(f)
            frame = frame.assign(_line=np.arange(len(frame)) + 1)
        else:
            # The one CSV reader every task uses; strings first: a bad cell is reported as
            # written, not silently coerced.
            with open_input(path) as f:
                names, records = read_records(path, f, CsvOptions.of(data))
                rows = [([field.strip() for field in record.fields], record.line) for record in records]
            frame = pd.DataFrame([fields for fields, _ in rows], columns=names, dtype=str)
            frame = frame.assign(_line=[line for _, line in rows])
    except CsvFormatError as e:
        raise DataError(f"{e}{hint}") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        raise DataError(f"{path}: cannot read as {fmt}: {e}{hint}") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.assign(_file=os.path.basename(path))


def _feature_columns(frame: pd.DataFrame, data, notes: list[str]) -> list[str]:
    if data.feature_columns:
        columns = list(data.feature_columns)
    else:
        candidates = [c for c in frame.columns if c != data.time_column and not c.startswith("_")]
        columns, skipped = [], []
        for column in candidates:
            text = frame[column].astype(str).str.strip()
            present = text[(text != "") & (text.str.lower() != "nan")]
            numeric = pd.to_numeric(present, errors="coerce").notna().mean() if len(present) else 0.0
            (columns if numeric > 0.5 else skipped).append(column)
        if skipped:
            notes.append(f"not numeric, not used as features: {', '.join(skipped)}")
    # Targets are features too: their history is the strongest input.
    return columns + [t for t in data.target_columns if t not in columns]


def _parse_times(frame: pd.DataFrame, column: str, policy: str, warnings: list[str]) -> pd.DataFrame:
    """`frame` with a naive-UTC `_time` column; unreadable times fail, or are dropped under "drop"."""
    times = pd.to_datetime(frame[column].astype(str).str.strip(), errors="coerce", utc=True)
    bad = times.isna().to_numpy()
    if bad.any():
        if policy != "drop":
            raise DataError(f"unreadable times in {column}: {_rows(frame, bad, column)}"
                            + ("" if policy == "fail" else " (times cannot be filled; use on_bad_rows: drop)"))
        warnings.append(f"{int(bad.sum())} rows with an unreadable time dropped")
    return frame.assign(_time=times.dt.tz_localize(None))[~bad].reset_index(drop=True)


def _parse_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numeric columns; cells that are empty, non-numeric, NaN or infinite become NaN."""
    parsed = {}
    for column in columns:
        values = frame[column]
        if values.dtype == object:
            values = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
        values = values.astype(np.float64)
        parsed[column] = values.where(np.isfinite(values))
    return pd.DataFrame(parsed, index=frame.index).assign(**{f"_raw_{c}": frame[c] for c in columns})


def _infer_step(times: pd.Series) -> int:
    steps = np.diff(times.astype("int64").to_numpy()) // 10**9
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise DataError("cannot infer the frequency from fewer than two distinct timestamps")
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


def _handle_gaps(frame, seconds, step, policy, warnings) -> pd.DataFrame:
    gaps = np.flatnonzero(np.diff(seconds) > step)
    if not len(gaps):
        return frame
    missing = int(((np.diff(seconds)[gaps] // step) - 1).sum())
    if policy == "fail":
        shown = "; ".join(f"after {_row(frame, i)} ({frame['_time'][i]}) until {frame['_time'][i + 1]}"
                          for i in gaps[:_SHOWN])
        more = f" and {len(gaps) - _SHOWN} more" if len(gaps) > _SHOWN else ""
        raise DataError(f"{missing} missing time steps of {_step_name(step)} in {len(gaps)} gaps: {shown}{more} "
                        "(set data.on_bad_rows to ffill, interpolate or drop)")
    if policy == "drop":
        warnings.append(f"{len(gaps)} gaps ({missing} missing steps) left in place; no window spans one")
        return frame
    grid = pd.date_range(frame["_time"].iloc[0], frame["_time"].iloc[-1], freq=pd.Timedelta(seconds=step))
    warnings.append(f"{missing} missing time steps in {len(gaps)} gaps filled ({policy})")
    filled = frame.set_index("_time").reindex(grid)
    filled["_file"] = filled["_file"].fillna("(inserted)")
    filled["_line"] = filled["_line"].fillna(0).astype(int)
    return filled.rename_axis("_time").reset_index()


def _handle_bad_cells(frame, columns, policy, warnings) -> pd.DataFrame:
    bad = frame[columns].isna()
    inserted = (frame["_file"] == "(inserted)").to_numpy()
    original_bad = bad.to_numpy() & ~inserted[:, None]
    for column in columns:
        if bad[column].all():
            raise DataError(f"column '{column}' has no numeric values")
    if not bad.to_numpy().any():
        return frame
    if policy == "fail":
        problems = []
        for column in columns:
            rows = np.flatnonzero(original_bad[:, columns.index(column)])
            problems += [f"{column} at {_row(frame, i)}: {_show(frame[f'_raw_{column}'].iloc[i])}" for i in rows]
        raise DataError(f"{len(problems)} missing or non-numeric cells: {'; '.join(problems[:_SHOWN])}"
                        f"{' and more' if len(problems) > _SHOWN else ''} "
                        "(set data.on_bad_rows to ffill, interpolate or drop)")
    count = int(original_bad.sum())
    if policy == "drop":
        keep = ~bad.any(axis=1).to_numpy()
        warnings.append(f"{int((~keep).sum())} rows with missing or non-numeric cells dropped")
        return frame[keep].reset_index(drop=True)
    if policy == "ffill":
        frame[columns] = frame[columns].ffill()
        leading = frame[columns].isna().any(axis=1).to_numpy()
        if leading.any():
            warnings.append(f"{int(leading.sum())} leading rows without an earlier value to fill from dropped")
            frame = frame[~leading].reset_index(drop=True)
    else:
        filled = frame.set_index("_time")[columns].interpolate(method="time", limit_direction="both")
        frame[columns] = filled.to_numpy()
    if count:
        warnings.append(f"{count} missing or non-numeric cells filled ({policy})")
    return frame


def _no_window_message(series: Series, split: str, first: int, end: int, task) -> str:
    if end <= first:
        return f"the {split} split is empty; check data.split"
    runs = [min(end, e) - max(first, s) for s, e in series.segments() if min(end, e) > max(first, s)]
    run = max(runs, default=0)
    return (f"the {split} split ({end - first} rows, {series.times[first]} to {series.times[end - 1]}) "
            f"holds no complete window of lookback + horizon = {task.lookback} + {task.horizon} steps (longest "
            f"gap-free run: {run} rows){_longest_fit(run, task)}; use more data, a shorter lookback/horizon "
            "or other split fractions")


def _longest_fit(rows: int, task) -> str:
    """What fits `rows` consecutive rows: the longest lookback with this horizon, or that the
    horizon alone does not fit."""
    if rows > task.horizon:
        return f"; the longest task.lookback that fits with task.horizon {task.horizon} is {rows - task.horizon}"
    return f"; task.horizon {task.horizon} alone needs more than {rows} rows"


def _where(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(set(frame["_file"])))


def _row(frame: pd.DataFrame, i: int) -> str:
    return f"{frame['_file'].iloc[i]} line {frame['_line'].iloc[i]}"


def _rows(frame: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(f"{_row(frame, i)} ({_show(frame[column].iloc[i])})" for i in rows[:_SHOWN])
    return shown + (f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else "")


def _show(value) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return repr(text[:40]) if text else "empty"


def _step_name(seconds: int) -> str:
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

