"""Findings as columns, to carry a part's findings out of the process that judged it (judging.py).

A part is judged in a child process so that its estate's millions of short-lived objects never share a
heap with the findings kept from earlier parts (docs/performance.md: they made each part slower than
the last). What comes back is one message, not an object per finding: each distinct VM (id, name,
subscription, resource group) and policy (id, severity, cause) once, then per finding a VM number, a
policy number and a status byte; messages, evidence and notes only where a finding has them. Unpacked,
a VM's strings are shared by its findings, as the engine shares them.
"""

from __future__ import annotations

import sys
from array import array
from itertools import compress, repeat
from operator import attrgetter
from typing import Any

import msgspec

from backup_preflight.findings import STATUSES, Finding

_STATUS = attrgetter("status")
_MORE = attrgetter("message", "evidence", "notes")
_CODE = {status: code for code, status in enumerate(STATUSES)}


class Packed(msgspec.Struct, array_like=True, gc=False):
    """One part's findings, in their order."""

    vms: list[tuple[str, str, str, str]]
    policies: list[tuple[str, str, str]]
    vm: bytes  # array("I"): each finding's index into `vms`
    policy: bytes  # array("I"): each finding's index into `policies`
    status: bytes  # each finding's index into findings.STATUSES (an unknown status is kept in `odd`)
    #: (finding number, message, evidence, notes) of each finding with more than its status to say.
    more: list[tuple[int, str, tuple[str, ...], dict[str, Any] | None]]
    #: (finding number, status) of a finding whose status is not one of findings.STATUSES.
    odd: list[tuple[int, str]]


def pack(findings: list[Finding]) -> bytes:
    return _ENCODE(_packed(findings))


def _packed(findings: list[Finding]) -> Packed:
    vms, vm = _numbered(findings, ("resource_id", "resource_name", "subscription_id", "resource_group"))
    policies, policy = _numbered(findings, ("policy_id", "severity", "cause"))
    statuses = list(map(_STATUS, findings))
    codes = bytes(map(_CODE.get, statuses, repeat(len(STATUSES), len(statuses))))
    odd = [(i, statuses[i]) for i in compress(range(len(codes)), map(len(STATUSES).__eq__, codes))]
    more = [(i, *_MORE(findings[i])) for i in compress(range(len(findings)), map(any, map(_MORE, findings)))]
    return Packed(vms, policies, vm.tobytes(), policy.tobytes(), codes.replace(bytes([len(STATUSES)]), b"\0"),
                  more, odd)


def _numbered(findings: list[Finding], fields: tuple[str, ...]) -> tuple[list[Any], array[int]]:
    """The distinct entries (the values of `fields`) and each finding's number among them. Findings are
    numbered by the first field alone, in C, when every finding has its first one's other fields (the
    engine's findings do); else by the whole entry."""
    keys = list(map(attrgetter(fields[0]), findings))
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))  # each key's first finding
    entries = [attrgetter(*fields)(findings[i]) for i in first.values()]
    numbered = array("I", map(dict(zip(first, range(len(first)), strict=True)).__getitem__, keys))
    # Lists compare equal items by identity first, in C: the engine's findings share their VM's strings.
    if all(list(map(attrgetter(name), findings)) == list(map([e[n] for e in entries].__getitem__, numbered))
           for n, name in enumerate(fields[1:], 1)):
        return entries, numbered
    whole = list(map(attrgetter(*fields), findings))
    numbers = {distinct: n for n, distinct in enumerate(dict.fromkeys(whole))}
    return list(numbers), array("I", map(numbers.__getitem__, whole))


_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(Packed).decode


class Unpacker:
    """Rebuilds findings from packed parts; equal evidence, messages, subscriptions and resource groups
    are one object across all the parts it unpacks."""

    def __init__(self) -> None:
        self._evidence: dict[tuple[str, ...], tuple[str, ...]] = {}

    def unpack(self, data: bytes) -> list[Finding]:
        packed = _DECODE(data)
        count = len(packed.status)
        if not count:
            return []
        ids, names, subscriptions, groups = (tuple(column) for column in zip(*packed.vms, strict=True))
        subscriptions, groups = tuple(map(sys.intern, subscriptions)), tuple(map(sys.intern, groups))
        policy_ids, severities, causes = (tuple(map(sys.intern, column)) for column in zip(*packed.policies,
                                                                                        strict=True))
        vm, policy = array("I"), array("I")
        vm.frombytes(packed.vm)
        policy.frombytes(packed.policy)
        statuses = list(map(STATUSES.__getitem__, packed.status))
        for i, status in packed.odd:
            statuses[i] = status
        messages: list[str] = [""] * count
        evidence: list[tuple[str, ...]] = [()] * count
        notes: list[dict[str, Any] | None] = [None] * count
        shared = self._evidence.setdefault
        for i, message, said, noted in packed.more:
            messages[i] = sys.intern(message)
            evidence[i] = shared(said, said)
            notes[i] = noted
        return list(map(Finding, map(policy_ids.__getitem__, policy), map(ids.__getitem__, vm),
                        map(names.__getitem__, vm), statuses, map(severities.__getitem__, policy),
                        map(causes.__getitem__, policy), messages, evidence,
                        map(subscriptions.__getitem__, vm), map(groups.__getitem__, vm), notes))

