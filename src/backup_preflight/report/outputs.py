"""Write every output file of a scan, all or nothing.

Each report is rendered into a temporary file in the output folder; only when all of them
succeeded are they renamed into place, so a failed run never leaves a half-written or a
mixed set of reports behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from backup_preflight.gcpause import gc_paused
from backup_preflight.report import findings_csv, html, junit, markdown, results_json
from backup_preflight.results import ScanResult

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
              junit_unknowns: str = "aggregate") -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    writers = {**WRITERS, "junit.xml": junit.writer(junit_passes, junit_unknowns)}
    staged: list[tuple[Path, Path]] = []
    try:
        for name, writer in writers.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=output_dir)
            os.close(fd)
            staged.append((Path(tmp), output_dir / name))
            with gc_paused():
                writer(result, Path(tmp))
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are artifacts others read
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]
