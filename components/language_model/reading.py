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
words. Training windows hold `window + 1` tokens and start every `window` tokens, so every token
but the first of a split is predicted exactly once; a split's last partial window is dropped. Eval
windows do the same with `task.eval_window` tokens (`schema.eval_window_size`: longer, so the eval
score is not that of restarting from a zero state every `window` tokens). Bytes
invalid in the encoding (UTF-8; `data.encoding` for CSV, read by the one CSV reader every task
uses, with `data.delimiter` and `data.quote_char`) are an error naming the file, line and byte.
"""

from __future__ import annotations

import dataclasses

from rnnflow.components.ingest.csv_input import CsvFormatError, CsvOptions, delimiter_hint, read_records
from rnnflow.components.language_model.schema import eval_window_size
from rnnflow.components.tasks.base import DataError, decode_text, open_input

NEWLINE = "\n"


@dataclasses.dataclass
class Splits:
    tokens: dict[str, list[str]]  # split -> its token stream
    windows: dict[str, list[str]]  # split -> window texts
    characters: int  # characters read


def read_texts(data, path: str) -> list[str]:
    if data.format == "csv":
        return _read_csv_column(data, path)
    with open_input(path) as f:
        text = decode_text(path, f.read())
    if data.format == "text":
        return [text] if text.strip() else []
    return [line for line in text.splitlines() if line.strip()]


def _read_csv_column(data, path: str) -> list[str]:
    """The non-blank `data.text_column` cells, by the one CSV reader every task uses."""
    options = CsvOptions.of(data)
    with open_input(path) as f:
        if not f.read(1):
            return []
        f.seek(0)
        try:
            header, records = read_records(path, f, options)
            if data.text_column not in header:
                f.seek(0)
                raise DataError(f"{path}: column '{data.text_column}' not found; columns: {', '.join(header)}"
                                f"{delimiter_hint(path, f.readline(), options)}")
            index = header.index(data.text_column)
            texts = []
            for record in records:
                if record.invalid_at:  # a model of text learns no stray replacement characters
                    line, offset = record.invalid_at
                    raise DataError(f"{path}: line {line}: invalid {options.encoding} (at byte {offset} of the "
                                    "file); re-encode the file or set data.encoding")
                if record.fields[index].strip():
                    texts.append(record.fields[index])
            return texts
        except CsvFormatError as e:
            raise DataError(str(e)) from None


def tokenize(text: str, tokenizer: str) -> list[str]:
    return list(text) if tokenizer == "char" else text.split()


def join(tokens: list[str], tokenizer: str) -> str:
    return "".join(tokens) if tokenizer == "char" else " ".join(tokens)


def split_texts(config, files: list[str], eval_fraction: float | None = None) -> Splits:
    """`eval_fraction` (default `data.split.eval_fraction`): 0 reads all of it as train (the
    train file when the eval split is its own file), 1 all of it as eval (a predefined split's)."""
    data, task = config.data, config.task
    fraction = data.split.eval_fraction if eval_fraction is None else eval_fraction
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
    windows = {split: cut_windows(tokens, task.window if split == "train" else eval_window_size(task, len(tokens)),
                                  task.tokenizer) for split, tokens in streams.items()}
    for split, tokens in streams.items():
        if not windows[split] and (fraction if split == "eval" else 1 - fraction) > 0:
            described = ", ".join(files) if len(files) < 4 else f"{files[0]} and {len(files) - 1} more files"
            cut = f" (data.split.eval_fraction = {fraction})" if 0 < fraction < 1 else ""
            raise DataError(f"{described}: the {split} split has {len(tokens)} {task.tokenizer} tokens, fewer than "
                            f"one window of task.window + 1 = {task.window + 1}{cut}; add text or lower task.window")
    return Splits(streams, windows, characters)


def cut_windows(tokens: list[str], window: int, tokenizer: str) -> list[str]:
    return [join(tokens[start:start + window + 1], tokenizer)
            for start in range(0, len(tokens) - window, window)]
