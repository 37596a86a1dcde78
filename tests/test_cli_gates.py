"""End to end through the installed console script: gates, exemptions, baselines, verify, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.report.outputs import WRITERS
from results_helpers import findings_of
from scan_helpers import estate, write_snapshot

BIN = Path(sys.executable).parent / "backup-preflight"
pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"console script not installed at {BIN}")


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def scan(snapshot: Path, out: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    proc = cli("scan", "--snapshot", snapshot, "--output-dir", out, *extra)
    assert proc.returncode in (0, 1, 3), proc.stderr
    return proc.returncode, json.loads((out / "results.json").read_text())


def finding(results: dict[str, Any], policy: str, vm: str) -> dict[str, Any]:
    return next(f for f in findings_of(results) if f["policyId"] == policy and f["resourceName"] == vm)


def exemptions_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "exemptions.json"
    path.write_text(json.dumps({"$schema": "exemptions.schema.json", "schemaVersion": 1, "exemptions": list(entries)}))
    return path


def exemption(ex_id: str, policy: str, vm: str, expires: str) -> dict[str, Any]:
    return {"id": ex_id, "policies": [policy], "resources": [f"/subscriptions/*/virtualMachines/{vm}"],
            "category": "waiver", "justification": f"accepted risk for {vm} until migration",
            "owner": "platform-team", "ticket": f"CHG-{ex_id}", "expiresOn": expires}


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "snapshot.json", estate())


def test_exemptions_including_an_expired_one(tmp_path: Path, snap: Path) -> None:
    ex = exemptions_file(tmp_path, exemption("A", "VMBK-AGENT-001", "vm-noagent", "2099-01-01"),
                         exemption("B", "VMBK-POWER-001", "vm-stopped", "2001-01-01"))
    out = tmp_path / "out"
    code, results = scan(snap, out, "--exemptions", ex)
    assert code == 1, "the expired exemption exempts nothing, so vm-stopped still breaks the gate"
    agent = finding(results, "VMBK-AGENT-001", "vm-noagent")
    assert agent["status"] == "exempt" and agent["verdict"] == "fail" and agent["exemption"]["id"] == "A"
    power = finding(results, "VMBK-POWER-001", "vm-stopped")
    assert power["status"] == "fail" and power["expiredExemption"]["id"] == "B"
    assert [e["expired"] for e in results["scan"]["exemptions"]["entries"]] == [False, True]
    junit = (out / "junit.xml").read_text()
    assert 'message="exempt (waiver A, owner platform-team, ticket CHG-A' in junit
    summary = (out / "summary.md").read_text()
    assert "1 waived" in summary and "**1 expired** (B)" in summary
    page = (out / "report.html").read_text()
    assert "CHG-A" in page and "expired on 2001-01-01" in page

    ex.write_text(json.dumps({"exemptions": [exemption("B", "VMBK-POWER-001", "vm-stopped", "2099-01-01"),
                                             exemption("A", "VMBK-AGENT-001", "vm-noagent", "2099-01-01")]}))
    code, _ = scan(snap, tmp_path / "out2", "--exemptions", ex)
    assert code == 0


def test_baseline_with_a_new_and_a_fixed_finding_and_fail_on_new(tmp_path: Path, snap: Path) -> None:
    code, _ = scan(snap, tmp_path / "before")
    assert code == 1
    base = tmp_path / "before" / "results.json"
    later = write_snapshot(tmp_path / "later.json", estate(stopped=False, extra=["vm-new"]))
    code, results = scan(later, tmp_path / "after", "--baseline", base)
    assert code == 1
    assert finding(results, "VMBK-AGENT-001", "vm-new")["baseline"] == "new"
    assert finding(results, "VMBK-AGENT-001", "vm-noagent")["baseline"] == "unchanged"
    fixed = results["scan"]["baseline"]["fixed"]
    assert any(f["policyId"] == "VMBK-POWER-001" and f["resourceName"] == "vm-stopped" for f in fixed)

    code, results = scan(later, tmp_path / "new-only", "--baseline", base, "--fail-on-new")
    assert code == 1, "vm-new is a new high failure"
    junit = (tmp_path / "new-only" / "junit.xml").read_text()
    assert 'message="accepted in baseline: The VM agent is not provisioned on vm-noagent' in junit
    assert results["summary"]["gateFailures"] == 1

    same = write_snapshot(tmp_path / "same.json", estate())
    code, _ = scan(same, tmp_path / "same", "--baseline", base, "--fail-on-new")
    assert code == 0, "nothing new: the known failures are accepted"
    code, _ = scan(same, tmp_path / "same-all", "--baseline", base)
    assert code == 1, "without --fail-on-new a baseline changes no verdict"


def test_strict_makes_unknown_fail(tmp_path: Path) -> None:
    healthy = estate(stopped=False, no_agent=False)
    snap = write_snapshot(tmp_path / "healthy.json", healthy)
    code, results = scan(snap, tmp_path / "lenient")
    assert code == 0 and results["summary"]["byStatus"]["unknown"] > 0
    code, results = scan(snap, tmp_path / "strict", "--strict")
    assert code == 1 and results["gate"]["strict"] is True
    assert "(not assessed; fails under --strict)\" type=" in (tmp_path / "strict" / "junit.xml").read_text()


def test_bad_exemptions_file_exits_2_and_writes_nothing(tmp_path: Path, snap: Path) -> None:
    bad = exemptions_file(tmp_path, {**exemption("A", "VMBK-AGENT-001", "vm-noagent", "2099-01-01"),
                                     "category": "forever"})
    out = tmp_path / "out"
    proc = cli("scan", "--snapshot", snap, "--output-dir", out, "--exemptions", bad)
    assert proc.returncode == 2
    assert f"{bad}: /exemptions/0/category" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_fail_on_new_needs_a_baseline(tmp_path: Path, snap: Path) -> None:
    proc = cli("scan", "--snapshot", snap, "--output-dir", tmp_path / "o", "--fail-on-new")
    assert proc.returncode == 2 and "--fail-on-new needs --baseline" in proc.stderr


def test_two_scans_are_byte_identical_but_for_timestamps(tmp_path: Path, snap: Path) -> None:
    scan(snap, tmp_path / "a")
    scan(snap, tmp_path / "b")

    def stable(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if '"startedAt"' not in line
                and '"finishedAt"' not in line]

    assert stable(tmp_path / "a" / "results.json") == stable(tmp_path / "b" / "results.json")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(WRITERS)


@pytest.mark.parametrize("content", [None, '{"minimumLinuxAgent": "2.2.60"}', "{}"])
def test_verify_of_a_file_that_is_no_results_json_says_so(tmp_path: Path, snap: Path, content: str | None) -> None:
    """A snapshot (or a parameters file) given as --results was read as parameters first: one error per key
    ("/schemaVersion: no policy declares a parameter 'schemaVersion'")."""
    results = snap if content is None else tmp_path / "params.json"
    if content is not None:
        results.write_text(content)
    proc = cli("verify", "--snapshot", snap, "--results", results)
    assert (proc.returncode, proc.stderr) == (2, f"backup-preflight: error: {results}: /: not a backup-preflight "
                                                 "results.json (no 'scan' and 'findings')\n")


def test_verify_confirms_and_detects_tampering(tmp_path: Path, snap: Path) -> None:
    scan(snap, tmp_path / "out")
    results = tmp_path / "out" / "results.json"
    ok = cli("verify", "--snapshot", snap, "--results", results)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout
    doc = json.loads(results.read_text())  # turn a failure into a pass: its letter, and drop its document
    vm = next(i for i, v in enumerate(doc["vms"]) if v["name"] == "vm-noagent")
    column = doc["verdicts"]["VMBK-AGENT-001"]
    assert column[vm] == "f"
    doc["verdicts"]["VMBK-AGENT-001"] = column[:vm] + "p" + column[vm + 1:]
    doc["findings"] = [f for f in doc["findings"] if (f["policyId"], f["vm"]) != ("VMBK-AGENT-001", vm)]
    results.write_text(json.dumps(doc))
    bad = cli("verify", "--snapshot", snap, "--results", results)
    assert bad.returncode == 1
    assert "MISMATCH findings" in bad.stdout and "vm-noagent" in bad.stdout
    other = write_snapshot(tmp_path / "other.json", estate(stopped=False))
    assert "MISMATCH snapshot sha256" in cli("verify", "--snapshot", other, "--results", results).stdout
