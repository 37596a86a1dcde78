"""Write every output file of a scan, all or nothing, several at once when the scan may use more cores.

Each report is rendered into a staging folder beside the output folder; only when all of them
succeeded is the staging folder swapped in for the output folder in one step (report.publish),
so a failed, interrupted or concurrent run never leaves a half-written or a mixed set behind.

With more than one job (`scan --jobs`) and enough findings to be worth it, reports are shared out between
this process and child processes forked for them (workers.py), as far as memory allows: a child reads every
finding, and so comes to hold its own copy of the pages that hold them (CPython counts references in the
objects themselves), up to what this process holds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from backup_preflight.gcpause import gc_paused
from backup_preflight.report import findings_csv, html, junit, markdown, results_json
from backup_preflight.report.publish import Staged, claim
from backup_preflight.results import ScanResult
from backup_preflight.workers import Workers, memory_room, resident

__all__ = ["WRITERS", "claim", "write_all", "write_set"]

log = logging.getLogger("backup_preflight.report")

Writer = Callable[[ScanResult, Path], None]

#: Output file name → renderer. Every renderer writes one complete file at the given path.
WRITERS: dict[str, Writer] = {
    "results.json": results_json.write,
    "junit.xml": junit.write,
    "report.html": html.write,
    "summary.md": markdown.write,
    "findings.csv": findings_csv.write,
}


def write_all(result: ScanResult, output_dir: Path, junit_passes: str = "aggregate",
              junit_unknowns: str = "auto") -> list[Path]:
    """Claim the folder, write the set and publish it (the CLI claims earlier, before the scan)."""
    with claim(output_dir) as staged:
        return write_set(result, staged, junit_passes, junit_unknowns)


#: What each report takes to write, relative to the others (at 100,000 VMs, docs/performance.md): they are
#: shared out largest first, each to the process with the least to do so far.
_WEIGHT = {"report.html": 3.2, "findings.csv": 2.0, "results.json": 2.2, "junit.xml": 0.9, "summary.md": 0.6}
#: Below this many findings writing every report takes about a second: it all happens in this process.
APART_FINDINGS = 100_000


def write_set(result: ScanResult, staged: Staged, junit_passes: str = "aggregate",
              junit_unknowns: str = "auto", jobs: int = 1) -> list[Path]:
    """Render every report into the staging folder, up to `jobs` at once, then publish them together."""
    writers = {**WRITERS, "junit.xml": junit.writer(junit_passes, junit_unknowns)}

    def write(names: tuple[str, ...]) -> None:
        for name in names:
            started = time.perf_counter()
            with gc_paused():
                writers[name](result, staged.staging / name)
            log.debug("%s written in %.1f s", name, time.perf_counter() - started)
            os.chmod(staged.staging / name, 0o644)  # reports are artifacts others read

    def write_apart(names: tuple[str, ...]) -> OSError | None:
        try:
            write(names)
        except OSError as exc:  # the environment (a full disk): raised in the run as it would be here
            return exc
        return None

    mine, *theirs = lanes(tuple(writers), 1 + helpers(jobs, len(result.findings)))
    with Workers(1 + len(theirs), write, write_apart, doing="writing reports",
                 lighter="fewer --jobs need less") as others:
        for lane in theirs:
            others.start(lane)
        write(mine)
        while others.busy:
            failure = others.next()[1]
            if failure is not None:
                raise failure
    staged.publish(frozenset(writers))
    return [staged.shown / name for name in writers]


#: What this process may grow by while it writes its reports, as a share of what it holds when it starts:
#: 0.25 measured at 1,000,000 VMs (3.2 GB, then 4.0 GB), so a child's room is counted after twice that.
OWN_GROWTH = 0.5
#: What a child writing reports may come to take, as a share of what this process holds: it copies the pages
#: of every finding it reads (all of them, at worst) and adds what its reports build. Measured at 1,000,000 VMs:
#: 0.76 (docs/performance.md); a child the kernel kills for want of memory ends the run, so this is cautious.
CHILD_SHARE = 1.25


def helpers(jobs: int, findings: int) -> int:
    """How many child processes write reports beside this one: up to one fewer than the jobs, none for a
    small scan, and only as many as the memory left holds once this process has grown (OWN_GROWTH), at
    CHILD_SHARE of what this process holds each."""
    if jobs < 2 or findings < APART_FINDINGS:
        return 0
    room, held = memory_room(), resident()
    if room is None or not held:
        log.debug("the reports are written one at a time: the memory left is not known here")
        return 0
    count = min(jobs - 1, len(WRITERS) - 1, max(0, int((room - OWN_GROWTH * held) // (CHILD_SHARE * held))))
    log.debug("the reports are written by %d process(es): %.1f GB left, this process holds %.1f GB", 1 + count,
              room / 1e9, held / 1e9)
    return count


def lanes(names: tuple[str, ...], count: int) -> list[tuple[str, ...]]:
    """The reports shared out among `count` processes, largest first to the one with the least to do (the
    first is this process's); none is left empty."""
    count = max(1, min(count, len(names)))
    shares: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for name in sorted(names, key=lambda n: -_WEIGHT.get(n, 1.0)):
        least = loads.index(min(loads))
        shares[least].append(name)
        loads[least] += _WEIGHT.get(name, 1.0)
    return [tuple(share) for share in shares]
