"""junit.xml against the Surefire XSD, read back by junitparser and rendered by junit2html, the way CI consumes it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import junitparser
import pytest
import xmlschema

from backup_preflight.findings import ERROR, NOT_APPLICABLE, PASS, UNKNOWN
from backup_preflight.report import junit
from backup_preflight.results import Gate, ScanResult
from scan_helpers import XSS_IMG, XSS_SCRIPT, estate, run, write_snapshot

from arg import SUB, snapshot_doc, vm_row

XSD = Path(__file__).parents[1] / "fixtures" / "schemas" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(XSD)


def write_and_check(result: ScanResult, tmp_path: Path, schema: xmlschema.XMLSchema,
                    passes: str = "aggregate", unknowns: str = "auto") -> junitparser.JUnitXml:
    """Write, validate against the XSD, read back, and check identity, counts and times on every suite."""
    out = tmp_path / "junit.xml"
    junit.write(result, out, passes, unknowns)
    schema.validate(str(out))
    xml = junitparser.JUnitXml.fromfile(str(out))
    identities = Counter()
    for suite in xml:
        cases = list(suite)
        kinds = Counter(type(r).__name__ for case in cases for r in case.result)
        assert suite.tests == len(cases)
        assert suite.failures == kinds["Failure"]
        assert suite.errors == kinds["Error"]
        assert suite.skipped == kinds["Skipped"]
        assert suite._elem.get("time") is not None
        for case in cases:
            identities[(case.classname, case.name)] += 1
            assert case.classname == suite.name
            assert case._elem.get("time") == "0"
    assert all(n == 1 for n in identities.values()), "GitLab drops duplicate (classname, name) pairs"
    assert ElementTree.parse(out).getroot().get("time") is not None
    return xml


def cases_by_status(xml: junitparser.JUnitXml) -> dict[tuple[str, str], str]:
    return {(c.classname, c.name): (type(c.result[0]).__name__ if c.result else "pass") for s in xml for c in s}


def title(name: str, rg: str = "rg-app") -> str:
    return f"{name} ({rg}, {SUB})"


def test_one_suite_per_policy_one_case_per_vm_needing_attention(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    xml = write_and_check(result, tmp_path, schema, unknowns="aggregate")
    assert [s.name for s in xml] == [p.id for p in result.policies]
    got = cases_by_status(xml)
    per_vm = [f for f in result.findings if f.status in ("fail", ERROR, "exempt")]
    reasons = Counter((f.policy_id, f.message) for f in result.findings if f.status == UNKNOWN)
    passing = Counter(f.policy_id for f in result.findings if f.status == PASS)
    assert len(got) == len(per_vm) + len(reasons) + len(passing)
    assert got[("VMBK-AGENT-001", title("vm-noagent"))] == "Failure"
    cases = {(c.classname, c.name): c for s in xml for c in s}
    for (pid, message), n in reasons.items():
        case = cases[(pid, junit.reason_name(message))]
        assert case.name.lower().startswith("not assessed")
        assert type(case.result[0]).__name__ == "Skipped"
        assert case.result[0].message == f"{n} VM{'' if n == 1 else 's'}: {message}"
    for suite in xml:
        aggregated = [c for c in suite if c.name == junit.PASSES_NAME]
        if passing[suite.name]:
            (case,) = aggregated
            assert case.result == [] and case.system_out.startswith(f"{passing[suite.name]} VM")
        else:
            assert aggregated == []
    for (_, name), case in cases.items():  # the full resource id is kept with every VM's testcase
        if name != junit.PASSES_NAME and not name.lower().startswith("not assessed"):
            assert case.system_out.startswith("/subscriptions/") and name.split(" (")[0] in case.system_out


def test_reason_names_always_say_not_assessed() -> None:
    assert junit.reason_name("Not assessed (the assertion): x was not collected") == \
        "Not assessed (the assertion): x was not collected"
    assert junit.reason_name("accepted in baseline: y") == "not assessed: accepted in baseline: y"


def test_unknowns_each_gives_one_skipped_case_per_vm(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    out = tmp_path / "junit.xml"
    junit.write(result, out, "none", "each")
    schema.validate(str(out))
    got = cases_by_status(junitparser.JUnitXml.fromfile(str(out)))
    unknown = [f for f in result.findings if f.status == UNKNOWN]
    assert all(got[(f.policy_id, title(f.resource_name))] == "Skipped" for f in unknown)
    assert len(got) == len([f for f in result.findings if f.status not in (PASS, NOT_APPLICABLE)])


@pytest.mark.parametrize("crowd", [junit.AUTO_EACH_UP_TO, junit.AUTO_EACH_UP_TO + 1])
def test_unknowns_auto_keeps_a_few_vms_per_reason_and_aggregates_a_crowd(
        tmp_path: Path, schema: xmlschema.XMLSchema, crowd: int) -> None:
    """A reason of a few VMs is their own problem (one case each); one shared by many is a collection gap."""
    vms = [vm_row(f"vm-{i:03}", provision=None) for i in range(crowd - 1)]  # no instance view: agent unknown
    odd = vm_row("vm-odd", provision=None, os="Windows")
    result = run(write_snapshot(tmp_path / "s.json", snapshot_doc([*vms, odd])))
    got = cases_by_status(write_and_check(result, tmp_path, schema))
    unknown = Counter((f.policy_id, f.message) for f in result.findings if f.status == UNKNOWN)
    crowded = {key for key, n in unknown.items() if n > junit.AUTO_EACH_UP_TO}
    assert bool(crowded) is (crowd > junit.AUTO_EACH_UP_TO)
    for f in result.findings:
        if f.status != UNKNOWN:
            continue
        if (f.policy_id, f.message) in crowded:
            assert (f.policy_id, title(f.resource_name)) not in got
            assert got[(f.policy_id, junit.reason_name(f.message))] == "Skipped"
        else:
            assert got[(f.policy_id, title(f.resource_name))] == "Skipped"
    assert sum(v == "Skipped" for v in got.values()) == len(crowded) + sum(
        n for key, n in unknown.items() if key not in crowded)


def test_passes_each_and_none(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    passing = [f for f in result.findings if f.status == PASS]
    each = cases_by_status(write_and_check(result, tmp_path, schema, "each"))
    assert all(each[(f.policy_id, title(f.resource_name))] == "pass" for f in passing)
    assert list(each.values()).count("pass") == len(passing)
    none = cases_by_status(write_and_check(result, tmp_path, schema, "none"))
    assert "pass" not in none.values()
    assert len(none) == len(each) - len(passing)


def test_names_are_unique_and_stable_across_resource_groups_and_runs(tmp_path: Path,
                                                                      schema: xmlschema.XMLSchema) -> None:
    doc = snapshot_doc([vm_row("web", rg="RG-A", provision=False), vm_row("web", rg="RG-B", provision=False)])
    first = cases_by_status(write_and_check(run(write_snapshot(tmp_path / "a.json", doc)), tmp_path, schema))
    again = cases_by_status(write_and_check(run(write_snapshot(tmp_path / "b.json", doc)), tmp_path, schema))
    assert first == again
    assert first[("VMBK-AGENT-001", title("web", "rg-a"))] == "Failure"
    assert first[("VMBK-AGENT-001", title("web", "rg-b"))] == "Failure"


def test_a_name_clash_falls_back_to_the_resource_id(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    result.findings = list(result.findings)  # every finding an object, so that the names changed here stay
    clash = [f for f in result.findings if f.policy_id == "VMBK-AGENT-001"]
    for f in clash:
        f.resource_name, f.resource_group = "same", "rg"
    names = [c.name for s in write_and_check(result, tmp_path, schema, "each") if s.name == "VMBK-AGENT-001"
             for c in s]
    assert len(set(names)) == len(names) >= 2
    assert sorted(names) == sorted(f"same (rg, {f.subscription_id}) [{f.resource_id}]" for f in clash), (
        "each resource of the clash is named by its id, not only those after the first")


def test_failure_leads_with_message_and_carries_evidence_remediation_and_docs(
        tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    xml = write_and_check(result, tmp_path, schema)
    suite = next(s for s in xml if s.name == "VMBK-AGENT-001")
    case = next(c for c in suite if c.result)
    failure = case.result[0]
    finding = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and f.status == "fail")
    assert failure.message == finding.message
    assert failure.type == f"{finding.severity}/{finding.cause}"
    assert "Evidence:" in failure.text and "Fix: " in failure.text and "Docs: https://" in failure.text
    assert finding.message not in case.name, "the name must never contain the message"
    props = {p.name: p.value for p in suite.properties()}
    assert props["snapshot.sha256"] == result.run["source"]["sha256"]
    assert props["policySet.sha256"] == result.run["policySetSha256"]
    assert props["gate.failOn"] == "high" and props["tool.version"] and props["junit.passes"] == "aggregate"
    assert props["junit.unknowns"] == "auto"


def test_strict_turns_unknown_into_failure(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()), Gate(strict=True))
    xml = write_and_check(result, tmp_path, schema)
    unknown = next(f for f in result.findings if f.status == UNKNOWN)
    case = next(c for s in xml for c in s if (c.classname, c.name) == (unknown.policy_id,
                                                                       title(unknown.resource_name)))
    assert type(case.result[0]).__name__ == "Failure" and case.result[0].message.startswith(unknown.message)


def test_error_and_hostile_text_still_parse(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate(name_suffix=XSS_IMG)))
    broken = next(f for f in result.findings if f.status == "fail")
    broken.status = ERROR
    broken.message = "boom \x00\x01\x1b[31m\ud800 " + XSS_SCRIPT + "]]>" + "x" * 50_000
    broken.evidence = tuple(f"line {i} \x0b" for i in range(500))
    xml = write_and_check(result, tmp_path, schema)
    case = next(c for s in xml for c in s if c.result and type(c.result[0]).__name__ == "Error")
    assert XSS_SCRIPT in case.result[0].message
    assert len(case.result[0].message) < 1200 and "more characters" in case.result[0].message
    assert "more in results.json" in case.result[0].text
    assert any(XSS_IMG in c.name for s in xml for c in s)


def test_empty_run_still_writes_a_valid_file_saying_why(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    doc = estate()
    doc["tables"]["resources"] = []
    doc["errors"] = [{"scope": "/subscriptions/x", "table": "resources", "message": "AuthorizationFailed"}]
    result = run(write_snapshot(tmp_path / "s.json", doc))
    xml = write_and_check(result, tmp_path, schema)
    problems = next(s for s in xml if s.name == "backup-preflight.coverage")
    messages = [c.result[0].message for c in problems]
    assert any("AuthorizationFailed" in m for m in messages)
    assert any("nothing was evaluated" in m for m in messages)
    root = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert root.get("errors") == "2"


def test_junit2html_renders_policy_and_vm(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    """A real consumer from PyPI turns the file into its HTML view with the policy and the VM readable."""
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    write_and_check(result, tmp_path, schema)
    tool = shutil.which("junit2html", path=str(Path(sys.executable).parent))
    assert tool, "junit2html is in the test extras"
    subprocess.run([tool, str(tmp_path / "junit.xml"), str(tmp_path / "view.html")], check=True, timeout=120)
    page = (tmp_path / "view.html").read_text()
    assert "VMBK-AGENT-001" in page
    assert re.search(re.escape(title("vm-noagent")).replace(r"\ ", r"\s+"), page)
    assert "not provisioned" in page
