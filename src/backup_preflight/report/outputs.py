"""Write every output file of a scan, all or nothing.

Each report is rendered into a staging folder beside the output folder; only when all of them
succeeded is the staging folder swapped in for the output folder in one step (report.publish),
so a failed, interrupted or concurrent run never leaves a half-written or a mixed set behind.
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


def write_set(result: ScanResult, staged: Staged, junit_passes: str = "aggregate",
              junit_unknowns: str = "auto") -> list[Path]:
    """Render every report into the staging folder, then publish them together."""
    writers = {**WRITERS, "junit.xml": junit.writer(junit_passes, junit_unknowns)}
    for name, writer in writers.items():
        started = time.perf_counter()
        with gc_paused():
            writer(result, staged.staging / name)
        log.debug("%s written in %.1f s", name, time.perf_counter() - started)
        os.chmod(staged.staging / name, 0o644)  # reports are artifacts others read
    staged.publish(frozenset(writers))
    return [staged.shown / name for name in writers]
