"""The layout of a saved snapshot: one row per line, so a reader holds one row's text at a time.

The file is one JSON document that any JSON reader takes; only where its line breaks fall is fixed.
The first line is the document without its tables, ending in `,"tables":{`. Then, per table, a line
`"name":[`, its rows one per line (each but the last followed by a comma), and a line `]` (`],`
when another table follows). The last line is `}}`.

Reading a whole 100,000-VM file into one buffer before decoding it costs the file's size on top of
its rows (0.8 GiB of 3.5 GiB at its peak, docs/performance.md). A reader that finds anything but
this layout says so (None) and the file is read whole, so every other shape and every error is
handled exactly as before, with its line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

TABLES = b',"tables":{'
#: The header line is the first line; a first line longer than this is not this layout.
MAX_HEADER = 1 << 20
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def encode(header: dict[str, Any], tables: dict[str, list[Any]]) -> Iterator[bytes]:
    """The document `header` (an object with at least one key) plus `"tables": tables`, in pieces,
    laid out one row per line."""
    yield _encode(header)[:-1] + TABLES + b"\n"
    for n, (name, rows) in enumerate(tables.items(), 1):
        yield _encode(name) + b":[\n"
        for start in range(0, len(rows), _BATCH):
            yield b",\n".join(map(_encode, rows[start:start + _BATCH])) + (
                b",\n" if start + _BATCH < len(rows) else b"\n")
        yield b"],\n" if n < len(tables) else b"]\n"
    yield b"}}\n"


def decode(lines: Iterable[bytes]) -> dict[str, Any] | None:
    """The document, when `lines` (without their line breaks) are in the layout above; else None.

    None also when a row is not valid JSON by itself: the whole-file reader then reports where,
    or reads what is valid JSON in another layout.
    """
    it = iter(lines)
    first = next(it, b"")
    if not first.endswith(TABLES) or len(first) > MAX_HEADER:
        return None
    doc = _value(first[:-len(TABLES)] + b"}")
    if not isinstance(doc, dict) or "tables" in doc:
        return None
    tables = _tables(it)
    if tables is None or any(line.strip() for line in it):
        return None
    doc["tables"] = tables
    return doc


def _tables(it: Iterator[bytes]) -> dict[str, list[Any]] | None:
    """Table after table up to the closing `}}`, or None at the first line out of place."""
    tables: dict[str, list[Any]] = {}
    line = next(it, None)
    if line == b"}}":
        return tables
    while line is not None and line.endswith(b":["):
        name = _value(line[:-2])
        if not isinstance(name, str) or name in tables:
            return None
        end = _rows(it, tables.setdefault(name, []))
        if end == b"]":
            return tables if next(it, None) == b"}}" else None
        if end != b"],":
            return None
        line = next(it, None)
    return None


def _rows(it: Iterator[bytes], rows: list[Any]) -> bytes | None:
    """Append one table's rows; return the line that ends it (`]` or `],`), or None when one is out of place."""
    comma = False  # the last row ended in a comma, so another must follow
    for line in it:
        if line in (b"]", b"],"):
            return None if comma else line
        if rows and not comma:
            return None
        comma = line.endswith(b",")
        row = _value(line[:-1] if comma else line)
        if row is _INVALID:
            return None
        rows.append(row)
    return None


_INVALID = object()
_BATCH = 1000


def _value(text: bytes) -> Any:
    try:
        return _decode(text)
    except (msgspec.DecodeError, RecursionError):
        return _INVALID
