"""`--add-policies DIR` evaluates a team's own policies with the bundled catalog; `--policies` replaces it."""

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.policy.loader import bundled_policy_dir, policy_files
from results_helpers import findings_of

from cli_helpers import run

TEAM: dict[str, Any] = {
    "id": "TEAM-POWER-001", "title": "VM is running", "cause": "guest-shutdown", "severity": "low",
    "assert": {"field": "powerState", "equals": "running"},
    "message": "VM {name} is {powerState}", "remediation": "Start it.",
}
BUNDLED = len(policy_files([bundled_policy_dir()])[0])


def team_folder(tmp: Path, *docs: dict[str, Any]) -> Path:
    folder = tmp / "team"
    folder.mkdir()
    for i, doc in enumerate(docs):
        (folder / f"p{i}.json").write_text(json.dumps(doc))
    return folder


def listed(*args: str | Path) -> list[str]:
    proc = run("policies", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return [p["id"] for p in json.loads(proc.stdout)]


def test_added_policies_come_with_the_catalog(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, TEAM)
    ids = listed("--add-policies", folder)
    assert len(ids) == BUNDLED + 1 and "TEAM-POWER-001" in ids and "VMBK-AGENT-001" in ids
    assert listed("--policies", folder) == ["TEAM-POWER-001"]  # --policies still replaces the catalog


def test_add_policies_is_repeatable_and_combines_with_policies(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, TEAM)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**TEAM, "id": "TEAM-POWER-002"}))
    ids = listed("--add-policies", folder, "--add-policies", other)
    assert len(ids) == BUNDLED + 2 and {"TEAM-POWER-001", "TEAM-POWER-002"} <= set(ids)
    assert listed("--policies", folder, "--add-policies", other) == ["TEAM-POWER-001", "TEAM-POWER-002"]


def test_scan_evaluates_added_policies(tmp_path: Path) -> None:
    folder = team_folder(tmp_path, TEAM)
    proc = run("scan", "--demo", "--add-policies", folder, "--fail-on", "never", "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["policies"]) == BUNDLED + 1
    team = [f for f in findings_of(results) if f["policyId"] == "TEAM-POWER-001"]
    assert len(team) == results["coverage"]["vms"] and {"pass", "fail"} <= {f["status"] for f in team}


@pytest.mark.parametrize("command", ["scan --demo --output-dir out", "policies",
                                     "collect --subscription s --output x.json",
                                     "verify --snapshot s.json --results rep/results.json"])
def test_an_id_clash_with_the_catalog_is_exit_2_naming_both_files(tmp_path: Path, command: str) -> None:
    folder = team_folder(tmp_path, {**TEAM, "id": "VMBK-AGENT-001"})
    if command.startswith("verify"):  # verify reads its results before the policies: give it real ones
        assert run("demo-estate", "--vms", "5", "--output", "s.json", cwd=tmp_path).returncode == 0
        assert run("scan", "--snapshot", "s.json", "--output-dir", "rep", cwd=tmp_path).returncode in (0, 1)
    proc = run(*command.split(), "--add-policies", folder, cwd=tmp_path)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "duplicate policy id 'VMBK-AGENT-001'" in line
    assert str(folder / "p0.json") in line and "vmbk-agent-001.json" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.json").exists()


def test_validate_checks_added_policies_with_the_catalog(tmp_path: Path) -> None:
    ok = run("validate", "--add-policies", team_folder(tmp_path, TEAM))
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{BUNDLED + 1} policies valid")
    (tmp_path / "clash").mkdir()
    clash = tmp_path / "clash" / "mine.json"
    clash.write_text(json.dumps({**TEAM, "id": "VMBK-AGENT-001"}))
    bad = run("validate", "--add-policies", clash.parent)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "VMBK-AGENT-001" in bad.stderr and "mine.json" in bad.stderr and "vmbk-agent-001.json" in bad.stderr
    assert "Traceback" not in bad.stderr
