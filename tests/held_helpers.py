"""Findings held as a scan holds them after judging in parts (plain_passes.py), for tests that read them against
the list of the same findings."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from itertools import pairwise

from backup_preflight.findings import Finding
from backup_preflight.packed import Unpacker, pack
from backup_preflight.plain_passes import PLAIN, PartFindings, Run, ScanFindings


def plain(f: Finding) -> bool:
    """Oracle: a pass with nothing more to say."""
    return f.status == "pass" and not f.message and not f.evidence and not f.notes


def part_of(found: list[Finding]) -> PartFindings:
    """Any findings as a part holds them: each distinct VM (id, name, subscription, resource group) and policy (id,
    severity, cause) numbered, each plain pass held as its numbers, every other finding as its object."""
    vms: dict[tuple[str, ...], int] = {}
    policies: dict[tuple[str, ...], int] = {}
    vm = array("I", (vms.setdefault((f.resource_id, f.resource_name, f.subscription_id, f.resource_group), len(vms))
                     for f in found))
    policy = array("I", (policies.setdefault((f.policy_id, f.severity, f.cause), len(policies)) for f in found))
    return PartFindings(_columns(vms, 4), _columns(policies, 3), vm, policy,
                        bytes(PLAIN if plain(f) else 0 for f in found), [f for f in found if not plain(f)])


def packed_part(found: list[Finding]) -> PartFindings:
    """The findings as a part judged in a child process comes back: held as a part, packed and unpacked."""
    return Unpacker().unpack(pack(part_of(found)))


def _columns(entries: dict[tuple[str, ...], int], width: int) -> tuple[tuple[str, ...], ...]:
    return tuple(zip(*entries, strict=True)) if entries else ((),) * width


def held_as(found: list[Finding], cuts: list[int]) -> ScanFindings:
    """Runs of packed parts, cut at `cuts`, and a list between them; a run may hold several policies."""

    def halves(part: PartFindings, _: list[Finding]) -> list[Run]:
        middle = len(part) // 2  # one part read as two runs
        return [(part, 0, middle), (part, middle, len(part))]

    return _held(found, cuts, halves)


def held_by_policy(found: list[Finding], cuts: list[int]) -> tuple[list[Finding], ScanFindings]:
    """The findings in policy order (stable; a policy is its id, severity and cause, as a part numbers them), and
    held as a scan joins its parts: runs of one policy each, of parts cut at `cuts` (a part's VM numbers read by
    several runs), every third part a list."""

    def per_policy(part: PartFindings, packed: list[Finding]) -> list[Run]:
        keys = [_policy(f) for f in packed]
        return [(part, bisect.bisect_left(keys, k), bisect.bisect_right(keys, k)) for k in sorted(set(keys))]

    ordered = sorted(found, key=_policy)
    return ordered, _held(ordered, cuts, per_policy)


def _held(found: list[Finding], cuts: list[int], runs_of: Callable[[PartFindings, list[Finding]], list[Run]]
          ) -> ScanFindings:
    """The findings cut at `cuts`: every third piece a list, the others packed parts read as `runs_of` says."""
    bounds = sorted({0, len(found), *(c % (len(found) + 1) for c in cuts)})
    runs: list[Run] = []
    for n, (start, end) in enumerate(pairwise(bounds)):
        piece = found[start:end]
        runs += [piece] if n % 3 == 2 else runs_of(packed_part(piece), piece)
    return ScanFindings(runs)


def _policy(f: Finding) -> tuple[str, str, str]:
    return f.policy_id, f.severity, f.cause
