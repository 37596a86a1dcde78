"""`scan --what-if` end to end through the installed console script."""

import itertools
import json
from pathlib import Path

import xmlschema

from results_helpers import findings_of
from whatif.plan import NSG_ID, az_output, change, estate_doc, new_vm, rule_body, without_view, write

from arg import FIXTURES
from cli_helpers import run

XSD = FIXTURES / "schemas" / "junit-10.xsd"


def gate(tmp_path: Path, *changes: dict, extra: tuple[str, ...] = ()) -> tuple[int, Path, str]:
    snap = write(tmp_path / "current.json", estate_doc())
    plan = write(tmp_path / "whatif.json", az_output(*changes))
    out = tmp_path / "out"
    proc = run("scan", "--snapshot", snap, "--what-if", plan, "--output-dir", out, *extra)
    assert "Traceback" not in proc.stderr
    return proc.returncode, out, proc.stdout


def test_new_deny_rule_fails_the_gate_and_every_report_names_the_rule(tmp_path: Path) -> None:
    rule = rule_body("DenyStorage443", 50)
    code, out, stdout = gate(tmp_path, change("Create", rule["id"], after=rule))
    assert code == 1
    assert "This deployment introduces 3 new findings:" in stdout and "DenyStorage443" in stdout
    results = json.loads((out / "results.json").read_text())
    new = [f for f in findings_of(results) if f.get("baseline") == "new"]
    assert {f["policyId"] for f in new} == {"VMBK-NET-001"}
    assert {f["resourceName"] for f in new} == {"vm1", "vm2", "vm3"}
    first = new[0]["evidence"][0]
    assert first.startswith("Planned change: security rule DenyStorage443") and "NSG nsg-app" in first
    assert results["scan"]["whatIf"]["newFindings"] == 3
    assert results["scan"]["whatIf"]["files"][0]["path"].endswith("whatif.json")
    junit = (out / "junit.xml").read_text()
    xmlschema.XMLSchema(XSD).validate(out / "junit.xml")
    assert "Planned change: security rule DenyStorage443" in junit
    assert "DenyStorage443" in (out / "summary.md").read_text()
    assert "DenyStorage443" in (out / "report.html").read_text()


def test_new_vm_without_agent_fails_as_new(tmp_path: Path) -> None:
    code, out, _ = gate(tmp_path, *new_vm("vm-new", provision=False))
    assert code == 1
    results = json.loads((out / "results.json").read_text())
    failing = {(f["policyId"], f["resourceName"]) for f in findings_of(results)
               if f["status"] == "fail" and f.get("baseline") == "new"}
    assert ("VMBK-AGENT-001", "vm-new") in failing


def test_deleting_a_vm_lists_its_failures_as_fixed_and_passes(tmp_path: Path) -> None:
    doc = without_view(estate_doc(), "vm1")
    vm1 = next(r for r in doc["tables"]["resources"] if r["name"] == "vm1")
    vm1["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] = False  # failing today
    snap = write(tmp_path / "current.json", doc)
    assert run("scan", "--snapshot", snap, "--output-dir", tmp_path / "today").returncode == 1
    plan = write(tmp_path / "whatif.json", az_output(change("Delete", vm1["id"], before=vm1)))
    proc = run("scan", "--snapshot", snap, "--what-if", plan, "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert not [f for f in findings_of(results) if f["resourceName"] == "vm1"]
    fixed = {(f["policyId"], f["resourceName"]) for f in results["scan"]["baseline"]["fixed"]}
    assert ("VMBK-AGENT-001", "vm1") in fixed


def test_unchanged_failures_do_not_fail_the_gate(tmp_path: Path) -> None:
    doc = without_view(estate_doc(), "vm1")
    vm1 = next(r for r in doc["tables"]["resources"] if r["name"] == "vm1")
    vm1["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] = False
    snap = write(tmp_path / "current.json", doc)
    tag_only = {**vm1, "tags": {"change": "ticket-42"}}
    plan = write(tmp_path / "whatif.json", az_output(change("Modify", vm1["id"], before=vm1, after=tag_only)))
    proc = run("scan", "--snapshot", snap, "--what-if", plan, "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    still = [f for f in findings_of(results) if f["policyId"] == "VMBK-AGENT-001" and f["resourceName"] == "vm1"]
    assert still[0]["status"] == "fail" and still[0]["baseline"] == "unchanged"


def test_bad_what_if_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    snap = write(tmp_path / "current.json", estate_doc())
    bad = tmp_path / "whatif.json"
    bad.write_text(json.dumps({"status": "Failed", "error": {"code": "InvalidTemplate", "message": "bad"}}))
    proc = run("scan", "--snapshot", snap, "--what-if", bad, "--output-dir", tmp_path / "out")
    assert proc.returncode == 2 and "InvalidTemplate" in proc.stderr and str(bad) in proc.stderr
    assert not (tmp_path / "out").exists()
    both = run("scan", "--snapshot", snap, "--what-if", bad, "--baseline", bad, "--output-dir", tmp_path / "o2")
    assert both.returncode == 2 and "cannot be combined with --baseline" in both.stderr


def test_summary_counts_each_way_a_change_reaches_vms_once(tmp_path: Path) -> None:
    """One NSG on two subnets: one bullet per subnet, each with its own VMs, adding up to the total."""
    from whatif.plan import NSG_ID

    doc = estate_doc()
    vnet = next(r for r in doc["tables"]["resources"] if r["type"] == "microsoft.network/virtualnetworks")
    vnet["properties"]["subnets"][1]["properties"]["networkSecurityGroup"] = {"id": NSG_ID}
    snap = write(tmp_path / "current.json", doc)
    rule = rule_body("DenyStorage443", 50)
    plan = write(tmp_path / "whatif.json", az_output(change("Create", rule["id"], after=rule)))
    proc = run("scan", "--snapshot", snap, "--what-if", plan, "--output-dir", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    bullets = [line for line in summary.splitlines() if line.startswith("- ") and "DenyStorage443" in line]
    assert len(bullets) == 2, bullets
    assert any("snet-app; 3 VMs newly fail VMBK-NET-001" in b for b in bullets)
    assert any("snet-db; 1 VM newly fails VMBK-NET-001" in b for b in bullets)


def test_the_console_counts_the_causes_it_does_not_name_and_gives_the_plans_notes(tmp_path: Path) -> None:
    """It named five causes and no more, silently, and none of the notes on what the plan could not predict."""
    changes = [c for i in range(7) for c in new_vm(f"vm-new{i}", provision=False)]
    changes.append(change("Unsupported", f"{NSG_ID}/securityRules/Later"))
    code, out, stdout = gate(tmp_path, *changes)
    assert code == 1
    after = stdout.split("new findings:\n", 1)[1].splitlines()
    block = list(itertools.takewhile(lambda line: line.startswith("  - "), after))
    causes = json.loads((out / "results.json").read_text())["scan"]["whatIf"]
    assert len(block) == 7, block
    assert block[5].startswith("  - … and ") and block[5].endswith(" more (see report.html)")
    assert block[6].startswith(f"  - note: {NSG_ID}/securityRules/Later: what-if cannot predict this change")
    assert len(causes["notes"]) == 1
    # summary.md counts what it leaves out as explanations (one per change, reason and policy), not as changes
    summary = (out / "summary.md").read_text()
    assert " more explanations (see report.html)" in summary and "more planned changes" not in summary
