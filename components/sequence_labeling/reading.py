"""Sentences from the files `data.path` names, as the input check and the ExampleGen read them:
CoNLL-style columns (`conll.read_conll`) or JSONL (one JSON object per line with a token list
and a tag list), tags normalized to IOB2 (`conll.normalize_tags`).

Errors name the file and line: invalid UTF-8, a line of another column count, a JSON line that
is not an object with string lists of equal length, a token that is empty or holds whitespace
(tokens are joined by spaces for `serving_default`), a file with no sentence.
"""

from __future__ import annotations

import dataclasses
import hashlib

from rnnflow.components.sequence_labeling import conll, features
from rnnflow.components.tasks.base import DataError, json_objects


@dataclasses.dataclass
class ReadResult:
    sentences: list[conll.Sentence]  # tags normalized to IOB2
    where: list[str]  # "file line N" of each sentence
    repaired: int  # I- tags that followed nothing of their type (read as IOB1 reads them)


def split_of(tokens: list[str], eval_percent: int) -> str:
    """The split of a sentence: a hash of its tokens, so a repeated sentence never sits in both."""
    digest = hashlib.sha256(features.TOKEN_SEPARATOR.join(tokens).encode("utf-8")).digest()
    return "eval" if int.from_bytes(digest[:8], "big") % 100 < eval_percent else "train"


def read_sentences(data, files: list[str]) -> ReadResult:
    sentences, where, repaired = [], [], 0
    for path in files:
        read = read_jsonl(path, data.tokens_field, data.tags_field) if data.format == "jsonl" else \
            conll.read_conll(path, token_column=data.token_column, tag_column=data.tag_column)
        for sentence in read:
            location = f"{path} line {sentence.line}"
            sentence.tags, fixed = conll.normalize_tags(sentence.tags, f"{location}: ")
            repaired += fixed
            sentences.append(sentence)
            where.append(location)
    return ReadResult(sentences, where, repaired)


def read_jsonl(path: str, tokens_field: str, tags_field: str) -> list[conll.Sentence]:
    sentences = []
    for number, record in json_objects(path, (tokens_field, tags_field)):  # a local path or a URI
        values = []
        for field in (tokens_field, tags_field):
            value = record.get(field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{path}: line {number}: '{field}' must be a list of strings; got "
                                f"{'nothing' if value is None else type(value).__name__}")
            values.append(value)
        tokens, tags = values
        if len(tokens) != len(tags):
            raise DataError(f"{path}: line {number}: {len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            continue
        for i, token in enumerate(tokens):
            if not token or token != "".join(token.split()):
                raise DataError(f"{path}: line {number}: token {i + 1} {token!r} is empty or holds "
                                "whitespace; split it into tokens")
        sentences.append(conll.Sentence(tokens, tags, number))
    if not sentences:
        raise DataError(f"{path}: no sentence (an empty file, or only empty token lists)")
    return sentences
