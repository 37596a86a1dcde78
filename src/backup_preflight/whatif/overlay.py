"""The predicted estate: a snapshot with a what-if's changes applied, in Resource Graph shapes.

Scanning the current snapshot and the overlaid one with the same policies tells a pull request
which failures its deployment would introduce. The input snapshot is never modified: unchanged
rows are shared, changed rows are new objects.

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

from backup_preflight.estate.index import Row, last_segment, props
from backup_preflight.snapshot import Snapshot, table_for_type
from backup_preflight.whatif.describe import PlannedChange, label, planned
from backup_preflight.whatif.parse import Change, WhatIf, note
from backup_preflight.whatif.shapes import EMBEDDED_CHILDREN, embedded, parent_id, resource_type, to_row

_KEEP_CURRENT = ("NoChange", "Ignore")

Note = dict[str, str]


def overlay(snap: Snapshot, what_if: WhatIf) -> tuple[Snapshot, list[PlannedChange], list[Note]]:
    """The predicted snapshot, the changes that make it (for blame and reports) and coverage notes."""
    tables = _Tables(snap)
    notes = list(what_if.notes)
    changes: list[PlannedChange] = []
    # Parents before children, so a rule lands in the NSG the same deployment creates; stable otherwise.
    for change in sorted(what_if.changes, key=lambda c: c.resource_id.count("/")):
        if change.change_type in _KEEP_CURRENT:
            continue
        rtype = resource_type(change.resource_id)  # the id decides; a body's `type` may be missing
        changes.append(planned(change, rtype))
        if change.change_type == "Unsupported":
            reason = change.unsupported_reason or "no reason given"
            notes.append(note(change.resource_id, f"what-if cannot predict this change ({reason}); the current "
                                                  "state is kept, so findings that depend on it may be out of date"))
        elif rtype in EMBEDDED_CHILDREN:
            _apply_child(tables, change, rtype, notes)
        else:
            _apply(tables, change, rtype, notes)
    if snap.queries:
        notes.append(note("custom queries", "rows of custom Resource Graph queries are not predicted by the "
                                            "what-if overlay; policies on them see the current state"))
    return tables.snapshot(), changes, notes


def _apply(tables: _Tables, change: Change, rtype: str, notes: list[Note]) -> None:
    lid = change.resource_id.lower()
    if change.change_type == "Delete":  # its row and every row under it, in every table (_Tables.snapshot)
        rows = tables.rows(table_for_type(rtype), change, None)
        if rows is not None:
            rows.pop(lid, None)  # a row the plan creates again comes after the current ones
        tables.deleted.add(lid)
        return
    rows = tables.rows(table_for_type(rtype), change, notes)
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


def _apply_child(tables: _Tables, change: Change, rtype: str, notes: list[Note]) -> None:
    """Replace, add or remove a rule/subnet/route inside its parent row's array."""
    parent = parent_id(change.resource_id)
    rows = tables.rows(table_for_type(resource_type(parent)), change, notes)
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


class _Tables:
    """The tables being overlaid: copied into id → row dicts only when a change touches them."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap
        self._touched: dict[str, dict[str, Row]] = {}
        #: Lowercase ids deleted by the plan (and not created again); rows under them go too.
        self.deleted: set[str] = set()

    def rows(self, table: str, change: Change, notes: list[Note] | None) -> dict[str, Row] | None:
        """The working rows of a table, or None (with a note, when `notes` is given) when the snapshot did not
        collect it."""
        if self._snap.tables.get(table) is None:
            if notes is not None:
                notes.append(note(change.resource_id, f"table {table} was not collected, so this "
                                                      f"{change.change_type} is not applied; findings that need it "
                                                      "stay unknown"))
            return None
        if table not in self._touched:
            self._touched[table] = {row["id"].lower(): row for row in self._snap.tables[table]}
        return self._touched[table]

    def snapshot(self) -> Snapshot:
        snap = self._snap
        # A row goes when its id is a deleted resource's, or cut at a '/' is one, in any table: a deleted
        # resource group takes its VMs, a deleted VM its extensions, instance view and metrics. Looked up per
        # distinct id length, so the cost is rows x lengths, not rows x deletions.
        gone, cuts = self.deleted, sorted({len(lid) for lid in self.deleted})
        tables = {name: [row for row in (self._touched[name].values() if name in self._touched else rows)
                         if not gone or not _under(row["id"].lower(), gone, cuts)]
                  for name, rows in snap.tables.items()}
        return Snapshot(tables=tables, scope=dict(snap.scope), errors=list(snap.errors), queries=dict(snap.queries),
                        collected_at=snap.collected_at, sources=list(snap.sources))


def _under(lid: str, gone: set[str], cuts: list[int]) -> bool:
    """Whether the row `lid` is a deleted resource or lies under one."""
    return any(lid[:n] in gone and lid[n:n + 1] in ("", "/") for n in cuts)
