"""`demo-estate --collected-at`: a demo collected in July, with July's daylight saving, end to end."""

import json
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
