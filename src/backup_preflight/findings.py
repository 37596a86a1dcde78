"""The result types every stage after the engine shares: findings and their statuses.

A finding is one (policy, VM) verdict. Reports only render these; they never recompute one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from itertools import chain, compress, tee
from operator import attrgetter, not_
from types import MappingProxyType
from typing import Any, Protocol

import msgspec

PASS = "pass"
FAIL = "fail"
UNKNOWN = "unknown"
ERROR = "error"
EXEMPT = "exempt"
NOT_APPLICABLE = "notApplicable"
STATUSES = (PASS, FAIL, UNKNOWN, ERROR, EXEMPT, NOT_APPLICABLE)

NO_ANNOTATIONS: Mapping[str, Any] = MappingProxyType({})

SEVERITIES = ("critical", "high", "medium", "low")
#: Lower rank is more severe; `--fail-on never` has no rank at all.
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class Finding(msgspec.Struct, gc=False):
    """One policy's verdict on one resource, with what decided it and how to fix it.

    A scan holds one per (policy, VM): 1.7 million at 100,000 VMs, 17 million in a merge of
    1,000,000. A struct outside the cyclic collector (it never refers back to anything that refers
    to it) is 16 bytes smaller than a slotted dataclass and built in C (docs/performance.md).
    """

    policy_id: str
    resource_id: str
    resource_name: str
    status: str
    severity: str
    cause: str
    message: str = ""
    evidence: tuple[str, ...] = ()
    subscription_id: str = ""
    resource_group: str = ""
    #: Set by later stages through annotate(): exemption details, baseline state ("new", "unchanged").
    #: Most findings never get one, so none is allocated until then.
    notes: dict[str, Any] | None = None

    @property
    def annotations(self) -> Mapping[str, Any]:
        return self.notes if self.notes is not None else NO_ANNOTATIONS

    def annotate(self, key: str, value: Any) -> None:
        if self.notes is None:
            self.notes = {}
        self.notes[key] = value

    def key(self) -> tuple[str, str]:
        """Identity across runs: policy id and full resource id, compared case-insensitively."""
        return (self.policy_id, self.resource_id.lower())


class Held(Sequence[Finding], ABC):
    """Findings whose plain passes are held as numbers and made as they are read (plain_passes.py)."""

    __slots__ = ()

    @abstractmethod
    def objects(self) -> Iterator[Finding]:
        """Every finding held as an object, in order: all but the plain passes held as numbers (passes with no
        message, evidence or notes), so every finding that is not a plain pass."""

    @abstractmethod
    def plain_passes(self) -> Counter[tuple[str, str, str]]:
        """How many passes are held as numbers, by (policy id, severity, cause)."""

    @abstractmethod
    def plain_passes_of(self, ids: Container[str]) -> Iterator[Finding]:
        """The passes held as numbers of the VMs whose lowercase id is in `ids`, made as findings, in order."""

    @abstractmethod
    def walk(self) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
        """Every finding in order, a run at a time (see `walk`)."""


class Plain(Protocol):
    """Where the plain passes of a run that `walk` gives as numbers are held: each VM's id, name, subscription
    and resource group by its number, and each policy's id, severity and cause by its number."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    subscriptions: tuple[str, ...]
    groups: tuple[str, ...]
    policy_ids: tuple[str, ...]
    severities: tuple[str, ...]
    causes: tuple[str, ...]

    def made(self, vm: int, policy: int) -> Finding:
        """The plain pass of this VM and policy as a Finding."""
        ...


def walk(findings: Sequence[Finding]) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
    """Every finding in order, a run at a time, for what reads every verdict but needs of a plain pass only its
    VM and policy. A run of one policy whose plain passes are held as numbers comes as (where they are held, the
    policy's number, its findings) with each plain pass as its VM's number, never made; any other run as (None,
    -1, its findings). Every finding that is not a plain pass is an object."""
    return findings.walk() if isinstance(findings, Held) else as_objects(findings)


def as_objects(findings: Iterable[Finding]) -> Iterator[tuple[Plain | None, int, Iterator[Finding | int]]]:
    """One run of findings that are all objects, as `walk` gives it."""
    return iter(((None, -1, iter(findings)),))


def held(findings: Sequence[Finding]) -> Iterable[Finding]:
    """The findings held as objects, in order: all of a list's; what `plain_passes` counts is left out."""
    return findings.objects() if isinstance(findings, Held) else findings


def of_vms(findings: Sequence[Finding], ids: Container[str]) -> Iterator[Finding]:
    """The findings of the VMs whose lowercase id is in `ids`: those held as objects first, then the plain
    passes, each in order; for what reads a few VMs' verdicts in any order."""
    data, keys = _two(findings, True)
    return chain(compress(data, map(ids.__contains__, map(str.lower, map(_ID, keys)))), plain_passes_of(findings, ids))


def plain_passes_of(findings: Sequence[Finding], ids: Container[str]) -> Iterator[Finding]:
    """The passes that `held` leaves out, of the VMs whose lowercase id is in `ids`, made as findings in order."""
    return findings.plain_passes_of(ids) if isinstance(findings, Held) else iter(())


#: The fields a plain pass's count is kept by (plain_passes), and its status.
_PLAIN_FIELDS = ("policy_id", "severity", "cause")


def count_by(findings: Sequence[Finding], fields: tuple[str, str, *tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """How many findings have each combination of values of these two or more fields (of policy_id, severity,
    cause and status): the objects counted in C, the plain passes from their counts, never made."""
    counts: Counter[tuple[str, ...]] = Counter(map(attrgetter(*fields), held(findings)))
    for plain, n in plain_passes(findings).items():
        values = {**dict(zip(_PLAIN_FIELDS, plain, strict=True)), "status": PASS}
        counts[tuple(values[name] for name in fields)] += n
    return counts


def plain_passes(findings: Sequence[Finding]) -> Counter[tuple[str, str, str]]:
    """The passes that `held` leaves out, counted by (policy id, severity, cause): none of a list's. What only
    counts findings by their policy and status reads both, and never makes a Finding of a plain pass."""
    return findings.plain_passes() if isinstance(findings, Held) else Counter()


_STATUS = attrgetter("status")
_ID = attrgetter("resource_id")
_NOTES = attrgetter("notes")


def with_status(findings: Iterable[Finding], statuses: Container[str]) -> Iterator[Finding]:
    """The findings with one of these statuses, in order; the filter runs in C, so the passes (70 % of a
    scan's findings, 12 million at 1,000,000 VMs) are skipped without a Python step each."""
    data, keys = _two(findings, PASS not in statuses)
    return compress(data, map(statuses.__contains__, map(_STATUS, keys)))


def without_status(findings: Iterable[Finding], statuses: Container[str]) -> Iterator[Finding]:
    """The findings with none of these statuses, in order; filtered in C as `with_status`."""
    data, keys = _two(findings, PASS in statuses)
    return compress(data, map(not_, map(statuses.__contains__, map(_STATUS, keys))))


def annotated(findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings that carry annotations (exemptions, baseline marks, probe observations), in order;
    filtered in C as `with_status`."""
    data, keys = _two(findings, True)
    return compress(data, map(_NOTES, keys))


def _two(findings: Iterable[Finding], no_plain_pass: bool) -> tuple[Iterable[Finding], Iterable[Finding]]:
    """The findings twice, to filter one by the other: a list as it is; findings whose plain passes are held
    as numbers (plain_passes.py) read once, and without those passes when none of them is wanted."""
    if isinstance(findings, list):
        return findings, findings
    return tee(findings.objects() if isinstance(findings, Held) and no_plain_pass else findings)
