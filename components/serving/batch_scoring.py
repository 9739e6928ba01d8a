"""Scoring a file of inputs with a served model: `rnnflow predict`, and the same from Python.

    from rnnflow.components.serving.batch_scoring import predict_file
    report = predict_file("serving/sentiment", "new_reviews.csv", "scored.jsonl")

Input: CSV (a header row), JSONL (one object per line) or Parquet, or stdin ("-"). Columns are
matched to the signature's inputs by name (other columns are ignored; the id column is copied
through). A text input takes the cell as it is; a number input takes a number, or a list of
numbers for a window (JSON `[1, 2]` or space-separated `1 2` in a CSV cell, a list in JSONL or
Parquet).

Output: one row per scored input row, in input order: the row's id (`id_column`; default the
input's `id` column when it has one, else the input's line number as `line`), then every output
of the signature (lists for vectors). The format follows the output file's extension (.csv,
.jsonl, .parquet); no output file means JSONL on stdout. The file is written under a temporary
name and renamed when scoring ends, so an aborted run leaves nothing half-written.

Rows that cannot be scored (a cell that is not a number, invalid UTF-8, a window of the wrong
length, anything the model's own input checks refuse) are reported by line number and skipped;
the other rows are still scored, unless `strict`. A batch the model refuses is re-sent row by
row to find the rows at fault. A file whose header lacks an input column, an empty file, or a
model that cannot be reached stops the run before anything is written.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import os
import sys
import tempfile
import time
from typing import Any, Iterator, Optional

from rnnflow.components.common.file_checks import OutputPathError, check_output_file
from rnnflow.components.serving.serving_client import (
    INTEGER_DTYPES, Model, RequestRefused, ServingError, open_model, to_jsonable)

DEFAULT_BATCH_SIZE = 64
# A batch is also cut at this many bytes of input (long texts), so one request stays well
# inside TF Serving's and gRPC's limits and this process's memory stays flat.
MAX_BATCH_BYTES = 8 << 20
# Python's csv module refuses cells over 128 KiB by default; a review can be longer.
CSV_FIELD_LIMIT = 1 << 30
PROGRESS_INTERVAL_SECONDS = 10.0


class InputFileError(ServingError):
    """The input file as a whole cannot be scored (no rows, no column for an input)."""


@dataclasses.dataclass
class Row:
    where: str            # "line 7" (CSV/JSONL) or "row 7" (Parquet): what messages name
    line: int
    values: dict[str, Any]
    error: Optional[str] = None


@dataclasses.dataclass
class PredictReport:
    model: str
    output: Optional[str]
    scored: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (where, why)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [f"scored {self.scored} rows with {self.model} in {self.seconds:.1f} s"
                 + (f" -> {self.output}" if self.output else "")]
        if self.failed:
            lines.append(f"{len(self.failed)} rows not scored:")
            lines += [f"  {where}: {why}" for where, why in self.failed[:50]]
            if len(self.failed) > 50:
                lines.append(f"  ... and {len(self.failed) - 50} more")
        return "\n".join(lines)


def input_format(path: str, given: Optional[str] = None) -> str:
    if given:
        return given
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension in ("csv", "tsv", "txt"):
        return "csv"
    if extension in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if extension in ("parquet", "pq"):
        return "parquet"
    raise InputFileError(f"{path}: cannot tell the format from the extension; name it (csv, jsonl, parquet)")


def read_rows(path: str, fmt: Optional[str] = None, *, delimiter: str = ",") -> tuple[list[str] | None, Iterator[Row]]:
    """(the columns when the format has a header, else None; the rows). `path` "-" is stdin."""
    if path == "-":
        data = sys.stdin.buffer.read()
        if fmt is None:
            fmt = "jsonl" if data.lstrip()[:1] == b"{" else "csv"
        source: Any = io.BytesIO(data)
    else:
        fmt = input_format(path, fmt)
        if not os.path.isfile(path):
            raise InputFileError(f"{path}: no such file")
        source = path
    if fmt == "csv":
        return _csv_rows(source, path, delimiter)
    if fmt == "jsonl":
        return None, _jsonl_rows(source, path)
    return _parquet_rows(source, path)


def _open_text(source):
    # surrogateescape keeps invalid UTF-8 bytes visible (as lone surrogates) so the row that
    # has them is reported instead of the whole file failing to decode.
    if isinstance(source, io.BytesIO):
        return io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return open(source, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _invalid_utf8(text: str) -> Optional[str]:
    for i, char in enumerate(text):
        if "\udc80" <= char <= "\udcff":
            return f"invalid UTF-8 (byte 0x{ord(char) - 0xdc00:02x} at character {i})"
    return None


def _csv_rows(source, path: str, delimiter: str):
    csv.field_size_limit(CSV_FIELD_LIMIT)
    f = _open_text(source)
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        f.close()
        raise InputFileError(f"{path}: empty file (no header row, no rows to score)") from None
    except csv.Error as e:
        f.close()
        raise InputFileError(f"{path}: line 1: {e}") from None
    if header and header[0].lstrip().startswith("{"):
        f.close()
        raise InputFileError(f"{path}: line 1 is a JSON object, not a CSV header: read as JSON lines with "
                             "--format jsonl")

    def rows():
        with f:
            start = reader.line_num + 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    yield Row(f"line {start}", start, {}, f"unreadable CSV: {e}")
                    start = reader.line_num + 1
                    continue
                row = Row(f"line {start}", start, dict(zip(header, cells)))
                if cells and len(cells) != len(header):
                    row.error = f"{len(cells)} cells; the header has {len(header)}"
                for column, cell in row.values.items():
                    bad = row.error is None and _invalid_utf8(cell)
                    if bad:
                        row.error = f"column `{column}`: {bad}"
                if cells:
                    yield row
                start = reader.line_num + 1
    return header, rows()


def _jsonl_rows(source, path: str = "-"):
    f = source if isinstance(source, io.BytesIO) else open(source, "rb")
    first = True
    with f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            where = f"line {number}"
            try:
                values = json.loads(raw.decode("utf-8-sig" if first else "utf-8"))
            except UnicodeDecodeError as e:
                yield Row(where, number, {}, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start})")
                continue
            except ValueError as e:
                if first:  # the first line already is not JSON: the file is not JSON lines
                    raise InputFileError(f"{path}: {where}: not JSON ({e}); a CSV file? read it with --format csv"
                                         ) from None
                yield Row(where, number, {}, f"not JSON: {e}")
                continue
            finally:
                first = False
            if not isinstance(values, dict):
                yield Row(where, number, {}, f"expected a JSON object, got {type(values).__name__}")
                continue
            yield Row(where, number, values)


def _parquet_rows(source, path: str):
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except Exception as e:  # noqa: BLE001 (pyarrow's errors, in one line)
        raise InputFileError(f"{path}: not a readable Parquet file: {e}") from None
    columns = parquet.schema_arrow.names

    def rows():
        number = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for values in batch.to_pylist():
                number += 1
                yield Row(f"row {number}", number, values)
    return columns, rows()


def cell_value(value, dtype: str, column: str):
    """One row's value for an input of `dtype`, from a CSV cell (str) or a JSON/Parquet value."""
    if value is None:
        raise ValueError(f"column `{column}` is empty")
    if dtype == "DT_STRING":
        if not isinstance(value, (str, bytes)):
            raise ValueError(f"column `{column}`: expected a text, got {json.dumps(value)[:60]}")
        return value
    integer = dtype in INTEGER_DTYPES
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"column `{column}` is empty")
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"column `{column}`: {text[:60]!r} is not a JSON list of numbers") from None
        else:
            parts = text.split()
            try:
                numbers = [int(p) if integer else float(p) for p in parts]
            except ValueError:
                kind = "an integer" if integer else "a number"
                raise ValueError(f"column `{column}`: {text[:60]!r} is not {kind}") from None
            return numbers[0] if len(numbers) == 1 else numbers
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise ValueError(f"column `{column}`: expected a number or a list of numbers, got {json.dumps(value)[:60]}")
    if isinstance(value, list) and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"column `{column}`: a list with a value that is not a number")
    if integer and (value != int(value) if not isinstance(value, list) else any(v != int(v) for v in value)):
        raise ValueError(f"column `{column}`: {value} is not an integer")
    return value


def row_inputs(row: Row, inputs: dict[str, str], signature_name: str) -> dict:
    """The row's value for every signature input (name -> DT_* dtype); ValueError naming the column."""
    values = {}
    for name, dtype in inputs.items():
        if name not in row.values:
            raise ValueError(f"no `{name}` (signature {signature_name} takes {', '.join(inputs)})")
        values[name] = cell_value(row.values[name], dtype, name)
    return values


def check_columns(columns: list[str] | None, inputs: dict[str, str], source: str, model: str, signature_name: str,
                  id_column: Optional[str]) -> None:
    """A header without a column for every input (or without the id column) is an InputFileError."""
    if columns is None:
        return
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise InputFileError(
            f"{source}: no column {', '.join(f'`{m}`' for m in missing)} for the input of {model} "
            f"(signature {signature_name} takes {', '.join(inputs)}; the file has {', '.join(columns) or 'no columns'})")
    if id_column and id_column not in columns:
        raise InputFileError(f"{source}: no id column `{id_column}` (the file has {', '.join(columns)})")


class _Output:
    """Rows written to a temporary file beside the output, renamed into place by `commit`."""

    def __init__(self, path: Optional[str], fields: list[str]):
        self.path, self.fields = path, fields
        self.format = input_format(path) if path else "jsonl"
        if self.format == "csv" and path and not path.lower().endswith(".csv"):
            raise InputFileError(f"{path}: write predictions as .csv, .jsonl or .parquet")
        self.rows: list[dict] = []
        if path is None:
            self.file, self.temp = sys.stdout, None
        else:
            directory = os.path.dirname(os.path.abspath(path))  # checked by predict_file
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise InputFileError(f"{path}: cannot create {directory}: {e.strerror or e}") from None
            fd, self.temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
            self.file = os.fdopen(fd, "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self.csv = csv.writer(self.file)
            self.csv.writerow(fields)

    def write(self, row: dict) -> None:
        if self.format == "jsonl":
            self.file.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.format == "csv":
            self.csv.writerow([json.dumps(v) if isinstance(v, list) else v for v in (row[f] for f in self.fields)])
        else:
            self.rows.append(row)

    def commit(self) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self.file.close()
            pq.write_table(pa.Table.from_pylist(self.rows) if self.rows else
                           pa.table({f: pa.array([], pa.null()) for f in self.fields}), self.temp)
        elif self.temp:
            self.file.close()
        else:
            self.file.flush()
        if self.temp:
            # mkstemp makes the file private (0600); the output gets what the umask gives a new file.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.temp, 0o666 & ~umask)
            os.replace(self.temp, self.path)

    def abort(self) -> None:
        if self.temp:
            self.file.close()
            os.remove(self.temp)


class _Progress:
    """A tqdm bar on a terminal; elsewhere (logs, CI) a line every PROGRESS_INTERVAL_SECONDS."""

    def __init__(self, stream):
        self.bar, self.stream = None, stream
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(unit=" rows", file=stream, mininterval=0.5)
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_SECONDS:
            self.last = now
            print(f"  {self.done} rows  ({self.done / (now - self.start):.0f} rows/s)", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def predict_file(model: str | Model, input_path: str, output_path: Optional[str] = None, *,
                 model_name: Optional[str] = None, signature: Optional[str] = None, input_format: Optional[str] = None,
                 id_column: Optional[str] = None, batch_size: int = DEFAULT_BATCH_SIZE, strict: bool = False,
                 delimiter: str = ",", progress: Any = True) -> PredictReport:
    """Scores `input_path` with `model` (a Model or a target for `open_model`); see the module
    docstring. Raises ServingError (InputFileError) when nothing can be scored, and with `strict`
    at the first row that cannot be. `progress`: True (stderr), a stream, or False."""
    if batch_size < 1:
        raise InputFileError(f"batch size must be at least 1, got {batch_size}")
    if output_path:  # before the model loads
        try:
            check_output_file(output_path, "output", inputs=(input_path,))
        except OutputPathError as e:
            raise InputFileError(str(e)) from None
    owned = not isinstance(model, Model)
    if owned:
        model = open_model(model, model_name, **({"signature": signature} if signature else {}))
    try:
        return _predict(model, input_path, output_path, input_format, id_column, batch_size, strict, delimiter,
                        progress)
    finally:
        if owned:
            model.close()


def _predict(model: Model, input_path, output_path, fmt, id_column, batch_size, strict, delimiter, progress_on):
    start = time.monotonic()
    columns, rows = read_rows(input_path, fmt, delimiter=delimiter)
    check_columns(columns, model.inputs, input_path, model.description, model.signature_name, id_column)
    if columns is None:  # JSONL: the first row says which keys there are
        first = next(rows, None)
        rows = itertools.chain([first] if first else [], rows)
        columns_seen = list(first.values) if first else []
    else:
        columns_seen = columns
    if id_column is None and "id" in columns_seen:
        id_column = "id"
    id_field = id_column or "line"
    output = _Output(output_path, [id_field, *model.outputs])
    report = PredictReport(model=model.description, output=output_path)
    progress = _Progress(sys.stderr if progress_on is True else progress_on) if progress_on else None
    seen = 0

    def fail(row: Row, why: str) -> None:
        if strict:
            raise RequestRefused(f"{input_path}: {row.where}: {why} (--strict: nothing written)")
        report.failed.append((row.where, why))

    def flush(batch: list[tuple[Row, dict]]) -> None:
        if not batch:
            return
        try:
            results = [model.predict({k: [v[k] for _, v in batch] for k in model.inputs})]
            groups = [batch]
        except RequestRefused as e:
            if len(batch) == 1:
                fail(batch[0][0], str(e))
                return
            results, groups = [], []
            for one in batch:  # find the rows at fault; the others are still scored
                try:
                    results.append(model.predict({k: [one[1][k]] for k in model.inputs}))
                    groups.append([one])
                except RequestRefused as row_error:
                    fail(one[0], str(row_error))
        for group, result in zip(groups, results):
            for i, (row, _) in enumerate(group):
                identity = row.values.get(id_column) if id_column else row.line
                output.write({id_field: to_jsonable(identity),
                              **{k: to_jsonable(result[k][i]) for k in model.outputs}})
            report.scored += len(group)
        if progress:
            progress.update(len(batch))

    try:
        batch: list[tuple[Row, dict]] = []
        size = 0
        for row in rows:
            seen += 1
            if row.error:
                fail(row, row.error)
                continue
            try:
                values = row_inputs(row, model.inputs, model.signature_name)
            except ValueError as e:
                fail(row, str(e))
                continue
            batch.append((row, values))
            size += sum(len(v) if isinstance(v, (str, bytes)) else 8 * (len(v) if isinstance(v, list) else 1)
                        for v in values.values())
            if len(batch) >= batch_size or size >= MAX_BATCH_BYTES:
                flush(batch)
                batch, size = [], 0
        flush(batch)
        if seen == 0:
            raise InputFileError(f"{input_path}: no rows to score")
        if report.scored == 0:
            raise InputFileError(f"{input_path}: no row could be scored:\n"
                                 + "\n".join(f"  {w}: {y}" for w, y in report.failed[:20]))
    except BaseException:
        output.abort()
        raise
    finally:
        if progress:
            progress.close()
    output.commit()
    report.seconds = time.monotonic() - start
    return report
