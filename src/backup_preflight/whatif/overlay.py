"""The predicted estate: a snapshot with a what-if's changes applied, in Resource Graph shapes.

Scanning the current snapshot and the overlaid one with the same policies tells a pull request
which failures its deployment would introduce. The input snapshot is never modified: unchanged
rows are shared, changed rows are new objects. Only the rows the plan changes are ever held (`Changed`):
the predicted rows are the current ones streamed through it, so an estate judged in parts is
predicted a row at a time (scan.py writes it to the temporary folder and judges that in parts).

What each change type does (Azure's own wording in the Resources API reference):

* `Create`, `Modify`, `Deploy`: the predicted `after` body replaces the row; read-only parts it
  leaves out (an NSG's default rules, a VM's `extended` power state) are kept from the current row.
  A new VM has no `extended` block and no instance view, so its runtime facts are unknown — which is
  what they are before it exists. A `Modify`/`Deploy` of a row the snapshot lacks is applied as a
  create, with a note.
* `Delete`: the row and every row of it or under it go, in every table: a VM's extensions, instance view and
  metrics, a resource group's VMs (even when its own table, resourcecontainers, was not collected).
* `NoChange`, `Ignore`: the current row stays.
* `Unsupported`: what-if cannot predict it; the current row stays, with a coverage note.

Security rules, subnets and routes are merged into their parent's array (by name, ignoring case),
as Resource Graph stores them. A row for a table the snapshot did not collect is not added: that
would turn "not collected" (unknown) into "collected and empty" for every VM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from backup_preflight.estate.index import Row, last_segment, props
from backup_preflight.snapshot import Snapshot, table_for_type
from backup_preflight.whatif.describe import PlannedChange, label, planned, target_of
from backup_preflight.whatif.parse import Change, WhatIf, note
from backup_preflight.whatif.shapes import EMBEDDED_CHILDREN, embedded, parent_id, resource_type, to_row

_KEEP_CURRENT = ("NoChange", "Ignore")

Note = dict[str, str]
#: A row as the stream carries it: a dict, or its text (a split estate's rows are not decoded to be copied).
Item = TypeVar("Item")


def overlay(snap: Snapshot, what_if: WhatIf) -> tuple[Snapshot, list[PlannedChange], list[Note]]:
    """The predicted snapshot, the changes that make it (for blame and reports) and coverage notes."""
    wanted = targets(what_if)
    current = {name: {rid: row for row in rows if (rid := row["id"].lower()) in wanted.get(name, ())}
               for name, rows in snap.tables.items() if name in wanted and rows is not None}
    changed = Changed({name for name, rows in snap.tables.items() if rows is not None}, current, what_if,
                      bool(snap.queries))
    tables = {name: list(changed.rows(name, rows, _lowered_id)) if rows is not None else rows
              for name, rows in snap.tables.items()}
    return (Snapshot(tables=tables, scope=dict(snap.scope), errors=list(snap.errors), queries=dict(snap.queries),
                     collected_at=snap.collected_at, sources=list(snap.sources)), changed.changes, changed.notes)


def targets(what_if: WhatIf) -> dict[str, set[str]]:
    """By table, the lowercase ids of the current rows the plan may change: what `Changed` needs of the estate."""
    wanted: dict[str, set[str]] = {}
    for change in what_if.changes:
        if change.change_type in _KEEP_CURRENT or change.change_type == "Unsupported":
            continue
        target = target_of(change.resource_id, resource_type(change.resource_id))
        wanted.setdefault(table_for_type(resource_type(target)), set()).add(target)
    return wanted


def _lowered_id(row: Row) -> str:
    return row["id"].lower()


class Changed:
    """The plan applied to the current rows it changes (`current`: by table, the rows of `targets`, by lowercase
    id, the last of copies); `rows` then streams a table's current rows into its predicted ones.

    `collected` names the tables the snapshot has: a change to a table it does not have is not applied."""

    def __init__(self, collected: set[str], current: dict[str, dict[str, Row]], what_if: WhatIf,
                 queries: bool) -> None:
        self._collected, self._current = collected, current
        self._touched: dict[str, _Working] = {}
        #: Lowercase ids deleted by the plan (and not created again); rows under them go too.
        self.deleted: set[str] = set()
        self.notes: list[Note] = list(what_if.notes)
        self.changes: list[PlannedChange] = []
        #: The rows `rows` left out as lying under a deleted resource, as (table, item): a what-if judged in parts
        #: learns from them which subscriptions the plan reaches (whatif/gate.py).
        self.cut: list[tuple[str, object]] = []
        # Parents before children, so a rule lands in the NSG the same deployment creates; stable otherwise.
        for change in sorted(what_if.changes, key=lambda c: c.resource_id.count("/")):
            if change.change_type in _KEEP_CURRENT:
                continue
            rtype = resource_type(change.resource_id)  # the id decides; a body's `type` may be missing
            self.changes.append(planned(change, rtype))
            if change.change_type == "Unsupported":
                reason = change.unsupported_reason or "no reason given"
                self.notes.append(note(change.resource_id, f"what-if cannot predict this change ({reason}); the "
                                                           "current state is kept, so findings that depend on it "
                                                           "may be out of date"))
            elif rtype in EMBEDDED_CHILDREN:
                _apply_child(self, change, rtype, self.notes)
            else:
                _apply(self, change, rtype, self.notes)
        if queries:
            self.notes.append(note("custom queries", "rows of custom Resource Graph queries are not predicted by "
                                                     "the what-if overlay; policies on them see the current state"))
        self._cuts = sorted({len(lid) for lid in self.deleted})

    def rows_changed(self) -> Iterator[tuple[str, Row]]:
        """Every row the plan changes, as (table, row): each current one it replaces or deletes by id, and each it
        sets. Rows it cuts under a deleted resource are in `cut` once the tables have been streamed."""
        for table, rows in self._current.items():
            for row in rows.values():
                yield table, row
        for table, working in self._touched.items():
            for row in working.rows.values():
                yield table, row

    def working(self, table: str, change: Change, notes: list[Note] | None) -> _Working | None:
        """The changed rows of a table, or None (with a note, when `notes` is given) when the snapshot did not
        collect it."""
        if table not in self._collected:
            if notes is not None:
                notes.append(note(change.resource_id, f"table {table} was not collected, so this "
                                                      f"{change.change_type} is not applied; findings that need it "
                                                      "stay unknown"))
            return None
        if table not in self._touched:
            self._touched[table] = _Working(self._current.get(table, {}))
        return self._touched[table]

    def rows(self, table: str, items: Iterable[Item], lowered_id: Callable[[Item], str]) -> Iterator[Item | Row]:
        """The table's predicted rows, from its current ones in order (`lowered_id` reads an item's id).

        A row goes when its id is a deleted resource's, or cut at a '/' is one, in any table: a deleted
        resource group takes its VMs, a deleted VM its extensions, instance view and metrics. Looked up per
        distinct id length, so the cost is rows x lengths, not rows x deletions. A changed row takes the place
        of the first of its copies (the others go), or goes to the end when the plan deleted and created it;
        created rows come last, in the order the plan created them."""
        gone, cuts = self.deleted, self._cuts
        working = self._touched.get(table)
        placed: set[str] = set()
        for item in items:
            lid = lowered_id(item)
            if gone and _under(lid, gone, cuts):
                self.cut.append((table, item))
                continue
            if working is not None and lid in working.current:
                if lid not in placed:
                    placed.add(lid)
                    if lid in working.rows and lid not in working.created:
                        yield working.rows[lid]
                continue
            yield item
        for lid in working.created if working is not None else ():
            if not (gone and _under(lid, gone, cuts)):
                yield working.rows[lid]


class _Working:
    """A table's changed rows as a dict of the whole table would hold them: a row set where none is (or
    after it was removed) comes after the table's rows, one set where one is keeps its place."""

    def __init__(self, current: dict[str, Row]) -> None:
        self.current = current
        self.rows: dict[str, Row] = dict(current)
        self.created: dict[str, None] = {}

    def get(self, lid: str) -> Row | None:
        return self.rows.get(lid)

    def __setitem__(self, lid: str, row: Row) -> None:
        if lid not in self.rows:
            self.created[lid] = None
        self.rows[lid] = row

    def pop(self, lid: str) -> None:
        self.rows.pop(lid, None)
        self.created.pop(lid, None)


def _apply(tables: Changed, change: Change, rtype: str, notes: list[Note]) -> None:
    lid = change.resource_id.lower()
    if change.change_type == "Delete":  # its row and every row under it, in every table (Changed.rows)
        rows = tables.working(table_for_type(rtype), change, None)
        if rows is not None:
            rows.pop(lid)  # a row the plan creates again comes after the current ones
        tables.deleted.add(lid)
        return
    rows = tables.working(table_for_type(rtype), change, notes)
    if rows is None:
        return
    body = _after(change, notes)
    if body is None:
        return
    current = rows.get(lid)
    if current is None and change.change_type != "Create":
        notes.append(note(change.resource_id, f"{change.change_type} of a resource that is not in the snapshot: "
                                              "applied as a create"))
    rows[lid] = to_row(body, change.resource_id, rtype, current)
    tables.deleted.discard(lid)


def _apply_child(tables: Changed, change: Change, rtype: str, notes: list[Note]) -> None:
    """Replace, add or remove a rule/subnet/route inside its parent row's array."""
    parent = parent_id(change.resource_id)
    rows = tables.working(table_for_type(resource_type(parent)), change, notes)
    if rows is None:
        return
    row = rows.get(parent.lower())
    if row is None:
        if parent.lower() not in tables.deleted:
            notes.append(note(change.resource_id, f"its {label(resource_type(parent))} {parent} is neither in the "
                                                  "snapshot nor created by this deployment; the change is not applied"))
        return
    key = EMBEDDED_CHILDREN[rtype]
    name = last_segment(change.resource_id).lower()
    items = [c for c in props(row).get(key) or () if c is not None]
    same = [isinstance(c, dict) and str(c.get("name", "")).lower() == name for c in items]
    if change.change_type == "Delete":
        items = [c for c, hit in zip(items, same, strict=True) if not hit]
    else:
        body = _after(change, notes)
        if body is None:
            return
        child = embedded(body, change.resource_id)
        if any(same):
            items = [child if hit else c for c, hit in zip(items, same, strict=True)]
        else:
            if change.change_type != "Create":
                notes.append(note(change.resource_id, f"{change.change_type} of a {label(rtype)} its parent does not "
                                                      "have in the snapshot: applied as a create"))
            items.append(child)
    rows[parent.lower()] = {**row, "properties": {**props(row), key: items}}


def _after(change: Change, notes: list[Note]) -> dict | None:
    if change.after is None:
        notes.append(note(change.resource_id, f"{change.change_type} without a predicted state ('after'); "
                                              "the current state is kept"))
    return change.after


def _under(lid: str, gone: set[str], cuts: list[int]) -> bool:
    """Whether the row `lid` is a deleted resource or lies under one."""
    return any(lid[:n] in gone and lid[n:n + 1] in ("", "/") for n in cuts)
