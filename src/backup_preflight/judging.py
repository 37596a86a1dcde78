"""The estate and engine stages of a run: one estate at once, or a split one (estate/parts.py) part by part.

Either way the run gets the same `Judged`: the findings in a scan's order (policy, then VM id) and what
the reports and `merge` need of the VMs, so the rest of the run never holds the estate's facts.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from backup_preflight.estate import build_estate
from backup_preflight.estate.build import Estate
from backup_preflight.estate.parts import Lookups, Split
from backup_preflight.findings import Finding
from backup_preflight.packed import Unpacker, pack
from backup_preflight.plain_passes import PartFindings, Run, ScanFindings, read_run
from backup_preflight.policy.engine import evaluate, evaluate_held
from backup_preflight.policy.loader import PolicySet
from backup_preflight.policy.observed import note_observations, probed_vms
from backup_preflight.review.shard import Groups, group_keys, time_zones
from backup_preflight.service_tags import ServiceTags
from backup_preflight.workers import Workers, keep_until_exit

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Judged:
    """The findings, and what the reports and `merge` need of the VMs."""

    #: Plain passes held as numbers (plain_passes.py): as the engine gives them, or packed from a child and joined.
    findings: Sequence[Finding]
    vms: int
    tags: dict[str, dict[str, dict[str, str]]]
    subscriptions: dict[str, dict[str, Any]]
    unnamed: set[str]
    #: The VMs with a last failed job, in the estate's order: the job diagnosis is made after the review step.
    failed_jobs: list[dict[str, Any]]
    #: Group keys of the grouped policies and the backup time zones (review/shard.py); empty unless asked for.
    groups: Groups
    zones: set[str]
    #: What the run asked of each part's estate besides its verdicts (`judge_in_parts`'s `about`), joined.
    about: dict[str, Any] = field(default_factory=dict)
    #: Of an estate judged in parts, what each part that stood judged and read (a what-if judges the current
    #: estate only where the plan reaches, whatif/gate.py).
    parts: list[Reach] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reach:
    """A part that stood: the subscriptions whose VMs it judged, every subscription its rows were read from or
    its lookups missed in (a subscription without rows), and its VMs' groups of the grouped policies."""

    owned: frozenset[str]
    read: frozenset[str]
    groups: Groups


def judge(estate: Estate, policies: PolicySet, queries: dict[str, dict[str, Any]], groups: bool = False) -> Judged:
    """Evaluate the policies on the estate and keep what the run needs; with `groups`, the group keys
    and time zones too."""
    vms = estate.vms
    found = evaluate_held(policies, vms, queries, keep=probed_vms(vms))
    note_observations(found.objects(), policies.policies, vms)
    return Judged(found, len(vms), estate.tags(), estate.subscriptions(), set(estate.unnamed_subscriptions()),
                  [_diagnosable(vm) for vm in vms if (vm.get("backup") or {}).get("lastFailedJob")],
                  group_keys(policies, vms, found, queries) if groups else {}, time_zones(vms) if groups else set())


#: What a run asks of each part's estate (a what-if's planned changes related to each VM), keyed by VM.
About = Callable[[Estate], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Part:
    """Subscriptions judged together (`owned`), and subscriptions without VMs whose rows they reach into,
    read alongside (`borrowed`: a hub's network, read by every part that needs it)."""

    owned: frozenset[str]
    borrowed: frozenset[str] = frozenset()


def _diagnosable(vm: dict[str, Any]) -> dict[str, Any]:
    """What the job diagnosis reads of a VM; not its facts, which hold its part's network model and rows."""
    return {"id": vm["id"], "name": vm["name"], "subscriptionId": vm["subscriptionId"],
            "resourceGroup": vm["resourceGroup"], "backup": {"lastFailedJob": vm["backup"]["lastFailedJob"]}}


def judge_in_parts(split: Split, policies: PolicySet, clock: datetime, service_tags: ServiceTags | None,
                   part_vms: int, jobs: int = 1, about: About | None = None, only: set[str] | None = None,
                   beside: Sequence[Reach] = ()) -> Judged:
    """Build and judge the split estate a part at a time (`jobs` parts at once, each in a child process, when
    more than one), then join the parts' findings as one scan's.

    A part that reaches into subscriptions outside it (estate/parts.py) is judged again: with them read
    alongside when they hold no VMs, else joined with the parts that hold them, as are parts that share a
    group of a grouped policy. `about` is asked of each part's estate once it is judged, its rows' lookups
    noted as the facts' are; what it gives, keyed by VM, is joined into the `about` of the whole.

    With `only`, just the subscriptions judged together with these are (and whatever they reach into); `beside`
    then holds parts not judged, whose groups a judged part must not share: one that does is judged too."""
    on_vms = PolicySet([p for p in policies.policies if p.query is None])
    on_queries = PolicySet([p for p in policies.policies if p.query is not None])
    queried = evaluate(on_queries, [], split.header.queries)
    judge_part = _PartJudge(split, on_vms, clock, service_tags, {f.resource_id.lower() for f in queried}, about)
    classes = split.classes() if only is None else [c for c in split.classes() if c & only]
    pending = [_Part(units) for units in _pack(classes, split.vms, part_vms)]
    beside = list(beside)
    done: list[tuple[_Part, _Outcome]] = []
    started: dict[_Part, float] = {}
    jobs = max(1, min(jobs, len(pending)))  # a lone part is judged here: a child would only add packing and forking
    with Workers(jobs, judge_part.here, judge_part.elsewhere) as workers:
        while pending or workers.busy:
            while pending and workers.free:
                started[pending[0]] = time.perf_counter()
                workers.start(pending.pop(0))
            part, outcome = workers.next()
            took = time.perf_counter() - started.pop(part)
            inside = part.owned | part.borrowed
            reached = split.members(u for u in outcome.missed if split.has(u)) - inside
            borrow = {u for u in reached if not any(split.vms[m] for m in split.members([u]))}
            clashing = [d[0] for d in done if _clash(outcome.judged.groups, d[1].judged.groups)]
            if near := [b for b in beside if _clash(outcome.judged.groups, b.groups)]:
                beside = [b for b in beside if b not in near]
                if joined := split.members(set().union(*(b.owned for b in near))):
                    clashing.append(_Part(frozenset(joined)))
            if not reached and not clashing:
                judge_part.unpack(outcome)  # only a part that stands: one judged again is thrown away
                outcome.read = inside | outcome.missed
                done.append((part, outcome))
                log.debug("part %d: %s VMs judged in %.1f s; %d to go", len(done), f"{outcome.judged.vms:,}",
                          took, len(pending))
                continue
            owned, borrowed = set(part.owned | reached - borrow), set(part.borrowed | borrow)
            log.info("a part of %d subscription(s) reaches into %s; judged again %s", len(part.owned),
                     ", ".join(sorted(reached)) or "a group of a grouped policy in another part",
                     "with them read alongside" if owned == part.owned and not clashing else "joined with their parts")
            for other in clashing:
                owned |= other.owned
            while grown := ([d[0] for d in done if d[0].owned & owned] + [p for p in pending if p.owned & owned]
                            + workers.drop(partial(_overlaps, owned))):
                done = [d for d in done if not d[0].owned & owned]
                pending = [p for p in pending if not p.owned & owned]
                for other in grown:
                    owned |= other.owned
                    borrowed |= other.borrowed
                    started.pop(other, None)  # a running part stopped here is never returned by next()
            pending.insert(0, _Part(frozenset(owned), frozenset(borrowed - owned)))
    at_once = "one at a time in this process" if jobs == 1 else f"up to {jobs} at once in child processes"
    log.info("judged %s VMs in %d part(s) of up to %s VMs, %s", f"{sum(d[1].judged.vms for d in done):,}", len(done),
             f"{part_vms:,}", at_once)
    for _, outcome in done:  # noted once, from the parts that stand, however often a VM's part was judged
        note_observations(queried, on_queries.policies, outcome.observed)
    judged = _joined(policies, queried, [d[1].judged for d in done], split.header.queries, on_queries)
    judged.parts = [Reach(part.owned, outcome.read, outcome.judged.groups) for part, outcome in done]
    return judged


@dataclass(slots=True)
class _Outcome:
    """A part's Judged, the subscriptions its lookups missed, and the VMs the custom queries' findings name
    with their guest facts (for note_observations). From a child, the findings come packed."""

    judged: Judged
    missed: set[str]
    observed: list[dict[str, Any]]
    packed: bytes | None = None
    #: Once it stands: what its part judged and read (Reach.read).
    read: frozenset[str] = frozenset()


class _PartJudge:
    """Judges one part: here, or in a child process (`elsewhere`), whose findings travel packed and whose
    estate is never freed (workers.py)."""

    def __init__(self, split: Split, policies: PolicySet, clock: datetime, service_tags: ServiceTags | None,
                 named: set[str], about: About | None = None) -> None:
        self._split, self._policies, self._clock, self._service_tags = split, policies, clock, service_tags
        self._named, self._about = named, about
        self._unpacker = Unpacker()

    def _judge(self, part: _Part) -> tuple[_Outcome, Estate]:
        inside = part.owned | part.borrowed
        lookups = Lookups(inside)
        estate = build_estate(self._split.snapshot(inside), self._clock, self._service_tags, lookups)
        judged = judge(estate, self._policies, self._split.header.queries, groups=True)
        if self._about is not None:
            judged.about = self._about(estate)
        observed = [{"id": vm["id"], "guest": vm["guest"]} for vm in estate.vms
                    if isinstance(vm.get("guest"), dict) and vm["id"].lower() in self._named]
        return _Outcome(judged, lookups.missed, observed), estate

    def here(self, part: _Part) -> _Outcome:
        return self._judge(part)[0]

    def elsewhere(self, part: _Part) -> _Outcome:
        outcome, estate = self._judge(part)
        found = outcome.judged.findings
        assert isinstance(found, PartFindings)  # as judge() holds them
        keep_until_exit((estate, found))
        outcome.packed = pack(found)
        outcome.judged.findings = []
        return outcome

    def unpack(self, outcome: _Outcome) -> None:
        if outcome.packed is not None:
            outcome.judged.findings = self._unpacker.unpack(outcome.packed)
            outcome.packed = None


def _pack(classes: list[frozenset[str]], vms: dict[str, int], size: int) -> list[frozenset[str]]:
    """Classes of subscriptions packed in order into parts of at most `size` VMs (a larger class alone)."""
    parts: list[frozenset[str]] = []
    current: set[str] = set()
    held = 0
    for members in classes:
        count = sum(vms.get(u, 0) for u in members)
        if current and held + count > size:
            parts.append(frozenset(current))
            current, held = set(), 0
        current |= members
        held += count
    return [*parts, frozenset(current)] if current else parts


def _overlaps(owned: set[str], part: _Part) -> bool:
    return bool(part.owned & owned)


def _clash(a: Groups, b: Groups) -> bool:
    return any(keys & b.get(policy, set()) for policy, keys in a.items())


def _in_order(policies: PolicySet, streams: list[list[Finding] | PartFindings]) -> ScanFindings:
    """The findings of all streams (each in policy order, then VM id; no VM in two) in that order.

    Per policy, each stream holds one run of findings (found by bisection). Parts are whole subscriptions
    packed in order, so their runs usually follow each other by VM id: then they are joined as they are
    (a part's run stays its numbers), else merged into a list (17 million findings at 1,000,000 VMs: 1 s
    instead of 30)."""
    position = {p.id: i for i, p in enumerate(policies.policies)}
    heads = [_Head(stream, position) for stream in streams]
    out: list[Run] = []
    for i in range(len(policies.policies)):
        runs = [run for head in heads if (run := head.run(i))]
        runs.sort(key=lambda run: _low(run, 0))
        if all(_low(a, -1) < _low(b, 0) for a, b in itertools.pairwise(runs)):
            out.extend(runs)
        elif runs:
            out.append(list(heapq.merge(*map(read_run, runs), key=lambda f: f.resource_id.lower())))
    return ScanFindings(out)


class _Head:
    """Where one stream's next policy's run starts."""

    def __init__(self, stream: list[Finding] | PartFindings, position: dict[str, int]) -> None:
        self.stream, self.start = stream, 0
        if isinstance(stream, PartFindings):
            self.keys: Any = stream.policy
            self.key: Callable[[Any], int] = [position[p] for p in stream.policy_ids].__getitem__
        else:
            self.keys, self.key = stream, lambda f: position[f.policy_id]

    def run(self, policy: int) -> Run | None:
        """The stream's run of the policy at this position (the policies before it are behind)."""
        start, end = self.start, bisect.bisect_right(self.keys, policy, lo=self.start, key=self.key)
        self.start = end
        if end == start:
            return None
        return (self.stream, start, end) if isinstance(self.stream, PartFindings) else self.stream[start:end]


def _low(run: Run, at: int) -> str:
    """The lowered id of the VM of a run's first (0) or last (-1) finding."""
    if isinstance(run, list):
        return run[at].resource_id.lower()
    part, start, end = run
    return part.resource_id(start if at == 0 else end - 1).lower()


def _joined(policies: PolicySet, queried: list[Finding], parts: list[Judged], queries: dict[str, dict[str, Any]],
            on_queries: PolicySet) -> Judged:
    """The parts as one scan's Judged: findings in policy order, then VM id, as evaluate orders them."""
    findings = _in_order(policies, [queried, *(p.findings for p in parts)])
    groups = group_keys(on_queries, [], queried, queries)
    for part in parts:
        for policy, keys in part.groups.items():
            groups.setdefault(policy, set()).update(keys)
    return Judged(findings, sum(p.vms for p in parts),
                  dict(sorted((k, v) for p in parts for k, v in p.tags.items())),
                  dict(sorted((k, v) for p in parts for k, v in p.subscriptions.items())),
                  set().union(*(p.unnamed for p in parts)),
                  sorted((vm for p in parts for vm in p.failed_jobs), key=lambda vm: vm["id"].lower()),
                  {p.id: groups[p.id] for p in policies.policies if p.id in groups},
                  set().union(*(p.zones for p in parts)), {k: v for p in parts for k, v in p.about.items()})
