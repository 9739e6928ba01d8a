"""Predefined splits: a dataset's own dev and test files (`data.eval_path`, `data.test_path`).

One place for what every task does the same with them: which splits a config predefines, the
config checks, TFX's `Input` with one `Split` pattern per file (under one common input base),
and the leakage check between splits (a leaf: the file readers that raise `DataError` are in
`base.py`: `predefined_split_files`, `same_files`, `naming_field`). The tasks only read their files.

Without `eval_path` the task splits `data.path` as before (hash, contiguous block or time);
with it, `data.path` is all train. `test_path` adds a test split either way.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from rnnflow.pipeline import config as config_lib

# TFX span and date specs a data path may contain (`{SPAN}`, `{SPAN:2}`, `{YYYY}{MM}{DD}`, `{VERSION}`).
_SPAN_SPEC = re.compile(r"\{(SPAN(:\d+)?|YYYY|MM|DD|VERSION(:\d+)?)\}")


def has_span(path: str) -> bool:
    return bool(_SPAN_SPEC.search(path))


def split_input_path(path: str) -> tuple[str, str]:
    """(input_base, pattern) for TFX's ExampleGen: the directories before the first one that
    holds a span/date spec, and the rest (`data/span-{SPAN}/*.csv` -> `data`, `span-{SPAN}/*.csv`)."""
    parts = path.split("/")
    first = next((i for i, part in enumerate(parts[:-1]) if has_span(part)), len(parts) - 1)
    return "/".join(parts[:first]), "/".join(parts[first:])


PREDEFINED = ("eval", "test")  # the splits a config may give as files, in order
FIELDS = {"train": "data.path", "eval": "data.eval_path", "test": "data.test_path"}
_SHOWN_TEXT = 80  # characters of a leaked record the warning quotes


def split_paths(data) -> dict[str, str]:
    """split -> the path naming its files: train always, eval and test where given."""
    paths = {"train": data.path}
    for split in PREDEFINED:
        value = getattr(data, f"{split}_path", None)
        if value:
            paths[split] = value
    return paths


def predefined(data) -> tuple[str, ...]:
    """The splits given as their own files ("eval", "test"), in that order."""
    return tuple(split for split in split_paths(data) if split != "train")


def check_paths(config, *, series: bool) -> None:
    """ConfigErrors for predefined split paths that cannot work: the same file twice, a span
    spec in some paths only (TFX resolves one span for every split), rolling spans of one series."""
    data = config.data
    paths = split_paths(data)
    seen: dict[str, str] = {}
    for split, path in paths.items():
        resolved = config_lib.resolve_path(path)
        if resolved in seen:
            raise config_lib.ConfigError(f"{FIELDS[split]}: {path} is also {FIELDS[seen[resolved]]}; the "
                                         f"{split} split must be other data than the {seen[resolved]} split")
        seen[resolved] = split
    if len(paths) > 1 and len({has_span(p) for p in paths.values()}) > 1:
        spanned = [FIELDS[s] for s, p in paths.items() if has_span(p)]
        raise config_lib.ConfigError(
            f"{', '.join(spanned)} {'has' if len(spanned) == 1 else 'have'} a span spec and the other split paths "
            "do not: give every split path the same {SPAN} (or date) spec, or none (TFX reads one span of each)")
    if len(paths) > 1:
        common_base({split: config_lib.pipeline_path(path) for split, path in paths.items()})
    if series and len(paths) > 1 and data.rolling_spans > 1:
        raise config_lib.ConfigError("data.rolling_spans: the latest spans of one series and predefined eval/test "
                                     "files do not combine; use 1 with data.eval_path/test_path")


def example_gen_input(paths: dict[str, str]):
    """(input_base, `example_gen_pb2.Input`): one Split per path, named as the split, each
    pattern relative to the paths' common base (the directories before any span spec)."""
    from tfx.proto import example_gen_pb2

    bases = {split: split_input_path(path) for split, path in paths.items()}
    common = common_base(paths)
    splits = []
    for split, (base, pattern) in bases.items():
        relative = "/".join(base.split("/")[len(common):] + [pattern])
        splits.append(example_gen_pb2.Input.Split(name=split, pattern=relative))
    return "/".join(common) or "/", example_gen_pb2.Input(splits=splits)


def common_base(paths: dict[str, str]) -> list[str]:
    """The directory parts every split's path starts with: TFX's ExampleGen reads all splits
    under one input base, so the files must share a root directory, bucket or package; a
    ConfigError names the fields otherwise (`gs://a/...` beside `gs://b/...` or a local path)."""
    parts = [split_input_path(path)[0].split("/") for path in paths.values()]
    common = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    # "gs://bucket/x" splits into ["gs:", "", "bucket", "x"]: a URI's base needs its bucket.
    if not common or (common[0].endswith(":") and len(common) < 3):
        raise config_lib.ConfigError(
            f"{', '.join(FIELDS[s] for s in paths)}: {', '.join(paths.values())} share no root directory, bucket "
            "or package; TFX's ExampleGen reads every split under one input base: put the files under one")
    return common


def leakage(unit: str, texts: dict[str, Iterable[tuple[str, str]]]) -> list[str]:
    """Warnings for records found in two splits: `texts` maps split -> (record text, where it
    is) in split order (train first); each later split is compared with every earlier one, and
    a warning gives the count and the first shared record of each pair."""
    seen: dict[str, dict[bytes, tuple[str, str]]] = {}
    warnings = []
    for split, records in texts.items():
        own: dict[bytes, tuple[str, str]] = {}
        shared: dict[str, list] = {earlier: [] for earlier in seen}
        for text, where in records:
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            own.setdefault(key, (text, where))
            for earlier, keys in seen.items():
                if key in keys:
                    shared[earlier].append((text, where, keys[key][1]))
        for earlier, found in shared.items():
            if found:
                text, where, first = found[0]
                shown = text if len(text) <= _SHOWN_TEXT else text[:_SHOWN_TEXT] + "..."
                warnings.append(f"leakage: {len(found)} {unit} of the {split} split also occur in the {earlier} split "
                                f"(first: {where}, also {first}: {shown!r}); the {split} scores overstate how the "
                                "model does on unseen data: remove them from one of the files")
        seen[split] = own
    return warnings


def described(files: list[str]) -> str:
    return ", ".join(files) if len(files) < 4 else f"{files[0]} and {len(files) - 1} more files"
