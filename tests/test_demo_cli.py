"""`demo-estate --collected-at`: a demo collected in July, with July's daylight saving, end to end."""

import json
import os
from pathlib import Path

from results_helpers import findings_of

from cli_helpers import run


def sched_statuses(results: dict) -> dict[str, str]:
    return {f["resourceName"]: f["status"] for f in findings_of(results) if f["policyId"] == "VMBK-SCHED-001"}


def test_a_demo_collected_in_july_is_judged_with_summer_time(tmp_path: Path) -> None:
    statuses = {}
    for label, extra in (("winter", ()), ("july", ("--collected-at", "2026-07-15T06:00:00Z"))):
        snap = tmp_path / f"{label}.json"
        assert run("demo-estate", "--vms", "50", "--output", snap, *extra).returncode == 0
        assert run("scan", "--snapshot", snap, "--output-dir", tmp_path / label).returncode in (0, 1)
        results = json.loads((tmp_path / label / "results.json").read_text())
        statuses[label] = sched_statuses(results)
        if label == "july":
            assert results["scan"]["collectedAt"] == "2026-07-15T06:00:00Z"
    # 02:00 UTC, 02:00 London, 03:00 Amsterdam and 03:00 Paris are one instant in winter, two in July
    assert "fail" in statuses["winter"].values()
    assert statuses["winter"] != statuses["july"]


def test_bad_collected_at_is_a_one_line_usage_error(tmp_path: Path) -> None:
    for value in ("yesterday", "2026-07-15T06:00:00"):
        proc = run("demo-estate", "--vms", "5", "--output", tmp_path / "x.json", "--collected-at", value)
        assert proc.returncode == 2
        assert "--collected-at" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "x.json").exists()


def test_an_output_that_cannot_be_a_file_is_a_one_line_input_error(tmp_path: Path) -> None:
    """A folder or a path under a file was an internal error (exit 4: "Is a directory"), and a FIFO (or a device)
    was replaced by the snapshot."""
    folder, file, fifo = tmp_path / "folder", tmp_path / "file", tmp_path / "fifo"
    folder.mkdir()
    file.write_text("")
    os.mkfifo(fifo)
    for output, reason in ((folder, "is a folder; give the name of a file"),
                           (file / "x.json", f"cannot create {file}: File exists"),
                           (file / "sub" / "x.json", f"cannot create {file / 'sub'}: Not a directory"),
                           (fifo, "is not a regular file")):
        proc = run("demo-estate", "--vms", "5", "--output", output)
        assert (proc.returncode, proc.stderr) == (2, f"backup-preflight: error: --output {output}: {reason}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "file", "folder"] and not any(folder.iterdir())
    assert file.read_text() == "" and fifo.is_fifo()
