"""Snapshots: the raw rows exactly as Azure returned them, plus scope and collection errors.

A snapshot is the only input of everything downstream, so a saved one replays to identical
results. Row types are kept in Resource Graph's lowercase whatever case a file spells them in.
Three input shapes are accepted: our own format (`.json` / `.json.gz`), the JSON that
`az graph query` prints (`{"data": [...]}`, objectArray or table format) and a bare list of rows.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec

from backup_preflight import heap, row_lines
from backup_preflight.atomic import atomic_writer
from backup_preflight.digest import BackgroundSha256
from backup_preflight.errors import InputError, Problem, gather, pointer
from backup_preflight.gcpause import gc_paused
from backup_preflight.probes import is_probe_output, to_row
from backup_preflight.text import redact
from backup_preflight.timestamps import latest, parse_instant

SCHEMA_VERSION = 1

#: Resource Graph tables, and the row types that belong to each when a file does not say.
GRAPH_TABLES = ("resources", "recoveryservicesresources", "guestconfigurationresources", "resourcecontainers")
#: Tables filled from other APIs or probes, keyed by the VM id they describe.
SIDE_TABLES = ("instanceviews", "guestfacts", "metrics")
KNOWN_TABLES = GRAPH_TABLES + SIDE_TABLES
SUBSCRIPTION_TYPE = "microsoft.resources/subscriptions"
RESOURCE_GROUP_TYPE = "microsoft.resources/subscriptions/resourcegroups"
#: Row types of resourcecontainers: what names and tags the places VMs live in (management groups too).
CONTAINER_TYPES = (SUBSCRIPTION_TYPE, RESOURCE_GROUP_TYPE, "microsoft.management/managementgroups")


def table_for_type(resource_type: str) -> str:
    """The Resource Graph table a row of this `type` (in any case) lives in.

    Only what is inside a vault (protected items, backup policies, jobs) is in
    recoveryservicesresources; the vaults themselves are in `resources`, so a file listing vaults
    says nothing about which VMs are protected.
    """
    t = resource_type.lower()
    if t.startswith(("microsoft.recoveryservices/vaults/", "microsoft.dataprotection/backupvaults/")):
        return "recoveryservicesresources"
    if t.startswith("microsoft.guestconfiguration/"):
        return "guestconfigurationresources"
    if t in CONTAINER_TYPES:
        return "resourcecontainers"
    return "resources"


@dataclass(slots=True)
class SourceFile:
    """One file read into a snapshot, with the SHA-256 of the bytes actually read."""

    path: str
    sha256: str
    kind: str  # "snapshot", "az-graph-query", "rows"


@dataclass(slots=True)
class Snapshot:
    """Raw tables, the collection scope and the errors that make parts of it incomplete. A live collection may
    keep a table's rows as their JSON text (`compact`) until they are written out or `materialize`d."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    collected_at: str | None = None
    sources: list[SourceFile] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """One hash for all inputs: of the single file, or of the list of file hashes in order."""
        if len(self.sources) == 1:
            return self.sources[0].sha256
        joined = "\n".join(f"{s.sha256}  {Path(s.path).name}" for s in self.sources)
        return hashlib.sha256(joined.encode()).hexdigest()

    def table(self, name: str) -> list[dict[str, Any]] | None:
        """Rows of a table, or None when the table was not collected at all."""
        return self.tables.get(name)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "collectedAt": self.collected_at,
            "scope": self.scope,
            "tables": self.tables,
            "errors": self.errors,
        }
        if self.queries:
            doc["queries"] = self.queries
        return doc

    def materialize(self) -> None:
        """Decode the rows a live collection kept as text (`compact`) in place, a row at a time, the text's
        memory given back as it goes, so that text and dicts are never both held whole."""
        decoded = 0
        for rows in self.tables.values():
            for i, row in enumerate(rows):
                if row.__class__ is msgspec.Raw:
                    rows[i] = _DECODE_ROW(row)
                    decoded += 1
                    if decoded % _GIVE_BACK_EVERY == 0:
                        heap.give_back()
        heap.give_back()

    def merge(self, *others: Snapshot) -> None:
        """Add other snapshots' rows in order; a row whose id repeats in the same table replaces the older.

        Each table's rows are indexed by key at most once per call and the index kept up to date, so
        merging many files is linear in their rows. A file's rows that go into an empty table are
        taken as they are (as one file's repeats are).
        """
        positions: dict[str, dict[str, int]] = {}
        for other in others:
            for name, rows in other.tables.items():
                mine = self.tables.setdefault(name, [])
                if not mine:
                    mine.extend(rows)
                    continue
                position = positions.get(name)
                if position is None:
                    position = positions[name] = {_row_key(r): i for i, r in enumerate(mine)}
                for row in rows:
                    key = _row_key(row)
                    if key in position:
                        mine[position[key]] = row
                    else:
                        position[key] = len(mine)
                        mine.append(row)
            self._merge_metadata(other)

    def _merge_metadata(self, other: Snapshot) -> None:
        for key, value in other.scope.items():
            have = self.scope.setdefault(key, list(value) if isinstance(value, list) else value)
            if have is not value and have != value:  # a name alone (a string) joins the list as one more
                joined = have if isinstance(have, list) else [have]
                joined.extend(v for v in (value if isinstance(value, list) else [value]) if v not in joined)
                self.scope[key] = joined
        self.errors.extend(other.errors)
        self.queries.update(other.queries)
        self.collected_at = latest((self.collected_at, other.collected_at))
        self.sources.extend(other.sources)


def _row_key(row: dict[str, Any]) -> str:
    rid = row.get("id")
    key = rid.lower() if isinstance(rid, str) else repr(rid)
    # Metrics rows repeat the VM id once per metric name.
    name = row.get("name") if "data" in row else None
    return f"{key}|{name}" if isinstance(name, str) else key


@dataclass(slots=True)
class Limits:
    """Bounds on every JSON input, so no file can exhaust memory or hang the run (--max-input-size)."""

    #: Bytes of JSON text a file may hold once decompressed; real snapshots are far below (100,000
    #: VMs is about 0.7 GiB).
    max_input_size: int = 4 * 1024**3


DEFAULT_MAX_INPUT = Limits().max_input_size
LIMITS = Limits()
_CHUNK = 1 << 20
_GZIP = b"\x1f\x8b"
#: File kinds by stat mode, for the error that refuses them.
_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def _open(path: Path, whole: bool = True) -> BinaryIO:
    """The file opened for reading; regular files only, refused at once when larger than the bound
    (unless it is read a row at a time, not `whole`: then each row is bounded)."""
    label = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError.one(label, "", "no such file") from None
    except OSError as exc:
        raise InputError.one(label, "", f"cannot read file: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    kind = next((name for test, name in _NOT_REGULAR if test(info.st_mode)), None)
    if kind or not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError.one(label, "", f"is {kind or 'not a regular file'}; expected a JSON file")
    if whole and info.st_size > LIMITS.max_input_size:
        os.close(fd)
        raise _too_large(label)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def open_rows(path: Path) -> BinaryIO:
    """The file opened to be read a row at a time (RowReader): each row is bounded, not the file."""
    return _open(path, whole=False)


def is_gzip(fd: int) -> bool:
    return os.pread(fd, 2, 0) == _GZIP


def _too_large(label: str) -> InputError:
    return InputError.one(label, "", f"larger than {_size(LIMITS.max_input_size)} (--max-input-size)")


def _text_chunks(path: Path, digest: Any) -> Iterator[bytes]:
    """The file's text in chunks as it is read, gunzipped when it is gzip, never beyond the limit;
    `digest` is updated with the bytes as stored."""
    with _open(path) as handle:
        yield from _chunks(handle, str(path), digest, LIMITS.max_input_size)


def _chunks(handle: BinaryIO, label: str, digest: Any, limit: int | None, end: int | None = None) -> Iterator[bytes]:
    """The open file's text from where it is, as `_text_chunks`; unbounded when `limit` is None (each line is
    then bounded by `_lines`). With `end` (a plain file), the text stops there, and the rest is only hashed."""
    stored = iter(lambda: handle.read(_CHUNK), b"") if end is None else _up_to(handle, end, digest)
    first = next(stored, b"")
    digest.update(first)
    hashed = (digest.update(chunk) or chunk for chunk in stored)
    if first[:2] == _GZIP:
        yield from _inflate(itertools.chain([first], hashed), label, limit)
        return
    size = len(first)
    yield first
    for chunk in hashed:
        size += len(chunk)
        if limit is not None and size > limit:
            raise _too_large(label)
        yield chunk


def _up_to(handle: BinaryIO, end: int, digest: Any) -> Iterator[bytes]:
    """The file's bytes from where it is up to `end`; then the rest goes to `digest` alone."""
    while (left := end - handle.tell()) > 0 and (chunk := handle.read(min(_CHUNK, left))):
        yield chunk
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)


def _from(fd: int, start: int) -> Iterator[bytes]:
    """The file's bytes from `start` to its end, read at their places (the file's position is another reader's)."""
    while chunk := os.pread(fd, _CHUNK, start):
        yield chunk
        start += len(chunk)


def _inflate(stored: Iterable[bytes], label: str, limit: int | None) -> Iterator[bytes]:
    """Gzip members one after another (a gzip file may hold several), inflated in bounded chunks;
    what follows the last member without the gzip magic number is ignored, as gzip does."""
    source = iter(stored)
    member = zlib.decompressobj(wbits=31)
    pending = b""
    size = 0
    try:
        while pending or (pending := next(source, b"")):
            chunk = member.decompress(pending, _CHUNK)
            pending = member.unconsumed_tail
            size += len(chunk)
            if limit is not None and size > limit:
                raise InputError.one(label, "", f"decompresses to more than {_size(limit)} (--max-input-size)")
            if chunk:
                yield chunk
            if member.eof:
                pending = member.unused_data
                while len(pending) < 2 and (more := next(source, b"")):
                    pending += more
                if pending[:2] != _GZIP:
                    return
                member = zlib.decompressobj(wbits=31)
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except (zlib.error, EOFError) as exc:
        raise InputError.one(label, "", f"not a readable gzip file: {exc}") from None


def _lines(chunks: Iterable[bytes], label: str, at: list[int] | None = None, start: int = 0) -> Iterator[bytes]:
    """The text's lines without their line breaks, each bounded by --max-input-size; stops early when
    the first line outgrows a header (the caller then reads the file whole). With `at`, `at[0]` is where
    in the text the line last given starts (the text starting at `start`)."""
    pending: list[bytes] = []
    held = 0
    number = 1
    limit = LIMITS.max_input_size
    for chunk in chunks:
        *ended, rest = chunk.split(b"\n")
        if ended:
            ended[0] = b"".join([*pending, ended[0]])
            pending, held = [], 0
        pending.append(rest)
        held += len(rest)
        if number == 1 and (len(ended[0]) if ended else held) > min(row_lines.MAX_HEADER, limit):
            yield b""  # not the row-per-line layout: read whole, bounded whole
            return
        if held > limit or max(map(len, ended), default=0) > limit:
            _long_line(label, number + next((i for i, line in enumerate(ended) if len(line) > limit), len(ended)),
                       limit)
        if at is None:
            yield from ended
        else:
            for line in ended:
                at[0] = start
                yield line
                start += len(line) + 1
        number += len(ended)
    if at is not None:
        at[0] = start
    yield b"".join(pending)


def _long_line(label: str, number: int, limit: int) -> None:
    raise InputError.one(label, f"line {number}", f"longer than {_size(limit)} (--max-input-size)")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def read_json(path: Path) -> tuple[Any, str]:
    """Parse a JSON file (gzipped or not); return it with the SHA-256 of the bytes actually read."""
    data, digest = _read_text(path)
    return parse_json(data, str(path)), digest


def read_written_json(path: Path) -> tuple[Any, str]:
    """A file people write by hand (a policy, parameters, exemptions), read as `read_json` does; a key given
    twice in one object is an input error. Parsers keep the last silently, so the other, often the one meant
    (a second `assert` pasted below the first, an exemption's `expiresOn` twice), would be lost without a word."""
    data, digest = _read_text(path)
    doc = parse_json(data, str(path))
    repeated = _repeated_key(data)
    if repeated is not None:
        key, place = repeated
        raise InputError.one(str(path), pointer(place),
                             f"the key {json.dumps(key)} is given twice in this object; JSON keeps only the last, "
                             "so the other would be lost without a word: keep one")
    return doc, digest


def _read_text(path: Path) -> tuple[bytes, str]:
    """A JSON file's text (gunzipped), and the SHA-256 of the bytes read: one read for both."""
    digest = hashlib.sha256()
    return b"".join(_text_chunks(path, digest)), digest.hexdigest()


def _repeated_key(data: bytes) -> tuple[str, list[str | int]] | None:
    """The first key (in the order objects close) given twice in one object, with the path to that object;
    None when no object repeats a key. `data` has been parsed already: it is valid JSON."""
    found: list[tuple[str, dict[str, Any]]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(items)
        if len(built) < len(items) and not found:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    found.append((key, built))
                    break
                seen.add(key)
        return built

    doc = json.loads(data, object_pairs_hook=pairs)
    if not found:
        return None
    key, holder = found[0]
    return key, _path_to(doc, holder) or []


def _path_to(node: Any, target: dict[str, Any]) -> list[str | int] | None:
    """The keys and indexes from `node` down to the object `target` itself (by identity)."""
    if node is target:
        return []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for step, child in children:
        below = _path_to(child, target)
        if below is not None:
            return [step, *below]
    return None


def parse_json(data: bytes, label: str, first_line: int = 1) -> Any:
    """Parse strict JSON, turning any problem into an InputError that names line and column (the text
    starting on line `first_line` of the file, as a row read a row at a time does).

    msgspec parses a 900 MB snapshot in about 60 % of the CPU time of the standard library, with
    the same memory (docs/performance.md). On malformed input the standard library parses again,
    only to say where the error is in lines and columns. Both are strict: no NaN or Infinity, no
    lone UTF-16 surrogate, and nesting is bounded by the parsers' recursion limit (about 1,000
    levels), which raises before any of our code could recurse on it.
    """
    try:
        with gc_paused():
            return msgspec.json.decode(data)
    except RecursionError:
        return _raise(label, "", "nested too deeply (more than about 1,000 levels of arrays and objects)")
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    lone = _LONE_SURROGATE.search(data)
    if lone:
        group = 1 if lone[1] else 2
        return _raise(label, _line_col(data, lone.start(group), first_line),
                      f"lone UTF-16 surrogate {lone[group].decode()} (half of a character), not valid text")
    try:
        return json.loads(data, parse_constant=_not_json, parse_float=_finite)
    except UnicodeDecodeError as exc:
        return _raise(label, f"byte {exc.start}", "not UTF-8 text, expected JSON")
    except json.JSONDecodeError as exc:
        reason = "file is empty, expected JSON" if not data.strip() else f"not valid JSON: {exc.msg}"
        return _raise(label, f"line {exc.lineno + first_line - 1} column {exc.colno}", reason)
    except _NotJson as exc:
        found = re.search(rb"(?<![\w.])" + re.escape(exc.token.encode()) + rb"(?![\w.])", data)
        return _raise(label, _line_col(data, found.start(), first_line) if found else "",
                      f"{exc.token} is not a JSON number (strict JSON has no NaN or Infinity)")
    except RecursionError:
        return _raise(label, "", "nested too deeply (more than about 1,000 levels of arrays and objects)")


#: A \\uD800-\\uDFFF escape not part of a high+low pair (an odd number of backslashes before it).
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})(?<!\\)(?:\\\\)*(\\u[dD][c-fC-F][0-9a-fA-F]{2})")


class _NotJson(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _not_json(token: str) -> Any:
    raise _NotJson(token)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(text)
    return value


def _line_col(data: bytes, offset: int, first_line: int = 1) -> str:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + first_line
    return f"line {line} column {offset - line_start + 1}"


def _raise(label: str, place: str, reason: str) -> Any:
    raise InputError.one(label, place, reason)


def load(path: Path) -> Snapshot:
    """Read one snapshot file of any accepted shape, validating what downstream relies on."""
    label = str(path)
    doc, digest = _read_row_lines(path) or read_json(path)
    snap = from_document(doc, label)
    kind = "snapshot" if isinstance(doc, dict) and "tables" in doc else "probe-output" if is_probe_output(doc) else (
        "az-graph-query" if isinstance(doc, dict) else "rows")
    snap.sources = [SourceFile(path=label, sha256=digest, kind=kind)]
    return snap


def _read_row_lines(path: Path) -> tuple[dict[str, Any], str] | None:
    """The document and its SHA-256 when the file is laid out one row per line (as `save` writes it),
    read a line at a time; None when it is not, and it is read whole."""
    digest = hashlib.sha256()
    with gc_paused():
        doc = row_lines.decode(_lines(_text_chunks(path, digest), str(path)))
    return None if doc is None else (doc, digest.hexdigest())


class _Head(msgspec.Struct):
    """What checking and placing a row reads of it; the rest is decoded when the row is used."""

    id: Any = None
    type: Any = None
    properties: msgspec.Raw = msgspec.Raw()
    instanceView: msgspec.Raw = msgspec.Raw()


#: A row's head, or the row itself when it is not an object (which its check then reports).
_HEAD = msgspec.json.Decoder(_Head | list | str | int | float | bool | None)  # type: ignore[arg-type]


def _head(text: bytes) -> Any:
    """The row's head; raises like a full decode on text that is not JSON (the head's decoder skips the
    other fields without checking that their strings are UTF-8, so that is checked here)."""
    if not text.isascii():
        text.decode()
    return _HEAD.decode(text)


#: A live collection keeps its rows as their JSON text until it writes them out: a third of the memory of the
#: dicts the SDK decodes a page to (docs/performance.md), and the same bytes `write` would encode.
_ENCODE_ROW = msgspec.json.Encoder().encode
_DECODE_ROW = msgspec.json.Decoder().decode
_GIVE_BACK_EVERY = 50_000  # rows decoded between two heap.give_back


def compact_row(row: Any) -> msgspec.Raw:
    """The row as its JSON text."""
    return msgspec.Raw(_ENCODE_ROW(row))


def compact(rows: list[Any]) -> list[Any]:
    """The rows as their JSON text (msgspec.Raw)."""
    return list(map(compact_row, rows))


def as_row(row: Any) -> Any:
    """The row as `load` gives it, whether `compact` kept it as text or not."""
    return _DECODE_ROW(row) if row.__class__ is msgspec.Raw else row


def row_head(row: Any) -> tuple[Any, Any]:
    """The row's `id` and `type`, whether kept as text or not; None for what it lacks or is not an object."""
    if row.__class__ is msgspec.Raw:
        head = _HEAD.decode(row)
        return (head.id, head.type) if head.__class__ is _Head else (None, None)
    return (row.get("id"), row.get("type")) if isinstance(row, dict) else (None, None)


class RowReader:
    """A snapshot file laid out one row per line (as `save` writes it), read a row at a time and each row
    checked as `load` checks it; then --max-input-size bounds each row rather than the whole file.

    A row is decoded only as far as its check and its place need (`_Head`), five times faster than
    whole; a row that fails the quick check is decoded whole and checked as `load` checks it, so the
    problems are the same. Raises row_lines.NotThisLayout, at once or while the rows are read, for any
    other layout. `snapshot` is the file without its rows (scope, errors, queries, collectedAt, source,
    every table empty), complete once `rows()` is used up; `tables` names the tables in file order,
    lowercase, and `counts` their rows.

    The file stays open (`handle`, until `close`): when it is not gzip (`plain`), a row's text can be read
    again from it at the place `rows()` gives, from the very file that was hashed; `changed()` says
    whether it was written to since it was opened.

    A plain file may be read by two: this reader up to `end`, where a table starts (`row_lines.table_near`;
    the whole file is hashed all the same), and another from there (`tail`).
    """

    def __init__(self, path: Path, handle: BinaryIO | None = None, end: int | None = None) -> None:
        """`handle`: the file already open, read from its start (an unnamed temporary file, `path` its label)."""
        self.label = str(path)
        self.handle = _open(path, whole=False) if handle is None else handle
        self.handle.seek(0)
        self._digest: BackgroundSha256 | None = BackgroundSha256()
        self._count_from_start()
        try:
            self._opened = _version(self.handle)
            self.plain = not is_gzip(self.handle.fileno())
            self._at = [0]
            header, self._items = row_lines.read(
                _lines(_chunks(self.handle, self.label, self._digest, None, end), self.label, self._at), _head,
                whole=end is None)
        except BaseException:
            self.close()
            raise
        self.snapshot = _from_snapshot({**header, "tables": {}}, self.label)

    @classmethod
    def tail(cls, label: str, handle: BinaryIO, start: int) -> RowReader:
        """The rows of an open plain file from `start`, where a table starts, to its end: only `rows()`, checked
        as ever, their lines counted from the table's line as line 2; nothing hashed, no header."""
        reader = cls.__new__(cls)
        reader.label, reader.handle, reader._digest, reader.plain = label, handle, None, True
        reader._count_from_start()
        reader._at = [start]
        reader._items = row_lines.tables(_lines(_from(handle.fileno(), start), label, reader._at, start), _head)
        return reader

    def _count_from_start(self) -> None:
        self.tables: list[str] = []
        #: The tables' names as the file writes them, and the line of the last row read (or table begun).
        self.written: list[str] = []
        self.line = 1
        self.counts: dict[str, int] = {}

    def add_tables(self, tables: list[str], written: list[str], counts: dict[str, int]) -> list[int]:
        """Count the tables a second reader read after this one's (`tail`: their names, as written, and rows) as
        this reader's; their numbers here. A table written under one name by both is another layout, as it is
        to one reader (NotThisLayout)."""
        if set(self.written) & set(written):
            raise row_lines.NotThisLayout
        self.written += written
        for name in tables:
            if name not in self.counts:
                self.tables.append(name)
                self.counts[name] = 0
            self.counts[name] += counts[name]
        self._list_tables()
        return [self.tables.index(name) for name in tables]

    def _list_tables(self) -> None:
        self.snapshot.tables = {name: [] for name in self.tables}

    def changed(self) -> bool:
        return _version(self.handle) != self._opened

    def close(self) -> None:
        if self._digest is not None:
            self._digest.close()
        self.handle.close()

    def rows(self) -> Iterator[tuple[int, bytes, str, str | None, int, int]]:
        """(the table's number in `tables`, the row's text, its id, its type in lowercase or None in a table
        of side rows, its line, where its text starts in the file's text), each row checked; every problem
        of the file is raised together once the last row is read. However the reading ends, the hashing
        thread has ended with it."""
        try:
            yield from self._rows()
        finally:
            if self._digest is not None:
                self._digest.close()

    def _rows(self) -> Iterator[tuple[int, bytes, str, str | None, int, int]]:
        at = self._at
        problems: list[Problem] = []
        check: RowCheck = _check_side_row
        table, written, i, graph, views = 0, "", 0, False, False
        line = 1  # the header; then a table's name, its rows, its closing line
        for item in self._items:
            line += 1
            if item.__class__ is str:
                line += 1 if self.tables else 0
                written, i = str(item), 0
                self.written.append(written)
                name = written.lower()
                if name not in self.counts:
                    self.tables.append(name)
                    self.counts[name] = 0
                table, check = self.tables.index(name), row_check(name)
                graph, views = name in GRAPH_TABLES, name == "instanceviews"
                continue
            text, head = item  # type: ignore[misc]
            if _fine(head, graph, views):
                yield table, text, head.id, head.type.lower() if graph else None, line, at[0]
            else:
                row = parse_json(text, self.label, line)  # says where, as the whole file's reader would
                if check(row, self.label, f"/tables/{written}/{i}", problems):
                    yield table, text, row["id"], row["type"] if graph else None, line, at[0]
            i += 1
            self.counts[self.tables[table]] += 1
        if problems:
            raise InputError(problems)
        self.line = line
        if self._digest is not None:
            self._list_tables()
            self.snapshot.sources = [SourceFile(self.label, self._digest.hexdigest(), "snapshot")]


def _version(handle: BinaryIO) -> tuple[int, int]:
    """What changes when an open file is written to: its size and modification time."""
    info = os.fstat(handle.fileno())
    return info.st_size, info.st_mtime_ns


def _fine(head: Any, graph: bool, views: bool) -> bool:
    """The quick check: true only of a row that `row_check` passes too."""
    if head.__class__ is not _Head or head.id.__class__ is not str or not head.id:
        return False
    if graph:
        props = memoryview(head.properties)
        return head.type.__class__ is str and bool(head.type) and (
            not props or props[:1] == b"{" or props == b"null")
    return not views or memoryview(head.instanceView)[:1] == b"{"


def load_many(paths: list[Path]) -> Snapshot:
    """Read and merge several snapshot files; every file's problems are reported together."""
    merged = Snapshot()
    merged.merge(*gather(paths, load))
    return merged


def from_document(doc: Any, label: str) -> Snapshot:
    """Build a Snapshot from parsed JSON of any accepted shape."""
    if is_probe_output(doc):
        return _from_probe_output(doc if isinstance(doc, list) else [doc], label, isinstance(doc, list))
    if isinstance(doc, list):
        return _from_rows(doc, label, "")
    if not isinstance(doc, dict):
        raise InputError.one(label, "/", f"expected a JSON object or array, found {json_kind(doc)}")
    if "tables" in doc:
        return _from_snapshot(doc, label)
    if "data" in doc:
        data = doc["data"]
        if isinstance(data, dict) and "columns" in data and "rows" in data:
            data = _table_format_rows(data, label)
        if not isinstance(data, list):
            raise InputError.one(label, "/data", f"expected an array of rows, found {json_kind(data)}")
        snap = _from_rows(data, label, "/data")
        missing = _truncation(doc, len(data))
        if missing:
            snap.errors.append({"scope": label, "table": ", ".join(sorted(snap.tables)) or "resources",
                                "status": "truncated",
                                "message": f"az graph query output is truncated: {missing}; the rows of the "
                                           "other pages were never read, so this file is not a complete "
                                           "estate (fetch every page, or use backup-preflight collect)"})
        return snap
    raise InputError.one(
        label, "/", "not a backup-preflight snapshot (no 'tables') nor az graph query output (no 'data')")


def _truncation(doc: dict[str, Any], rows: int) -> str | None:
    """Why an az graph query / Resource Graph response holds only part of its result, else None.

    The CLI prints `skip_token` and `total_records`, the REST API `$skipToken` and `totalRecords`;
    a response with fewer rows than the total, or a continuation token and no total, is one page.
    """
    total = next((doc[k] for k in ("total_records", "totalRecords") if _is_count(doc.get(k))), None)
    token = next((doc[k] for k in ("skip_token", "$skipToken", "skipToken") if doc.get(k)), None)
    flagged = str(doc.get("resultTruncated", doc.get("result_truncated"))).lower() == "true"
    if total is not None and rows < total:
        return f"{rows} of {total} rows" + (" (a skip_token names the next page)" if token else "")
    if token and total is None:
        return f"{rows} rows and a skip_token naming a next page"
    if flagged:
        return f"{rows} rows, and Resource Graph marked the result truncated (resultTruncated)"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _table_format_rows(data: dict[str, Any], label: str) -> list[dict[str, Any]]:
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and "name" in c for c in columns):
        raise InputError.one(label, "/data/columns", "expected an array of {name, type} columns")
    names = [c["name"] for c in columns]
    rows = []
    for i, values in enumerate(data["rows"]):
        if not isinstance(values, list) or len(values) != len(names):
            raise InputError.one(label, f"/data/rows/{i}", f"expected an array of {len(names)} values")
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def _from_rows(rows: list[Any], label: str, pointer: str) -> Snapshot:
    problems: list[Problem] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        where = f"{pointer}/{i}"
        if isinstance(row, dict) and "type" not in row and isinstance(row.get("id"), str):
            inferred = type_from_id(row["id"])  # a query that projected `id` but not `type`
            if inferred:
                row["type"] = inferred
        if _check_graph_row(row, label, where, problems):
            _fold_type(row)
            tables.setdefault(table_for_type(row["type"]), []).append(row)
    if problems:
        raise InputError(problems)
    return Snapshot(tables=tables)


def _from_probe_output(docs: list[dict[str, Any]], label: str, listed: bool) -> Snapshot:
    """What `backup-preflight probe-script` scripts print (one object or a list): `guestfacts` rows."""
    place = [f"/{i}" if listed else "" for i in range(len(docs))]
    problems = [Problem(label, f"{place[i]}/vmId" if "vmId" in d else place[i] or "/",
                        "probe output names no VM: 'vmId' must be the VM's ARM id (set BP_VM_ID where the "
                        "instance metadata service is not reachable)")
                for i, d in enumerate(docs) if not isinstance(d.get("vmId"), str) or not d["vmId"]]
    if problems:
        raise InputError(problems)
    return Snapshot(tables={"guestfacts": [to_row(d) for d in docs]})


def _from_snapshot(doc: dict[str, Any], label: str) -> Snapshot:
    version = doc.get("schemaVersion")
    if not _is_count(version) or version != SCHEMA_VERSION:  # true == 1 in Python, and is no version
        raise InputError.one(label, "/schemaVersion",
                             f"unsupported snapshot schemaVersion {json.dumps(version)}, expected {SCHEMA_VERSION}")
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise InputError.one(label, "/tables", f"expected an object of tables, found {json_kind(tables)}")
    problems: list[Problem] = []
    for name, rows in tables.items():
        where = f"/tables/{name}"
        if not isinstance(rows, list):
            problems.append(Problem(label, where, f"expected an array of rows, found {json_kind(rows)}"))
            continue
        check = row_check(name)
        for i, row in enumerate(rows):
            check(row, label, f"{where}/{i}", problems)
    errors = doc.get("errors", [])
    if not isinstance(errors, list):
        problems.append(Problem(label, "/errors", f"expected an array, found {json_kind(errors)}"))
        errors = []
    problems += [Problem(label, f"/errors/{i}", f"expected an error object, found {json_kind(e)}")
                 for i, e in enumerate(errors) if not isinstance(e, dict)]
    # Collection redacts what it stores; a snapshot from anywhere else is redacted here, once.
    errors = [{k: redact(v) if isinstance(v, str) else v for k, v in e.items()} for e in errors if isinstance(e, dict)]
    scope = check_scope(doc.get("scope"), label, "/scope", problems)
    queries = doc.get("queries") or {}
    if not isinstance(queries, dict):
        problems.append(Problem(label, "/queries", f"expected an object, found {json_kind(queries)}"))
        queries = {}
    collected = doc.get("collectedAt")
    check_instant(collected, label, "/collectedAt", problems)
    if problems:
        raise InputError(problems)
    return Snapshot(tables=_fold_table_names(tables), scope=scope, errors=errors, queries=queries,
                    collected_at=collected)


def check_instant(instant: Any, label: str, pointer: str, problems: list[Problem]) -> None:
    """An instant (a snapshot's collection, or a collection or scan start recorded in a results.json at `pointer`):
    null, or an ISO 8601 date and time. Schedules are turned into UTC slots at the one, exemptions expire at the
    other: one that cannot be read is not replaced by a clock."""
    if instant is not None and not (isinstance(instant, str) and parse_instant(instant)):
        shown = repr(instant) if isinstance(instant, str) else json_kind(instant)
        problems.append(Problem(label, pointer, "expected an ISO 8601 date and time such as 2026-11-20T06:00:00Z "
                                                f"(or null), found {shown}"))


def check_scope(scope: Any, label: str, pointer: str, problems: list[Problem]) -> dict[str, Any]:
    """The collection scope (of a snapshot, or recorded in a results.json at `pointer`), {} when absent or null:
    names (subscriptions, managementGroups, …) each holding a string or an array of strings, which is all the
    reports can show and merging can join; anything else is added to the problems."""
    if scope is None:
        return {}
    if not isinstance(scope, dict):
        problems.append(Problem(label, pointer, f"expected an object, found {json_kind(scope)}"))
        return {}
    for key, value in scope.items():
        if isinstance(value, list):
            problems += [Problem(label, f"{pointer}/{key}/{i}", f"expected a string, found {json_kind(v)}")
                         for i, v in enumerate(value) if not isinstance(v, str)]
        elif not isinstance(value, str):
            problems.append(Problem(label, f"{pointer}/{key}",
                                    f"expected a string or an array of strings, found {json_kind(value)}"))
    return scope


def _fold_table_names(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Table names ignore case, as in KQL: `RecoveryServicesResources` is recoveryservicesresources."""
    if all(name == name.lower() for name in tables):
        return tables
    folded: dict[str, list[dict[str, Any]]] = {}
    for name, rows in tables.items():
        folded.setdefault(name.lower(), []).extend(rows)
    return folded


def _fold_type(row: dict[str, Any]) -> None:
    """ARM types ignore case; rows keep Resource Graph's lowercase, so every stage compares them exactly
    (a bare list of REST bodies says `Microsoft.Network/virtualNetworks`)."""
    rtype = row["type"]
    if not rtype.islower():
        row["type"] = rtype.lower()


def type_from_id(resource_id: str) -> str | None:
    """The resource type an ARM id names, in Resource Graph's lowercase: `…/providers/Ns.Type/name` is
    `ns.type`, a child `…/Ns.Type/name/child/name` is `ns.type/child`; the last `providers` segment
    counts, as for extension resources. `/subscriptions/S` and `/subscriptions/S/resourceGroups/R` are
    the resourcecontainers types. None when the id names no resource type."""
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        containers = {("subscriptions",): SUBSCRIPTION_TYPE, ("subscriptions", "resourcegroups"): RESOURCE_GROUP_TYPE}
        return containers.get(tuple(lowered[::2])) if len(parts) % 2 == 0 and all(parts) else None
    rest = parts[len(lowered) - lowered[::-1].index("providers"):]
    if len(rest) < 3 or len(rest) % 2 == 0 or not all(rest):
        return None
    return "/".join([rest[0], *rest[1::2]]).lower()


RowCheck = Callable[[Any, str, str, list[Problem]], bool]


def row_check(table: str) -> RowCheck:
    """How a row of this table (named in any case) is checked: whatever is wrong is added to the
    problems; a Resource Graph row that passes gets its type in lowercase."""
    name = table.lower()
    if name in GRAPH_TABLES:
        return _check_and_fold_graph_row
    return _check_instance_view_row if name == "instanceviews" else _check_side_row


def _check_and_fold_graph_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if _check_graph_row(row, label, where, problems):
        _fold_type(row)
        return True
    return False


def _check_graph_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if not isinstance(row, dict):
        problems.append(Problem(label, where, f"expected a row object, found {json_kind(row)}"))
        return False
    ok = True
    for key in ("id", "type"):
        if not isinstance(row.get(key), str) or not row.get(key):
            problems.append(Problem(label, f"{where}/{key}" if key in row else where,
                                    f"row has no '{key}' string" if key not in row
                                    else f"'{key}' must be a non-empty string, found {json_kind(row[key])}"))
            ok = False
    props = row.get("properties")
    if props is not None and not isinstance(props, dict):
        problems.append(Problem(label, f"{where}/properties",
                                f"'properties' must be an object, found {json_kind(props)}"))
        ok = False
    return ok


def _check_side_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if not isinstance(row, dict):
        problems.append(Problem(label, where, f"expected a row object, found {json_kind(row)}"))
        return False
    if not isinstance(row.get("id"), str) or not row["id"]:
        problems.append(Problem(label, where, "row has no 'id' string naming the VM"))
        return False
    return True


def _check_instance_view_row(row: Any, label: str, where: str, problems: list[Problem]) -> bool:
    if not _check_side_row(row, label, where, problems):
        return False
    if instance_view_body(row) is None:
        problems.append(Problem(label, where, f"instance view row of {row['id']} has none of the known shapes: "
                                              "an object in 'instanceView' (collector, az vm get-instance-view) "
                                              "or in 'properties.instanceView' (GET ...?$expand=instanceView)"))
        return False
    return True


def instance_view_body(row: dict[str, Any]) -> dict[str, Any] | None:
    """The VirtualMachineInstanceView in an `instanceviews` row, or None when the row has no known shape.

    Known: `{"id", "instanceView": {...}}` (our collector, and `az vm get-instance-view`, which prints
    the VM with its properties flattened) and the VM body of `GET ...?$expand=instanceView`
    (`properties.instanceView`).
    """
    view = row.get("instanceView")
    if isinstance(view, dict):
        return view
    nested = row.get("properties")
    view = nested.get("instanceView") if isinstance(nested, dict) else None
    return view if isinstance(view, dict) else None


def json_kind(value: Any) -> str:
    """How an input error names what it found instead: "an object", "a string", …"""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def pieces(snap: Snapshot) -> Iterator[bytes]:
    """The snapshot as `save` writes it, in pieces: one JSON document, one row per line (row_lines)."""
    doc = snap.to_document()
    tables = doc.pop("tables")
    return row_lines.encode(doc, tables)


class Writable(Protocol):
    """Where `write` can write: a binary file, a GzipFile, or anything else with `write` (`_Hashed`)."""

    def write(self, data: bytes, /) -> int: ...


def write(snap: Snapshot, handle: Writable) -> None:
    """Write the snapshot to an open file a piece at a time, never its whole text at once (a 100,000-VM
    estate's is 0.9 GB)."""
    for piece in pieces(snap):
        handle.write(piece)


def sha256(snap: Snapshot) -> str:
    """The SHA-256 of the text `save` writes (not gzipped), without writing it."""
    hashed = _Hashed()
    write(snap, hashed)
    return hashed.digest.hexdigest()


def save(snap: Snapshot, path: Path) -> str:
    """Write the snapshot (gzipped when the name ends in .gz) atomically; return the SHA-256 of the file."""
    with atomic_writer(path, "wb") as handle:
        stored = _Hashed(handle)
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=stored, mtime=0) as packed:
                write(snap, packed)
        else:
            write(snap, stored)
    return stored.digest.hexdigest()


class _Hashed:
    """Hashes what is written to it (the bytes as they are stored), and passes it on to `handle` if any."""

    def __init__(self, handle: BinaryIO | None = None) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data) if self._handle is None else self._handle.write(data)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()


def query_key(kql: str) -> str:
    """The key under which a custom query's rows are stored: SHA-256 of its trimmed text."""
    return hashlib.sha256(kql.strip().encode()).hexdigest()
