"""Text for a language model, split into train and eval by contiguous blocks (never by random
lines, which would leak near-duplicate context into eval), then cut into windows.

Formats (`data.format`):
- `text`: each file is one document; its first (1 - eval_fraction) of tokens train, the rest
  evaluate;
- `lines`: one text per line (blank lines skipped); the last eval_fraction of the texts, by
  tokens, evaluate; a split's texts are joined by newlines, so a character model learns where a
  text ends;
- `csv`: one text per row of `data.text_column`, split as `lines`.

Tokens are characters (Unicode code points) or, with `task.tokenizer: word`, whitespace-separated
words. Windows hold `window + 1` tokens and start every `window` tokens, so every token but the
first of a split is predicted exactly once; a split's last partial window is dropped. Invalid
UTF-8 is an error naming the file, line and byte.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys

from rnnflow.components.tasks.base import DataError, decode_text, open_input

NEWLINE = "\n"


@dataclasses.dataclass
class Splits:
    tokens: dict[str, list[str]]  # split -> its token stream
    windows: dict[str, list[str]]  # split -> window texts
    characters: int  # characters read


def read_texts(data, path: str) -> list[str]:
    with open_input(path) as f:
        text = decode_text(path, f.read())
    if data.format == "text":
        return [text] if text.strip() else []
    if data.format == "lines":
        return [line for line in text.splitlines() if line.strip()]
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return []
    if data.text_column not in header:
        raise DataError(f"{path}: column '{data.text_column}' not found; columns: {', '.join(header)}")
    index = header.index(data.text_column)
    texts = []
    for number, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: row {number} has {len(row)} fields, the header {len(header)}")
        if row[index].strip():
            texts.append(row[index])
    return texts


def tokenize(text: str, tokenizer: str) -> list[str]:
    return list(text) if tokenizer == "char" else text.split()


def join(tokens: list[str], tokenizer: str) -> str:
    return "".join(tokens) if tokenizer == "char" else " ".join(tokens)


def split_texts(config, files: list[str]) -> Splits:
    data, task = config.data, config.task
    fraction = data.split.eval_fraction
    streams = {"train": [], "eval": []}
    characters = 0
    documents = []
    for path in files:
        texts = read_texts(data, path)
        if not texts:
            raise DataError(f"{path}: no text (an empty file, or only blank lines)")
        characters += sum(len(t) for t in texts)
        documents.append(texts)
    for texts in documents:
        if data.format == "text":  # one document per file: cut it at the fraction
            tokens = tokenize(texts[0], task.tokenizer)
            cut = round(len(tokens) * (1 - fraction))
            streams["train"] += tokens[:cut]
            streams["eval"] += tokens[cut:]
            continue
        separator = [NEWLINE] if task.tokenizer == "char" else []
        sized = [tokenize(t, task.tokenizer) + separator for t in texts]
        total = sum(len(t) for t in sized)
        seen = 0
        for tokens in sized:  # whole texts, in order, until the train share is used up
            split = "train" if seen < total * (1 - fraction) else "eval"
            streams[split] += tokens
            seen += len(tokens)
    windows = {split: cut_windows(tokens, task.window, task.tokenizer) for split, tokens in streams.items()}
    for split, tokens in streams.items():
        if not windows[split]:
            described = ", ".join(files) if len(files) < 4 else f"{files[0]} and {len(files) - 1} more files"
            raise DataError(f"{described}: the {split} split has {len(tokens)} {task.tokenizer} tokens, fewer than "
                            f"one window of task.window + 1 = {task.window + 1} (data.split.eval_fraction = "
                            f"{fraction}); add text or lower task.window")
    return Splits(streams, windows, characters)


def cut_windows(tokens: list[str], window: int, tokenizer: str) -> list[str]:
    return [join(tokens[start:start + window + 1], tokenizer)
            for start in range(0, len(tokens) - window, window)]
