"""CSV reading shared by the pre-flight checks and the pipeline's CSV ExampleGen.

One reader for both, so a file that passes the pre-flight check parses the same
way inside the pipeline, and a file that would fail there fails in the check,
naming the file and line. What it does beyond TFX's CsvExampleGen:

- `data.encoding` (any ASCII-compatible codec: utf-8, latin-1, cp1252, ...);
  bytes invalid in that encoding become U+FFFD (the pre-flight check counts
  them and names the first file, line and byte offset).
- A UTF-8 byte-order mark before the header is dropped.
- `data.delimiter` (one character), with a hint when the header looks separated
  by another one; `data.quote_char` (one character, `"` by default).
- Quoted fields may span lines; the record then starts on the line where the
  quote opens, and an unclosed quote is reported on that line.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import sys
from typing import IO, Iterator

BOM = "\ufeff"
# Delimiters looked for when the configured one does not split the header.
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_SNIFF_BYTES = 4096

csv.field_size_limit(sys.maxsize)


class CsvFormatError(ValueError):
    """The file cannot be read as CSV with the configured options; the message names file and line."""


@dataclasses.dataclass(frozen=True)
class CsvOptions:
    encoding: str = "utf-8"
    delimiter: str = ","
    quote_char: str = '"'

    @classmethod
    def of(cls, data) -> "CsvOptions":
        """The options of a `data` section (`rnnflow.pipeline.config.CsvFields`)."""
        return cls(data.encoding, data.delimiter, data.quote_char)


def check_options(options: CsvOptions) -> str | None:
    """Why these options cannot read a CSV file, or None."""
    encoding, delimiter, quote = options.encoding, options.delimiter, options.quote_char
    try:
        codecs.lookup(encoding)
    except LookupError:
        return f"data.encoding: unknown encoding '{encoding}' (e.g. utf-8, latin-1, cp1252)"
    if "a,;\t|\n\"'".encode(encoding, errors="replace") != b"a,;\t|\n\"'":
        return (f"data.encoding: '{encoding}' is not ASCII-compatible; convert the file to UTF-8 "
                "(e.g. iconv -f UTF-16 -t UTF-8)")
    if len(quote) != 1 or quote in "\r\n":
        return f"data.quote_char: {quote!r} must be one character other than a line break"
    if len(delimiter) != 1 or delimiter in f"{quote}\r\n":
        return f"data.delimiter: {delimiter!r} must be one character other than the quote or a line break"
    return None


@dataclasses.dataclass(frozen=True)
class Record:
    line: int  # 1-based line where the record starts (the header is line 1)
    fields: list[str]
    # (line, byte offset in the file) of the first byte invalid in the encoding, or None.
    invalid_at: tuple[int, int] | None = None


def sniff_format(head: bytes) -> str:
    """The likely `data.format` of a file from its first bytes."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "tfrecord"  # gzip; TFRecord files ending in .gz are read compressed
    # A TFRecord starts with an 8-byte little-endian length: zero bytes in any real file.
    if b"\x00" in head:
        return "tfrecord"
    return "csv"


def read_head(path: str) -> bytes:
    """The first bytes of a local file or a URI tf.io.gfile reads."""
    if "://" not in path:
        with open(path, "rb") as f:
            return f.read(_SNIFF_BYTES)
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read(_SNIFF_BYTES)


def format_hint(head: bytes, configured: str) -> str:
    """'; it looks like csv: set data.format: csv' when the first bytes say another format, or ''."""
    likely = sniff_format(head)
    return f"; it looks like {likely}: set data.format: {likely}" if likely != configured else ""


def not_csv_message(path: str, head: bytes) -> str | None:
    """An error message when the file is binary rather than CSV text, or None."""
    likely = sniff_format(head)
    if likely == "csv":
        return None
    return f"{path}: not a CSV text file (binary content; it looks like {likely}): set data.format: {likely}"


def parse_header(path: str, line: bytes, options: CsvOptions) -> list[str]:
    text = line.decode(options.encoding, errors="replace")
    if text.startswith(BOM):
        text = text[len(BOM):]
    if not text.strip():
        raise CsvFormatError(f"{path}: empty CSV file (no header row)")
    return [name.strip() for name in _split(text, options)]


def delimiter_hint(path: str, header_line: bytes, options: CsvOptions) -> str:
    """' (the header looks ';'-separated: set data.delimiter: ';')', or ''."""
    text = header_line.decode(options.encoding, errors="replace")
    counts = {d: text.count(d) for d in _OTHER_DELIMITERS if d != options.delimiter}
    best = max(counts, key=counts.get)
    if counts[best] > text.count(options.delimiter):
        return f" (the header looks {best!r}-separated: set data.delimiter: {best!r})"
    return ""


def read_records(path: str, stream: IO[bytes], options: CsvOptions) -> tuple[list[str], Iterator[Record]]:
    """The header's column names and an iterator over the data records of a binary stream.

    Raises CsvFormatError naming the file and line for binary content, an empty file,
    rows with the wrong number of fields and unclosed quotes.
    """
    header_line = stream.readline()
    message = not_csv_message(path, header_line[:_SNIFF_BYTES])
    if message:
        raise CsvFormatError(message)
    names = parse_header(path, header_line, options)
    return names, _records(path, stream, options, names, len(header_line), header_line)


def _records(path, stream, options, names, offset, header_line) -> Iterator[Record]:
    invalid: dict[int, int] = {}  # line -> file offset of its first invalid byte

    def lines():
        position = offset
        for number, raw in enumerate(stream, start=2):
            try:
                text = raw.decode(options.encoding)
            except UnicodeDecodeError as e:
                text = raw.decode(options.encoding, errors="replace")
                invalid[number] = position + e.start
            position += len(raw)
            yield text

    # Python's csv reader decides where records end (quoted fields may hold line breaks);
    # strict: text after a closing quote is an error, not silently glued to the field.
    reader = csv.reader(lines(), delimiter=options.delimiter, quotechar=options.quote_char, strict=True)
    end = 1  # the header's line
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise CsvFormatError(_quote_message(path, start, reader.line_num + 1, e)) from None
        end = reader.line_num + 1  # the reader counts the lines after the header
        if not fields or (len(fields) == 1 and not fields[0].strip() and len(names) > 1):
            continue  # blank line
        if len(fields) != len(names):
            raise CsvFormatError(_field_count_message(path, start, end, len(fields), names, header_line,
                                                      options))
        first_invalid = next(((n, invalid[n]) for n in range(start, end + 1) if n in invalid), None)
        for n in [n for n in invalid if n <= end]:
            del invalid[n]
        yield Record(start, fields, first_invalid)


def _quote_message(path: str, start: int, end: int, error: csv.Error) -> str:
    if "unexpected end of data" in str(error):
        return (f"{path} line {start}: unclosed quote: the quoted field that starts on this line never "
                "ends (close it, or write a literal quote inside a quoted field as \"\")")
    where = f"line {start}" if start == end else f"lines {start}-{end}"
    message = f"{path} {where}: {error}"
    if start != end:
        return message + (f" (a quoted field opened on line {start} runs over {end - start + 1} lines: "
                          "check for an unclosed quote)")
    return message + " (write a literal quote inside a quoted field as \"\")"


def _field_count_message(path, start, end, count, names, header_line, options) -> str:
    where = f"{path} line {start}" if start == end else f"{path} lines {start}-{end}"
    message = f"{where}: malformed row with {count} fields; the header has {len(names)}"
    if start != end:
        message += (f" (a quoted field opened on line {start} runs over {end - start + 1} lines: "
                    "check for an unclosed quote)")
    elif len(names) == 1 or count == 1:
        message += delimiter_hint(path, header_line, options)
    return message


def _split(text: str, options: CsvOptions) -> list[str]:
    """One CSV record (which may hold line breaks inside quotes) -> its fields."""
    return next(csv.reader([text], delimiter=options.delimiter, quotechar=options.quote_char), [])
