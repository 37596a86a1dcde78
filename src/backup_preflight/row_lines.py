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

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

TABLES = b',"tables":{'
#: The header line is the first line; a first line longer than this is not this layout.
MAX_HEADER = 1 << 20
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def encode(header: dict[str, Any], tables: dict[str, Iterable[Any]]) -> Iterator[bytes]:
    """The document `header` (an object with at least one key) plus `"tables": tables`, in pieces,
    laid out one row per line; a table's rows may come from an iterator (as msgspec.Raw text too)."""
    yield _encode(header)[:-1] + TABLES + b"\n"
    for n, (name, rows) in enumerate(tables.items(), 1):
        yield _encode(name) + b":[\n"
        batches, gap = iter(rows), b""
        while batch := list(itertools.islice(batches, _BATCH)):
            yield gap + b",\n".join(map(_encode, batch))
            gap = b",\n"
        yield (b"\n" if gap else b"") + (b"],\n" if n < len(tables) else b"]\n")
    yield b"}}\n"


class NotThisLayout(Exception):
    """The text is not laid out one row per line (or a row is not JSON by itself); read it whole."""


def decode(lines: Iterable[bytes]) -> dict[str, Any] | None:
    """The document, when `lines` (without their line breaks) are in the layout above; else None.

    None also when a row is not valid JSON by itself: the whole-file reader then reports where,
    or reads what is valid JSON in another layout.
    """
    tables: dict[str, list[Any]] = {}
    rows: list[Any] = []
    try:
        header, items = read(lines)
        for item in items:
            if item.__class__ is str:
                rows = tables[item] = []
            else:
                rows.append(item[1])
    except NotThisLayout:
        return None
    header["tables"] = tables
    return header


def read(lines: Iterable[bytes], decode: Callable[[bytes], Any] = _decode
         ) -> tuple[dict[str, Any], Iterator[str | tuple[bytes, Any]]]:
    """The document without its tables, and then, as they are read, each table's name followed by its
    rows as (text, value); raises NotThisLayout, at once or while the rows are read. `decode` makes a row's
    value from its text (as much of it as the reader needs), raising as msgspec does on text that is not JSON."""
    it = iter(lines)
    first = next(it, b"")
    if not first.endswith(TABLES) or len(first) > MAX_HEADER:
        raise NotThisLayout
    header = _value(first[:-len(TABLES)] + b"}")
    if not isinstance(header, dict) or "tables" in header:
        raise NotThisLayout
    return header, _tables(it, decode)


def _tables(it: Iterator[bytes], decode: Callable[[bytes], Any]) -> Iterator[str | tuple[bytes, Any]]:
    """Table after table up to the closing `}}`, and nothing but blank lines after it."""
    names: set[str] = set()
    line, end = next(it, None), b"]"
    while line != b"}}" or end == b"],":
        name = _value(line[:-2]) if line is not None and line.endswith(b":[") else None
        if not isinstance(name, str) or name in names:
            raise NotThisLayout
        names.add(name)
        yield name
        end = yield from _rows(it, decode)
        line = next(it, None)
        if end == b"]" and line != b"}}":
            raise NotThisLayout
    if any(rest.strip() for rest in it):
        raise NotThisLayout


def _rows(it: Iterator[bytes], decode: Callable[[bytes], Any]) -> Iterator[tuple[bytes, Any]]:
    """One table's rows; return the line that ends it, `]` or `],`."""
    comma = None  # None before the first row; then whether the last row ended in a comma
    for line in it:
        if line in (b"]", b"],"):
            if comma:
                break
            return line
        if comma is False:
            break
        comma = line.endswith(b",")
        text = line[:-1] if comma else line
        value = _value(text, decode)
        if value is _INVALID:
            break
        yield text, value
    raise NotThisLayout


_INVALID = object()
_BATCH = 1000


def _value(text: bytes, decode: Callable[[bytes], Any] = _decode) -> Any:
    try:
        return decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return _INVALID
