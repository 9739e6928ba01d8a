"""Pretrained word vectors (`model.pretrained_embeddings`), aligned to the Transform vocabulary.

Users bring their own (nothing ships or downloads): word2vec / GloVe / fastText text format, one
word and its values per line, optionally gzipped (`.gz`), with or without word2vec's
"<words> <dimension>" header line; or a `.npy` matrix with its words, one per line, in
`<same name>.vocab` beside it. The file is read once, keeping only the vocabulary's rows, so a
multi-gigabyte file needs no more memory than the vocabulary.

Each vocabulary word takes the vector of the same word, else of its lowercase form (a tagger's
vocabulary is lowercased); words without one, the padding row aside (zeros), start random with
the found vectors' scale. Coverage goes into the run summary. A dimension other than
`model.embedding_dim`, a malformed line (named by line), mixed dimensions, a truncated file and
a vocabulary no vector covers are errors.
"""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np

from rnnflow.components.tasks.base import DataError, open_input

FIELD = "model.pretrained_embeddings"


@dataclasses.dataclass
class Vectors:
    matrix: np.ndarray  # [ids, dim] float32: the embedding's initial rows
    coverage: dict  # what the run summary records


def aligned_vectors(path: str, words: list[str], *, first_id: int, size: int, dim: int, seed: int) -> Vectors:
    """Rows for ids 0..size-1 where word `words[i]` has id `first_id + i` (ids below `first_id`
    are reserved: padding; ids past the vocabulary are OOV buckets, random)."""
    wanted: dict[str, int] = {}
    for i, word in enumerate(words):
        wanted.setdefault(word, first_id + i)
    found: dict[int, np.ndarray] = {}
    lowered: dict[int, np.ndarray] = {}
    file_words = 0
    for word, vector in _read(path, dim):
        file_words += 1
        if word in wanted:
            found.setdefault(wanted[word], vector)
        elif word.lower() in wanted and wanted[word.lower()] not in lowered:
            lowered[wanted[word.lower()]] = vector
    for index, vector in lowered.items():
        found.setdefault(index, vector)
    if not found:
        raise DataError(f"{FIELD}: {path}: none of its {file_words} words is in the vocabulary of "
                        f"{len(words)} words (first: {', '.join(words[:5])}): a vectors file for another "
                        "language or tokenization?")
    rows = np.stack(list(found.values()))
    scale = float(rows.std()) or 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(size, dim)).astype(np.float32)
    matrix[:first_id] = 0.0
    for index, vector in found.items():
        matrix[index] = vector
    return Vectors(matrix, {"path": path, "file_words": file_words, "vocabulary": len(words),
                            "covered": len(found), "coverage": round(len(found) / max(1, len(words)), 4)})


def _read(path: str, dim: int):
    if path.endswith(".npy"):
        yield from _read_npy(path, dim)
        return
    try:
        with open_input(path) as raw:
            stream = gzip.open(raw, "rb") if path.endswith(".gz") else raw
            width = None
            for number, line in enumerate(stream, start=1):
                fields = line.rstrip(b"\r\n").decode("utf-8", errors="replace").rstrip(" ").split(" ")
                if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    continue  # word2vec / fastText header: "<words> <dimension>"
                if len(fields) < 2 or not fields[0]:
                    if not line.strip():
                        continue
                    raise DataError(f"{FIELD}: {path} line {number}: expected a word and its values")
                values = fields[1:]
                if width is None:
                    width = len(values)
                    if width != dim:
                        raise DataError(f"{FIELD}: {path} has {width}-dimensional vectors (line {number}); "
                                        f"model.embedding_dim is {dim}: set model.embedding_dim: {width}")
                elif len(values) != width:
                    raise DataError(f"{FIELD}: {path} line {number}: {len(values)} values, the file's first vector "
                                    f"has {width} (a truncated file, or a word with spaces?)")
                try:
                    vector = np.asarray(values, dtype=np.float32)
                except ValueError:
                    bad = next(v for v in values if not _is_number(v))
                    raise DataError(f"{FIELD}: {path} line {number}: {bad!r} is not a number") from None
                yield fields[0], vector
    except (EOFError, gzip.BadGzipFile, OSError) as e:
        raise DataError(f"{FIELD}: {path}: cannot read to the end ({e}): a truncated or corrupt file") from None


def _read_npy(path: str, dim: int):
    vocabulary = os.path.splitext(path)[0] + ".vocab"
    try:
        with open_input(path) as f:
            matrix = np.load(f, allow_pickle=False)
        with open_input(vocabulary) as f:
            words = f.read().decode("utf-8").splitlines()
    except FileNotFoundError as e:
        raise DataError(f"{FIELD}: {path}: needs its words, one per line, in {vocabulary} ({e.strerror})") from None
    except ValueError as e:
        raise DataError(f"{FIELD}: {path}: not a readable .npy matrix ({e})") from None
    if matrix.ndim != 2 or len(matrix) != len(words):
        raise DataError(f"{FIELD}: {path} holds a {'x'.join(map(str, matrix.shape))} array; {vocabulary} has "
                        f"{len(words)} words: expected one row per word")
    if matrix.shape[1] != dim:
        raise DataError(f"{FIELD}: {path} has {matrix.shape[1]}-dimensional vectors; model.embedding_dim is {dim}: "
                        f"set model.embedding_dim: {matrix.shape[1]}")
    for word, row in zip(words, matrix):
        yield word, row.astype(np.float32)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
