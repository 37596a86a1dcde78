"""`scan --what-if`: scan the current estate, predict the estate after the deployment, and judge
the prediction against the current scan as its baseline; every new failure names its planned change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from backup_preflight import row_lines
from backup_preflight.estate.build import Estate
from backup_preflight.estate.parts import Split
from backup_preflight.findings import Finding, annotated
from backup_preflight.review.baseline import NEW
from backup_preflight.snapshot import Snapshot
from backup_preflight.whatif.blame import Related, blame_related, relations, relations_of
from backup_preflight.whatif.describe import PlannedChange
from backup_preflight.whatif.overlay import Changed, overlay, targets
from backup_preflight.whatif.parse import WhatIf

CURRENT_ESTATE = "current estate, before the deployment"


@dataclass(slots=True)
class Plan:
    """A what-if applied to a snapshot: what the deployment changes, and what it could not predict."""

    what_if: WhatIf
    changes: list[PlannedChange]
    notes: list[dict[str, str]]


def predict(snap: Snapshot, what_if: WhatIf) -> tuple[Snapshot, Plan]:
    """The estate the deployment would leave, held whole."""
    predicted, changes, notes = overlay(snap, what_if)
    return predicted, Plan(what_if, changes, notes)


def predict_text(split: Split, what_if: WhatIf) -> tuple[Iterator[bytes], Plan]:
    """The estate the deployment would leave, from a split estate's rows, as `snapshot.write` writes a
    snapshot: the rows the plan changes are decoded, the others copied as their text a row at a time."""
    wanted = targets(what_if)
    current = {name: split.rows_of(t, wanted[name]) for t, name in enumerate(split.tables) if name in wanted}
    header = split.header
    changed = Changed(set(split.tables), current, what_if, bool(header.queries))
    doc = header.to_document()
    del doc["tables"]
    tables = {name: (_row(item) for item in changed.rows(name, split.texts(t), _lowered_id))
              for t, name in enumerate(split.tables)}
    return row_lines.encode(doc, tables), Plan(what_if, changed.changes, changed.notes)


def _lowered_id(item: tuple[str, Any]) -> str:
    return item[0]


def _row(item: Any) -> Any:
    """A row the plan left alone comes as (its id, its text); a changed one as a dict."""
    return item[1] if isinstance(item, tuple) else item


def relating(plan: Plan) -> Callable[[Estate], dict[str, Related]]:
    """What blame needs of an estate's VMs (`judge_in_parts` asks it of each part's estate)."""
    return lambda estate: relations(estate.vms, estate.by_id, plan.changes)


def held(estate: Estate, plan: Plan) -> Callable[[set[str]], dict[str, Related]]:
    """What blame needs of the VMs of the new failures, of an estate held whole."""
    return lambda failing: relations_of(failing, estate.vms, estate.by_id, plan.changes)


def explain_new(findings: Iterable[Finding], related: Callable[[set[str]], Mapping[str, Related]], plan: Plan
                ) -> dict[str, Any]:
    """Put the planned changes behind each new finding first in its evidence; return run metadata. `related`
    gives, for the VMs of the new findings, the planned changes to what their checks depend on (`relations`)."""
    new = [f for f in annotated(findings) if f.annotations.get("baseline") == NEW]
    causes = blame_related(new, related({f.resource_id.lower() for f in new}), plan.changes)
    for finding in new:
        lines = causes.get(finding.key(), [])
        finding.annotate("plannedChanges", lines)
        finding.evidence = tuple(f"Planned change: {line}" for line in lines) + finding.evidence
    return {"files": plan.what_if.describe(), "changes": [c.to_dict() for c in plan.changes],
            "notes": plan.notes, "newFindings": len(new)}
