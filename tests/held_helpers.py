"""Findings held as a scan holds them after judging in parts (plain_passes.py), for tests that read them against
the list of the same findings."""

from __future__ import annotations

import bisect
from itertools import pairwise

from backup_preflight.findings import Finding
from backup_preflight.packed import Unpacker, pack
from backup_preflight.plain_passes import Run, ScanFindings


def held_as(found: list[Finding], cuts: list[int]) -> ScanFindings:
    """Runs of packed parts, cut at `cuts`, and a list between them; a run may hold several policies."""
    bounds = sorted({0, len(found), *(c % (len(found) + 1) for c in cuts)})
    runs: list[Run] = []
    for n, (start, end) in enumerate(pairwise(bounds)):
        if n % 3 == 2:
            runs.append(found[start:end])
        else:
            part = Unpacker().unpack(pack(found[start:end]))
            middle = (end - start) // 2  # one part read as two runs
            runs += [(part, 0, middle), (part, middle, end - start)]
    return ScanFindings(runs)


def held_by_policy(found: list[Finding], cuts: list[int]) -> tuple[list[Finding], ScanFindings]:
    """The findings in policy order (stable; a policy is its id, severity and cause, as a part numbers them), and
    held as a scan joins its parts: runs of one policy each, of parts cut at `cuts` (a part's VM numbers read by
    several runs), every third part a list."""
    ordered = sorted(found, key=_policy)
    bounds = sorted({0, len(ordered), *(c % (len(ordered) + 1) for c in cuts)})
    runs: list[Run] = []
    for n, (start, end) in enumerate(pairwise(bounds)):
        if n % 3 == 2:
            runs.append(ordered[start:end])
            continue
        part = Unpacker().unpack(pack(ordered[start:end]))
        keys = [_policy(f) for f in ordered[start:end]]
        runs += [(part, bisect.bisect_left(keys, k), bisect.bisect_right(keys, k)) for k in sorted(set(keys))]
    return ordered, ScanFindings(runs)


def _policy(f: Finding) -> tuple[str, str, str]:
    return f.policy_id, f.severity, f.cause
