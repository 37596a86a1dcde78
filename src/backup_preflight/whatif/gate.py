"""`scan --what-if`: scan the current estate, predict the estate after the deployment, and judge
the prediction against the current scan as its baseline; every new failure names its planned change.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from backup_preflight import row_lines
from backup_preflight.estate.build import Estate
from backup_preflight.estate.parts import SHARED, Split, placement, subscription_of
from backup_preflight.findings import Finding, annotated, with_status
from backup_preflight.judging import Judged, Reach
from backup_preflight.policy.loader import PolicySet
from backup_preflight.review.baseline import ACCEPTABLE, NEW
from backup_preflight.snapshot import Snapshot
from backup_preflight.whatif.blame import Related, blame_related, relations, relations_of
from backup_preflight.whatif.describe import PlannedChange
from backup_preflight.whatif.overlay import Changed, overlay, targets
from backup_preflight.whatif.parse import WhatIf

CURRENT_ESTATE = "current estate, before the deployment"

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Plan:
    """A what-if applied to a snapshot: what the deployment changes, and what it could not predict."""

    what_if: WhatIf
    changes: list[PlannedChange]
    notes: list[dict[str, str]]
    #: The subscriptions of every row the plan changes, adds or removes, as a split file places them (SHARED when
    #: it changes rows every part reads); None until known. `predict_text` fills it once its text has been read.
    touched: set[str] | None = None


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
    plan = Plan(what_if, changed.changes, changed.notes)

    def text() -> Iterator[bytes]:
        yield from row_lines.encode(doc, tables)
        plan.touched = _touched(changed)
    return text(), plan


def _touched(changed: Changed) -> set[str]:
    """The subscriptions the changed rows are placed with, in the current estate and the predicted one."""
    units = {placement(table, row) for table, row in changed.rows_changed()}
    for table, (_, text) in changed.cut:
        try:
            row = msgspec.json.decode(text)
        except msgspec.DecodeError:  # a number out of range, which a row's quick check lets through
            units.add(SHARED)  # where it went is not known: the current estate is judged everywhere
        else:
            units.add(placement(table, row))
    return units


#: Judges the current estate's parts that hold these subscriptions, or every part (None); with the predicted
#: estate's parts not judged beside them (judging.judge_in_parts's `only` and `beside`).
JudgeCurrent = Callable[[set[str] | None, Sequence[Reach]], Judged]


def current_where_reached(split: Split, predicted: Judged, plan: Plan, policies: PolicySet,
                          judge_current: JudgeCurrent) -> Iterator[Finding]:
    """The current estate's failing, erroring and unknown findings, a what-if's baseline, judging of it only what
    the plan reaches: the parts of the predicted estate (`predicted`, judged in parts) that read a subscription
    whose rows the plan changes, and whatever the current estate judges together with them. Of every other
    subscription the rows are the same in both estates, and so are the verdicts, which are taken from the
    prediction; a judged part sharing a group of a grouped policy with one of them gets it judged too, and one
    reaching into it is joined with it, as in any scan in parts."""
    touched = plan.touched
    if touched is None or SHARED in touched:
        return with_status(judge_current(None, ()).findings, ACCEPTABLE)
    only = set(touched)
    while (grown := _closure(split, predicted.parts, only)) != only:
        only = grown
    current = judge_current(only, [r for r in predicted.parts if not r.owned & only])
    judged = only.union(*(r.owned for r in current.parts))
    log.info("the plan reaches %d of %d subscriptions: the current estate is judged there only",
             len(judged & split.units()), len(split.units()))
    on_queries = {p.id for p in policies.policies if p.query is not None}
    same = (f for f in with_status(predicted.findings, ACCEPTABLE)
            if f.policy_id not in on_queries and subscription_of(f.resource_id) not in judged)
    return itertools.chain(with_status(current.findings, ACCEPTABLE), same)


def _closure(split: Split, parts: Sequence[Reach], only: set[str]) -> set[str]:
    """`only`, the subscriptions the current estate judges with them, and the predicted parts reading any."""
    judging = only | split.members(only)
    return judging.union(*(r.owned for r in parts if r.read & judging))


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
