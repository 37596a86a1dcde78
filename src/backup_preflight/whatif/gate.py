"""`scan --what-if`: scan the current estate, predict the estate after the deployment, and judge
the prediction against the current scan as its baseline; every new failure names its planned change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backup_preflight.estate.index import Index
from backup_preflight.findings import Finding
from backup_preflight.review.baseline import NEW
from backup_preflight.snapshot import Snapshot
from backup_preflight.whatif.blame import blame
from backup_preflight.whatif.describe import PlannedChange
from backup_preflight.whatif.overlay import overlay
from backup_preflight.whatif.parse import WhatIf

CURRENT_ESTATE = "current estate, before the deployment"


@dataclass(slots=True)
class Plan:
    """A what-if applied to a snapshot: the predicted snapshot and what the deployment changes."""

    what_if: WhatIf
    predicted: Snapshot
    changes: list[PlannedChange]
    notes: list[dict[str, str]]


def predict(snap: Snapshot, what_if: WhatIf) -> Plan:
    predicted, changes, notes = overlay(snap, what_if)
    return Plan(what_if, predicted, changes, notes)


def explain_new(findings: list[Finding], vms: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Put the planned changes behind each new finding first in its evidence; return run metadata."""
    new = [f for f in findings if f.annotations.get("baseline") == NEW]
    causes = blame(new, vms, plan.changes, Index(plan.predicted).by_id)
    for finding in new:
        lines = causes.get(finding.key(), [])
        finding.annotate("plannedChanges", lines)
        finding.evidence = tuple(f"Planned change: {line}" for line in lines) + finding.evidence
    return {"files": plan.what_if.describe(), "changes": [c.to_dict() for c in plan.changes],
            "notes": plan.notes, "newFindings": len(new)}
