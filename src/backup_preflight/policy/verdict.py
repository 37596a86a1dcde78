"""One finding of one policy on one target, and the shared copies of what findings hold.

The engine judges a target here when it cannot share a verdict (policy/engine.py), and a grouped policy each VM
with its group (policy/grouped.py).
"""

from __future__ import annotations

import sys
from typing import Any

from backup_preflight.findings import ERROR, FAIL, NOT_APPLICABLE, PASS, UNKNOWN, Finding
from backup_preflight.policy.conditions import Context, Node
from backup_preflight.policy.loader import Policy
from backup_preflight.policy.paths import FieldPath

Facts = dict[str, Any]

#: One copy of each distinct evidence while `evaluate` runs: VMs judged alone (those with reasons) and
#: failing VMs get equal evidence tuples, which findings would otherwise each keep (docs/performance.md).
EVIDENCE: dict[tuple[str, ...], tuple[str, ...]] = {}


def shared_evidence(evidence: tuple[str, ...]) -> tuple[str, ...]:
    return EVIDENCE.setdefault(evidence, evidence)


def interned(message: str) -> str:
    """One copy of each distinct message: thousands of unknown findings say the same thing."""
    return sys.intern(message)


#: Marks a key of frozen values: no key of plain values starts with it.
FROZEN = object()


def frozen_value(value: Any) -> Any:
    """A list or a map as a hashable value equal only to one with the same items, of the same types, in
    the same order (an explanation may list them in that order); anything else with its type."""
    if value.__class__ is list:
        return list, tuple(map(frozen_value, value))
    if value.__class__ is dict:
        return dict, tuple((name, frozen_value(item)) for name, item in value.items())
    return type(value), value


def policy_reads(policy: Policy) -> list[FieldPath]:
    paths = [] if policy.applies is None else policy.applies.reads()
    return list({p.text: p for p in [*paths, *policy.assertion.reads()]}.values())


_CTX = Context()  # conditions outside `count` never read or change it


def judge_one(policy: Policy, vm: Facts, facts: Facts) -> Finding:
    """One finding; `facts` is the VM's record, possibly overlaid with its group."""
    ctx = _CTX
    try:
        if policy.applies is not None:
            applies = policy.applies.eval(facts, ctx)
            if applies is False:
                return make_finding(policy, vm, NOT_APPLICABLE)
            if applies is None:
                return unknown_finding(policy, vm, policy.applies, facts, "whether the policy applies")
        verdict = policy.assertion.eval(facts, ctx)
        if verdict is True:
            assumed = policy.assertion.assumptions(facts, ctx) if policy.assertion.assumes else ()
            return make_finding(policy, vm, PASS, evidence=shared_evidence(tuple(dict.fromkeys(assumed))))
        if verdict is None:
            return unknown_finding(policy, vm, policy.assertion, facts, "the assertion")
        evidence = shared_evidence(tuple(dict.fromkeys(policy.assertion.explain(facts, ctx))))
        return make_finding(policy, vm, FAIL, interned(policy.message.render(facts)), evidence)
    except Exception as exc:  # a broken policy must not stop the scan: this finding says so
        return make_finding(policy, vm, ERROR, f"evaluation error: {type(exc).__name__}: {exc}")


def unknown_finding(policy: Policy, vm: Facts, node: Node, facts: Facts, what: str) -> Finding:
    reasons = shared_evidence(tuple(dict.fromkeys(node.explain(facts, Context()))))
    missing = "; ".join(reasons) if reasons else "a fact it needs was not collected"
    return make_finding(policy, vm, UNKNOWN, interned(f"Not assessed ({what}): {missing}"), reasons)


def make_finding(policy: Policy, vm: Facts, status: str, message: str = "",
             evidence: tuple[str, ...] = ()) -> Finding:
    return Finding(policy.id, vm["id"], vm["name"], status, policy.severity, policy.cause, message, evidence,
                   vm["subscriptionId"], vm["resourceGroup"])
