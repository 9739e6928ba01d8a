"""CoNLL-style token files and their tag schemes, for the sequence labeling task.

A file holds one token per line, its columns separated by whitespace (`word POS chunk NER` in
CoNLL-2003); a blank line ends a sentence; `-DOCSTART-` lines (document boundaries) are skipped.
`read_conll` returns the sentences with the line each starts on, and raises DataError naming the
file and line for a line with another column count than the file's first, invalid UTF-8, or a
file with no sentence.

Tags are normalized to IOB2 (BIO: every entity starts with B-) from any of:
- IOB1: I- starts an entity unless it continues one of the same type; B- only separates two
  adjacent entities of the same type;
- IOB2/BIO;
- IOBES: S- (a single-token entity) becomes B-, E- (the last token) becomes I-.
An I- that follows nothing of its type is read as IOB1 reads it, the start of an entity, and
counted (`repaired`: in an IOB1 file that is every entity written with I-, which is how IOB1
starts them; in a BIO file each is a tagging slip); a tag with another prefix, or none (other
than O), is a DataError naming it.

`entity_spans` and `span_scores` count entities as the CoNLL scorer does: a prediction is right
only when its start, end and type all match.
"""

from __future__ import annotations

import dataclasses
import re

from rnnflow.components.tasks.base import DataError, decode_text, open_input

DOCSTART = "-DOCSTART-"
OUTSIDE = "O"
_TAG = re.compile(r"^(?P<prefix>[BIES])-(?P<type>.+)$")


@dataclasses.dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    line: int  # 1-based line of its first token


def read_conll(path: str, *, token_column: int = 0, tag_column: int = -1) -> list[Sentence]:
    """The sentences of a CoNLL file, tags as written (see `normalize_tags`)."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start, width = 0, None

    def close():
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags), start))
            tokens.clear()
            tags.clear()

    with open_input(path) as f:  # a local path or a URI (gs://, ...)
        for number, raw in enumerate(iter(f.readline, b""), start=1):
            line = decode_text(path, raw, first_line=number).rstrip("\r\n")
            if number == 1 and line.lstrip().startswith("{"):
                raise DataError(f"{path}: line 1 looks like JSON, not CoNLL columns: for JSON lines set "
                                "data.format: jsonl")
            if not line.strip():
                close()
                continue
            columns = line.split()
            if columns[0] == DOCSTART:
                close()
                continue
            if width is None:
                width = len(columns)
                if max(token_column, tag_column if tag_column >= 0 else -tag_column - 1) >= width:
                    raise DataError(f"{path}: line {number} has {width} columns; the token column {token_column} "
                                    f"and tag column {tag_column} need more")
                if token_column % width == tag_column % width:
                    raise DataError(f"{path}: line {number} has {width} column(s), so the token column "
                                    f"(data.token_column: {token_column}) and the tag column (data.tag_column: "
                                    f"{tag_column}) are the same column; CoNLL lines are `token ... tag`")
            elif len(columns) != width:
                raise DataError(f"{path}: line {number} has {len(columns)} columns, the file's first token line "
                                f"has {width}: {line[:80]!r}")
            if not tokens:
                start = number
            tokens.append(columns[token_column])
            tags.append(columns[tag_column])
    close()
    if not sentences:
        raise DataError(f"{path}: no sentence (an empty file, or only -DOCSTART- and blank lines)")
    return sentences


def normalize_tags(tags: list[str], where: str = "") -> tuple[list[str], int]:
    """(the tags in IOB2, how many I- tags that followed nothing of their type were repaired)."""
    normalized, repaired = [], 0
    previous_type = None  # the entity type the previous token belongs to, None outside
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            normalized.append(OUTSIDE)
            previous_type = None
            continue
        match = _TAG.match(tag)
        if not match:
            raise DataError(f"{where}token {i + 1}: tag {tag!r} is not O or B-, I-, E-, S- followed by a type")
        prefix, kind = match["prefix"], match["type"]
        if prefix in ("B", "S"):
            normalized.append(f"B-{kind}")
        elif previous_type == kind:  # I- or E- continuing the entity
            normalized.append(f"I-{kind}")
        else:  # I- (or E-) after O or another type: the start of an entity, as IOB1 reads it
            normalized.append(f"B-{kind}")
            repaired += prefix == "I" or prefix == "E"
        previous_type = None if prefix in ("E", "S") else kind
    return normalized, repaired


def entity_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end exclusive, type) of each entity of IOB2 `tags`."""
    spans, start, kind = [], None, None
    for i, tag in enumerate([*tags, OUTSIDE]):
        continues = kind is not None and tag == f"I-{kind}"
        if not continues and kind is not None:
            spans.append((start, i, kind))
            start, kind = None, None
        if tag.startswith("B-") or (tag.startswith("I-") and kind is None):
            start, kind = i, tag[2:]
    return spans


def span_scores(true: list[list[str]], predicted: list[list[str]]) -> dict[str, dict[str, float]]:
    """Entity precision, recall and F1, overall and per type, over sentences of IOB2 tags."""
    counts: dict[str, list[int]] = {}  # type -> [correct, predicted, true]
    for true_tags, predicted_tags in zip(true, predicted):
        gold, guessed = set(entity_spans(true_tags)), set(entity_spans(predicted_tags))
        for kind in {s[2] for s in gold | guessed}:
            entry = counts.setdefault(kind, [0, 0, 0])
            entry[0] += len({s for s in gold & guessed if s[2] == kind})
            entry[1] += len({s for s in guessed if s[2] == kind})
            entry[2] += len({s for s in gold if s[2] == kind})

    def scores(correct, guessed, gold):
        precision = correct / guessed if guessed else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    result = {kind: scores(*entry) for kind, entry in sorted(counts.items())}
    result["overall"] = scores(*(sum(entry[i] for entry in counts.values()) for i in range(3)))
    return result
