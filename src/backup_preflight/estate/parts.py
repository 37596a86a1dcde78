"""An estate too large to hold at once, split by subscription into parts that are built one at a time.

A VM's facts come from rows found by its own id (its row, extensions, SQL registration, instance view,
guest facts, metrics, protected items, jobs, guest configuration), from network rows found by their ids,
from its subscription's and resource group's rows, and from a few rows any VM may need (management
groups, virtual network gateways). So a row goes to the subscription of the VM it describes, any other
row to its own id's subscription, and the shared ones to every part. A part is a set of whole
subscriptions.

Subscriptions whose rows reach into each other are joined into one part:
- two copies of a row that name VMs in different subscriptions (found while splitting);
- a lookup by id that misses in a subscription outside the part: `Lookups` notes it while the part is
  built and judged (a NIC, subnet, NSG, route table, backup policy, or jobs by the vault and VM name
  they give), and the scan joins the parts and judges them again (judging.py);
- a group of a grouped policy with members in two parts (judging.py).

While the file is read, only each row's place is kept, and a part's rows are read back from the file
itself (kept open, and refused if written to meanwhile); a gzipped file's rows go to a spill file (its
text, uncompressed, in the system's temporary folder) and are read back from there.
"""

from __future__ import annotations

import logging
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import msgspec

from backup_preflight.errors import InputError
from backup_preflight.estate.index import (
    BACKUP_JOB_TYPE,
    GC_ASSIGNMENT_TYPE,
    PROTECTED_ITEM_TYPE,
    SQL_VM_TYPE,
    VM_TYPE,
    NamingProperties,
    assignment_target,
    is_vm_job,
    job_vm,
    protected_vm,
    sql_vm_target,
)
from backup_preflight.estate.network import GATEWAY_TYPE
from backup_preflight.gcpause import gc_paused
from backup_preflight.row_lines import NotThisLayout, table_near
from backup_preflight.snapshot import (
    GRAPH_TABLES,
    RESOURCE_GROUP_TYPE,
    SUBSCRIPTION_TYPE,
    RowReader,
    Snapshot,
    is_gzip,
    open_rows,
    parse_json,
)
from backup_preflight.workers import Workers

log = logging.getLogger(__name__)

#: VMs judged at a time when a snapshot file is judged in parts: the default `scan --part-size` divides it among
#: the jobs. 100,000 VMs peak at 1.1–1.2 GiB so, 1,000,000 at 4.1–4.3 GiB, most of it the findings
#: (docs/performance.md).
PART_VMS = 25_000


def part_vms(jobs: int) -> int:
    """The default part size with this many jobs: PART_VMS divided among them, so that about as many VMs are
    judged at a time, and about as much memory is used, with any number of jobs."""
    return max(1, PART_VMS // jobs)

#: The unit of the rows every part gets.
SHARED = ""
#: Bytes read back in one call at most (rows near each other in the file).
_READ = 1 << 24
#: Bytes between two rows read in one call at most: a row's comma and line break (none in a spill file).
_GAP = 2
#: The unit of rows whose id names no subscription.
NONE = "-"


def subscription_of(resource_id: str) -> str:
    """The lowercase subscription an ARM id names; NONE when it names none."""
    parts = resource_id.lower().split("/", 3)
    return parts[2] if len(parts) > 2 and parts[0] == "" and parts[1] == "subscriptions" and parts[2] else NONE


def owner(table: str, row: dict[str, Any]) -> str:
    """The id whose subscription the row belongs with: the VM it describes, else its own; SHARED when
    every part needs it."""
    rid = row.get("id")
    own = rid if isinstance(rid, str) else ""
    kind = row.get("type") if table in GRAPH_TABLES else None
    if kind in (SUBSCRIPTION_TYPE, RESOURCE_GROUP_TYPE):  # found by the VM's own subscription
        return own
    if table == "resourcecontainers" or kind == GATEWAY_TYPE:
        return SHARED
    if kind == SQL_VM_TYPE:
        return sql_vm_target(row) or own
    if kind == PROTECTED_ITEM_TYPE:
        return protected_vm(row) or own
    if kind == BACKUP_JOB_TYPE:  # one naming its VM only by friendly name stays with its vault
        return (is_vm_job(row) and job_vm(row)) or own
    if kind == GC_ASSIGNMENT_TYPE:
        return assignment_target(row)
    return own


def placement(table: str, row: dict[str, Any]) -> str:
    """The subscription a row is placed with when its file is split (`owner`'s, SHARED for every part), for a
    row as `load` gives it or as a what-if predicts it (its type in any case)."""
    kind = row.get("type")
    if table in GRAPH_TABLES and isinstance(kind, str) and not kind.islower():
        row = {**row, "type": kind.lower()}
    key = owner(table, row)
    return key and subscription_of(key)


#: Row types that go with the VM they name rather than with their own id: two copies of one may disagree.
_BY_REFERENCE = (SQL_VM_TYPE, PROTECTED_ITEM_TYPE, BACKUP_JOB_TYPE, GC_ASSIGNMENT_TYPE)


class Joins:
    """Which subscriptions must be judged together (a disjoint-set forest)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, unit: str) -> str:
        parent = self._parent
        root = unit
        while (up := parent.get(root, root)) != root:
            root = up
        while unit != root:
            parent[unit], unit = root, parent.get(unit, unit)
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def absorb(self, other: Joins) -> None:
        """Join whatever `other` joins."""
        for unit, up in other._parent.items():
            self.join(unit, up)


@dataclass(slots=True)
class _Places:
    """Where one subscription's rows of one table are in the spill file."""

    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))
    #: Each row's line in the snapshot file, to say where a row is broken.
    lines: array = field(default_factory=lambda: array("q"))


@dataclass(slots=True)
class _Placed:
    """Rows placed by subscription, as one reader placed them."""

    places: dict[str, dict[int, _Places]] = field(default_factory=dict)
    #: VMs per subscription.
    vms: Counter[str] = field(default_factory=Counter)
    joins: Joins = field(default_factory=Joins)
    #: Each row that goes with the VM it names (by its table and id): the subscription of its first copy.
    seen: dict[int, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Tail:
    """What a second reader sends back: the rows from a table near the middle of the file to its end, placed."""

    placed: _Placed
    tables: list[str]
    written: list[str]
    counts: dict[str, int]


class _Closed(dict[str, Any]):
    """The places of a closed Split: using them is a bug, not an estate without rows."""

    def _closed(self, *_: Any) -> Any:
        raise ValueError("the snapshot file's split is closed")

    __getitem__ = __contains__ = keys = _closed


_CLOSED = _Closed()


class Split:
    """A snapshot file's rows placed by subscription; a part's rows are read back as a Snapshot.

    With `tail`, the reader stops where a table begins (RowReader's `end`), and `tail()` gives the rows from
    there, placed by another reader (`read_split`)."""

    def __init__(self, reader: RowReader, tail: Callable[[], _Tail] | None = None) -> None:
        self._reader = reader
        #: Where the rows are read back from: the snapshot file itself, or a spill file of its text when it is gzip.
        self._spill: IO[bytes] | None = None
        try:
            if not reader.plain:
                try:
                    self._spill = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(); in TMPDIR
                except OSError as exc:
                    raise no_room(reader.label, exc) from None
            placed = _place(reader, self._spill)
            if tail is not None:
                _add(placed, reader, tail())
        except BaseException:
            self.close()
            raise
        self._places, self.vms, self.joins = placed.places, placed.vms, placed.joins
        self._fd = (self._spill or reader.handle).fileno()
        self.header: Snapshot = reader.snapshot
        self.tables = reader.tables
        self.counts = reader.counts

    def has(self, unit: str) -> bool:
        return unit in self._places

    def classes(self) -> list[frozenset[str]]:
        """The subscriptions (with rows) that must be judged together, as classes holding VMs, in a stable order."""
        groups: dict[str, set[str]] = {}
        for unit in sorted(self.units()):
            groups.setdefault(self.joins.find(unit), set()).add(unit)
        return [frozenset(g) for g in groups.values() if any(self.vms[u] for u in g)]

    def units(self) -> set[str]:
        """Every subscription with rows."""
        return self._places.keys() - {SHARED}

    def members(self, units: Iterable[str]) -> set[str]:
        """Every subscription (with rows) judged together with one of these."""
        roots = {self.joins.find(u) for u in units}
        return {u for u in self.units() if self.joins.find(u) in roots}

    def whole(self) -> Snapshot:
        """Every row, as `load` gives them: the estate held whole (one part, or a what-if)."""
        with gc_paused():
            return self.snapshot(self.units())

    def snapshot(self, units: Iterable[str]) -> Snapshot:
        """The part holding these subscriptions' rows and the shared ones, in file order, as `load` gives them.

        Raises InputError when the snapshot file was written to since it was read: its rows would no longer
        be the ones checked and hashed."""
        self._unchanged()
        wanted = [self._places[u] for u in {*units, SHARED} if u in self._places]
        tables: dict[str, list[dict[str, Any]]] = {}
        for t, name in enumerate(self.tables):
            spans = sorted(span for places in wanted if t in places
                           for span in zip(places[t].offsets, places[t].lengths, places[t].lines, strict=True))
            rows = tables[name] = list(self._rows(spans))
            if name in GRAPH_TABLES:
                for row in rows:
                    row["type"] = row["type"].lower()
        h = self.header
        return Snapshot(tables=tables, scope=h.scope, errors=h.errors, queries=h.queries,
                        collected_at=h.collected_at, sources=h.sources)

    def texts(self, table: int) -> Iterator[tuple[str, msgspec.Raw]]:
        """Every row of a table (each has one place), in file order, as (lowercase id, its text): what a what-if
        streams into the estate it predicts (whatif/gate.py), never holding the rows decoded. Raises InputError as
        `snapshot` does."""
        self._unchanged()
        spans = sorted(span for places in self._places.values() if table in places
                       for span in zip(places[table].offsets, places[table].lengths, places[table].lines,
                                       strict=True))
        for text in self._rows(spans, _as_text):
            yield _ID.decode(text).id.lower(), msgspec.Raw(text)

    def rows_of(self, table: int, ids: set[str]) -> dict[str, dict[str, Any]]:
        """The rows of a table with these lowercase ids, as `load` gives them (of copies, the last)."""
        name = self.tables[table]
        found = {}
        for rid, text in self.texts(table):
            if rid in ids:
                row = found[rid] = self._decode(memoryview(text), 0)
                if name in GRAPH_TABLES:
                    row["type"] = row["type"].lower()
        return found

    def _unchanged(self) -> None:
        if self._spill is None and self._reader.changed():
            raise InputError.one(self._reader.label, "", "changed while it was being scanned; scan it again "
                                                         "once nothing writes to it")

    def _rows(self, spans: list[tuple[int, int, int]], decode: Callable[[memoryview, int], Any] | None = None
              ) -> Iterator[Any]:
        """The rows at these (offset, length, line) places, in order (decoded, or as `decode` gives them); rows
        near each other in the file (apart by their line breaks and commas) are read in one call. Read, not
        mapped: a mapped file's pages would count in the process's memory."""
        decode = decode or self._decode
        fd = self._fd
        i = 0
        while i < len(spans):
            start, end, j = spans[i][0], spans[i][0] + spans[i][1], i + 1
            while j < len(spans) and end <= spans[j][0] <= end + _GAP and end - start < _READ:
                end = spans[j][0] + spans[j][1]
                j += 1
            view = memoryview(os.pread(fd, end - start, start))
            for at, n, line in spans[i:j]:
                yield decode(view[at - start:at - start + n], line)
            i = j

    def _decode(self, text: memoryview, line: int) -> Any:
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:  # what a row's quick check skips: a number out of range (1e999)
            return parse_json(bytes(text), self.header.sources[0].path, line)

    def close(self) -> None:
        """Let the file and the rows' places go; what was counted stays."""
        self._places = _CLOSED
        if self._spill is not None:
            self._spill.close()
        self._reader.close()


class _Id(msgspec.Struct):
    id: str


_ID = msgspec.json.Decoder(_Id)


def _as_text(text: memoryview, _line: int) -> bytes:
    return bytes(text)


def _place(reader: RowReader, spill: IO[bytes] | None) -> _Placed:
    """The reader's rows placed by subscription; with `spill`, their text written to it."""
    placed, offset = _Placed(), 0
    places, seen = placed.places, placed.seen
    for table, text, rid, kind, line, at in reader.rows():
        name = reader.tables[table]
        row = _naming(text, rid, kind, reader.label, line) if kind in _BY_REFERENCE else {"id": rid, "type": kind}
        key = owner(name, row)  # placement() inlined: the type is lowercase already, and this runs for every row
        unit = key and subscription_of(key)
        if kind in _BY_REFERENCE:
            first = seen.setdefault(hash((name, rid.lower())), unit)
            if first != unit:
                placed.joins.join(first, unit)
        elif kind == VM_TYPE and name == "resources":
            placed.vms[unit] += 1
        by_table = places.get(unit) or places.setdefault(unit, {})
        spot = by_table.get(table) or by_table.setdefault(table, _Places())
        if spill is not None:
            try:
                spill.write(text)
            except OSError as exc:
                raise no_room(reader.label, exc) from None
            at = offset
            offset += len(text)
        spot.offsets.append(at)
        spot.lengths.append(len(text))
        spot.lines.append(line)
    if spill is not None:
        try:
            spill.flush()
        except OSError as exc:
            raise no_room(reader.label, exc) from None
    return placed


class _Naming(msgspec.Struct):
    properties: NamingProperties | None = None


_NAMING = msgspec.json.Decoder(_Naming).decode
_FIELDS = NamingProperties.__struct_fields__


def _naming(text: bytes, rid: str, kind: str, label: str, line: int) -> dict[str, Any]:
    """A row placed by the VM it names, as far as `owner` reads it: its id, type and the properties that name the
    VM (index.NamingProperties), the rest of the row skipped (164,000 rows at 100,000 VMs: reading the file took
    2.30–2.34 s instead of 2.50–2.57 s, docs/performance.md). One of those that msgspec cannot decode (a number
    out of range, which the row's quick check lets through) is decoded whole as `load` decodes it, which says
    where in the file (`label`, `line`) it is not JSON, as reading the row in its part would."""
    try:
        named = _NAMING(text).properties
    except msgspec.DecodeError:
        return {**parse_json(text, label, line), "type": kind}
    row: dict[str, Any] = {"id": rid, "type": kind}
    if named is not None:
        row["properties"] = {name: value for name in _FIELDS if (value := getattr(named, name)) is not msgspec.UNSET}
    return row


def _add(placed: _Placed, reader: RowReader, tail: _Tail) -> None:
    """The second reader's rows after the first reader's, as one reader of the whole file places them."""
    numbers = reader.add_tables(tail.tables, tail.written, tail.counts)
    shift = reader.line  # the second reader counts lines from its first table's as line 2
    for unit, by_table in tail.placed.places.items():
        mine = placed.places.setdefault(unit, {})
        for table, spot in by_table.items():
            into = mine.setdefault(numbers[table], _Places())
            into.offsets.extend(spot.offsets)
            into.lengths.extend(spot.lengths)
            into.lines.extend(array("q", map(shift.__add__, spot.lines)))
    placed.vms.update(tail.placed.vms)
    placed.joins.absorb(tail.placed.joins)
    for key, unit in tail.placed.seen.items():
        first = placed.seen.setdefault(key, unit)
        if first != unit:
            placed.joins.join(first, unit)


#: A plain snapshot file at least this large is read by two processes when a scan has more than one job.
APART_BYTES = 64 << 20


def read_split(path: Path, jobs: int) -> Split:
    """The snapshot file split by subscription.

    With more than one job, a plain file of APART_BYTES or more is read by two processes at once: this one
    up to a table near the middle of the file (while hashing the whole), a child from there on, whose rows are
    placed as this process places its own and then added to them. Should either reader find anything amiss (a
    row with a problem, another layout, a table named twice) or the child fail, the file is read again by
    this process alone: what is said of a file is what one reader says."""
    if jobs < 2:
        return Split(RowReader(path))
    handle = open_rows(path)
    try:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        start = table_near(fd, size) if size >= APART_BYTES and not is_gzip(fd) else None
    except BaseException:
        handle.close()
        raise
    if start is None:
        return Split(RowReader(path, handle))
    tail = partial(_read_tail, str(path), handle)
    with Workers(2, tail, tail, doing="reading the second half of a snapshot file",
                 lighter="fewer --jobs read a file in one process") as workers:
        workers.start(start)
        try:
            split = Split(RowReader(path, handle, end=start), lambda: workers.next()[1])
        except (InputError, NotThisLayout, RuntimeError) as exc:
            log.debug("%s is read again by one process: %s", path, str(exc) or type(exc).__name__)
        else:
            log.debug("%s was read by two processes, the second from byte %s of %s", path, f"{start:,}",
                      f"{size:,}")
            return split
    return Split(RowReader(path))


def _read_tail(label: str, handle: IO[bytes], start: int) -> _Tail:
    """In a child: the file's rows from `start` to its end, placed."""
    reader = RowReader.tail(label, handle, start)
    return _Tail(_place(reader, None), reader.tables, reader.written, reader.counts)


def no_room(label: str, exc: OSError) -> InputError:
    """The temporary folder could not take a snapshot's text: a gzipped file's, or a live scan's (full, or not
    writable)."""
    return InputError.one(label, "", f"cannot set its rows aside in the temporary folder ({exc.strerror or exc}): "
                                     "free space there (TMPDIR) for about the snapshot's uncompressed size, or scan "
                                     "with --part-size 0")


class Lookups:
    """Makes a part's tables of rows by id (Index, NetworkModel); each notes the subscription of an id it
    misses when that subscription is outside the part, since a scan of the whole estate may find it."""

    def __init__(self, inside: Iterable[str]) -> None:
        self.inside = {*inside, SHARED}
        self.missed: set[str] = set()

    def __call__(self) -> dict[str, Any]:
        return _Noting(self)


class _Noting(dict[str, Any]):
    __slots__ = ("_lookups",)

    def __init__(self, lookups: Lookups) -> None:
        super().__init__()
        self._lookups = lookups

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            unit = subscription_of(key)
            if unit not in self._lookups.inside:
                self._lookups.missed.add(unit)
            return default
