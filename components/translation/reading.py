"""Sentence pairs from tab-separated, line-aligned parallel or JSONL files (`data.format`), each
pair located by file and line, and the split by a hash of the source sentence.

- tsv: `data.source_column` and `data.target_column` of each tab-separated line (further
  columns, such as Tatoeba's attribution, are ignored); a line with too few columns is an error
  naming it.
- parallel: `data.path` names the source side's files, each ending in `data.source_suffix`; the
  target side is the same name ending in `data.target_suffix`. Files of different line counts
  are an error naming both files and counts (a misaligned corpus trains a wrong model).
- jsonl: `data.source_field` and `data.target_field` of each object.

Invalid UTF-8 is an error naming the file, line and byte. Sentences are stripped; a pair with
an empty side is skipped and counted (the report names the first one); blank lines of tsv and
jsonl files are skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib

from rnnflow.components.tasks.base import DataError, decode_text, json_objects, open_input

_SHOWN = 3


@dataclasses.dataclass
class Pairs:
    pairs: list[tuple[str, str]]
    where: list[str]  # "file:line" of each pair
    empty: list[str] = dataclasses.field(default_factory=list)  # where a side was empty (skipped)

    def extend(self, other: "Pairs") -> None:
        self.pairs += other.pairs
        self.where += other.where
        self.empty += other.empty


def read_pairs(data, files: list[str]) -> Pairs:
    read = Pairs([], [])
    for path in files:
        read.extend(_READERS[data.format](data, path))
    return read


def _lines(path: str) -> list[str]:
    with open_input(path) as f:
        return decode_text(path, f.read()).splitlines()


def _add(read: Pairs, source: str, target: str, where: str) -> None:
    source, target = source.strip(), target.strip()
    if source and target:
        read.pairs.append((source, target))
        read.where.append(where)
    else:
        read.empty.append(where)


def _tsv(data, path: str) -> Pairs:
    read = Pairs([], [])
    needed = max(data.source_column, data.target_column) + 1
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < needed:
            found = "no tab" if len(fields) == 1 else f"{len(fields)} tab-separated columns"
            raise DataError(f"{path}: line {number}: {found}; a pair needs {needed} (data.source_column="
                            f"{data.source_column}, data.target_column={data.target_column}): {line[:80]!r}")
        _add(read, fields[data.source_column], fields[data.target_column], f"{path}:{number}")
    return read


def target_file(data, path: str) -> str:
    if not data.source_suffix or not data.target_suffix:
        raise DataError("data.format: parallel needs data.source_suffix and data.target_suffix (e.g. .de and .en)")
    if not path.endswith(data.source_suffix):
        raise DataError(f"{path}: does not end in data.source_suffix={data.source_suffix!r}; data.path names the "
                        "source side's files")
    return path[:-len(data.source_suffix)] + data.target_suffix


def _parallel(data, path: str) -> Pairs:
    other = target_file(data, path)
    sources = _lines(path)
    try:
        targets = _lines(other)
    except FileNotFoundError:
        raise DataError(f"{path}: its target side {other} (data.target_suffix={data.target_suffix!r}) does not "
                        "exist") from None
    if len(sources) != len(targets):
        raise DataError(f"misaligned parallel files: {path} has {len(sources)} lines and {other} has "
                        f"{len(targets)}; each line of one must translate the same line of the other")
    read = Pairs([], [])
    for number, (source, target) in enumerate(zip(sources, targets), 1):
        _add(read, source, target, f"{path}:{number}")
    return read


def _jsonl(data, path: str) -> Pairs:
    read = Pairs([], [])
    for number, record in json_objects(path, (data.source_field, data.target_field)):
        for field in (data.source_field, data.target_field):
            if not isinstance(record.get(field), str):
                what = "missing" if field not in record else f"not a string ({type(record[field]).__name__})"
                raise DataError(f"{path}: line {number}: field {field!r} is {what}")
        _add(read, record[data.source_field], record[data.target_field], f"{path}:{number}")
    return read


_READERS = {"tsv": _tsv, "parallel": _parallel, "jsonl": _jsonl}


def split_of(source: str, eval_percent: int) -> str:
    """"eval" for eval_percent of the distinct sources, by a hash of the source sentence."""
    bucket = int.from_bytes(hashlib.md5(source.encode("utf-8")).digest()[:8], "big") % 100
    return "eval" if bucket < eval_percent else "train"


def shown(places: list[str]) -> str:
    return ", ".join(places[:_SHOWN]) + (f" and {len(places) - _SHOWN} more" if len(places) > _SHOWN else "")
