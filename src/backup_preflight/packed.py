"""Findings as columns, to carry a part's findings out of the process that judged it (judging.py).

A part is judged in a child process so that its estate's millions of short-lived objects never share a
heap with the findings kept from earlier parts (docs/performance.md: they made each part slower than
the last). What comes back is one message, not an object per finding: the part's table of VMs (id, name,
subscription, resource group) and of policies (id, severity, cause), then per finding a VM number, a
policy number and a status byte, as the engine holds them (engine.evaluate_held); messages, evidence and
notes only where a finding has them. Unpacked, a VM's strings are shared by its findings, as the engine
shares them.
"""

from __future__ import annotations

import sys
from array import array
from itertools import chain, compress, repeat
from operator import attrgetter, not_
from typing import Any

import msgspec

from backup_preflight.findings import PASS, STATUSES, Finding
from backup_preflight.plain_passes import PLAIN, PartFindings

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


def pack(part: PartFindings) -> bytes:
    """The part's findings as one message: its tables, each finding's numbers and status, and what the findings
    held as objects say beyond their status."""
    count, kept = len(part.plain), part.kept
    codes = bytearray([_CODE[PASS]]) * count  # a plain pass's code
    at = list(compress(range(count), map(not_, part.plain)))  # where each object is among the findings
    statuses = list(map(_STATUS, kept))
    odd = [(at[n], statuses[n]) for n in compress(range(len(kept)), map(not_, map(_CODE.__contains__, statuses)))]
    for n, code in zip(at, map(_CODE.get, statuses, repeat(0, len(kept))), strict=True):
        codes[n] = code
    more = [(at[n], *_MORE(kept[n])) for n in compress(range(len(kept)), map(any, map(_MORE, kept)))]
    return _ENCODE(Packed(list(zip(part.ids, part.names, part.subscriptions, part.groups, strict=True)),
                          list(zip(part.policy_ids, part.severities, part.causes, strict=True)), part.vm.tobytes(),
                          part.policy.tobytes(), bytes(codes), more, odd))


_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(Packed).decode


class Unpacker:
    """Rebuilds packed parts' findings, their plain passes left as numbers (plain_passes.py); equal evidence,
    messages, subscriptions and resource groups are one object across all the parts it unpacks."""

    def __init__(self) -> None:
        self._evidence: dict[tuple[str, ...], tuple[str, ...]] = {}

    def unpack(self, data: bytes) -> PartFindings:
        packed = _DECODE(data)
        count = len(packed.status)
        if not count:
            return PartFindings(((), (), (), ()), ((), (), ()), array("I"), array("I"), b"", [])
        ids, names, subscriptions, groups = (tuple(column) for column in zip(*packed.vms, strict=True))
        policy_ids, severities, causes = (tuple(map(sys.intern, column)) for column in zip(*packed.policies,
                                                                                        strict=True))
        subscriptions, groups = tuple(map(sys.intern, subscriptions)), tuple(map(sys.intern, groups))
        vm, policy = array("I"), array("I")
        vm.frombytes(packed.vm)
        policy.frombytes(packed.policy)
        plain = bytearray(packed.status.translate(_PLAIN))
        for i, *_ in chain(packed.odd, packed.more):
            plain[i] = 0
        kept = bytes(map(not_, plain))
        at = {position: n for n, position in enumerate(compress(range(count), kept))}
        vm_kept, policy_kept = array("I", compress(vm, kept)), array("I", compress(policy, kept))
        statuses = list(map(STATUSES.__getitem__, compress(packed.status, kept)))
        for i, status in packed.odd:
            statuses[at[i]] = status
        messages: list[str] = [""] * len(at)
        evidence: list[tuple[str, ...]] = [()] * len(at)
        notes: list[dict[str, Any] | None] = [None] * len(at)
        shared = self._evidence.setdefault
        for i, message, said, noted in packed.more:
            n = at[i]
            messages[n] = sys.intern(message)
            evidence[n] = shared(said, said)
            notes[n] = noted
        objects = list(map(Finding, map(policy_ids.__getitem__, policy_kept), map(ids.__getitem__, vm_kept),
                           map(names.__getitem__, vm_kept), statuses, map(severities.__getitem__, policy_kept),
                           map(causes.__getitem__, policy_kept), messages, evidence,
                           map(subscriptions.__getitem__, vm_kept), map(groups.__getitem__, vm_kept), notes))
        return PartFindings((ids, names, subscriptions, groups), (policy_ids, severities, causes), vm, policy,
                            bytes(plain), objects)


#: Each status byte's mark: a pass's is PLAIN (unless the finding says more, or its status is odd), any other's 0.
_PLAIN = bytes(PLAIN if code == _CODE[PASS] else 0 for code in range(256))
