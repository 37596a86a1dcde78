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
import os
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


def read(lines: Iterable[bytes], decode: Callable[[bytes], Any] = _decode, whole: bool = True
         ) -> tuple[dict[str, Any], Iterator[str | tuple[bytes, Any]]]:
    """The document without its tables, and then, as they are read, each table's name followed by its
    rows as (text, value); raises NotThisLayout, at once or while the rows are read. `decode` makes a row's
    value from its text (as much of it as the reader needs), raising as msgspec does on text that is not JSON.
    Not `whole`: the lines stop where a table would begin (the rest is read by `tables`)."""
    it = iter(lines)
    first = next(it, b"")
    if not first.endswith(TABLES) or len(first) > MAX_HEADER:
        raise NotThisLayout
    header = _value(first[:-len(TABLES)] + b"}")
    if not isinstance(header, dict) or "tables" in header:
        raise NotThisLayout
    return header, tables(it, decode, whole)


def tables(lines: Iterable[bytes], decode: Callable[[bytes], Any] = _decode, whole: bool = True
           ) -> Iterator[str | tuple[bytes, Any]]:
    """Table after table up to the closing `}}`, and nothing but blank lines after it; not `whole`, up to the
    end of the lines, which must come where a table would begin. Lines that start with a table are the rest
    of a file whose beginning another reader reads (`table_near`)."""
    it = iter(lines)
    names: set[str] = set()
    line, end = next(it, None), b"]"
    while line != b"}}" or end == b"],":
        if not whole and line == b"" and next(it, None) is None:
            return
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
#: Bytes searched at a time for a table's line.
_WINDOW = 1 << 23
#: A line that begins a table: in this layout rows begin with anything but a quote.
_TABLE_LINE = b'\n"'


def table_near(fd: int, size: int) -> int | None:
    """Where a table line (`"name":[`) near the middle of the open file starts: there a second reader can take
    over (`tables`). Searched both ways at once, a window at a time, within a quarter of the file's size; None
    when there is none there. It is not checked to be one: the readers do that."""
    middle, reach = size // 2, size // 4
    low, high = max(1, middle - reach), min(size, middle + reach)
    back, ahead = middle, middle
    while back > low or ahead < high:
        if back > low:
            start = max(low, back - _WINDOW)
            found = os.pread(fd, back - start + 1, start).rfind(_TABLE_LINE, 0, back - start + 1)
            if found >= 0:
                return start + found + 1
            back = start
        if ahead < high:
            stop = min(high, ahead + _WINDOW)
            found = os.pread(fd, stop - ahead + 1, ahead).find(_TABLE_LINE)
            if found >= 0:
                return ahead + found + 1
            ahead = stop
    return None


def _value(text: bytes, decode: Callable[[bytes], Any] = _decode) -> Any:
    try:
        return decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return _INVALID
