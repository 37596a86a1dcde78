"""junit.xml against the Surefire XSD, read back by junitparser, the way CI servers consume it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import junitparser
import pytest
import xmlschema

from backup_preflight.findings import ERROR, NOT_APPLICABLE, UNKNOWN
from backup_preflight.report import junit
from backup_preflight.results import Gate, ScanResult
from scan_helpers import XSS_IMG, XSS_SCRIPT, estate, run, write_snapshot

XSD = Path(__file__).parents[1] / "fixtures" / "schemas" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(XSD)


def write_and_check(result: ScanResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> junitparser.JUnitXml:
    """Write, validate against the XSD, read back, and check identity and counts on every suite."""
    out = tmp_path / "junit.xml"
    junit.write(result, out)
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
        for case in cases:
            identities[(case.classname, case.name)] += 1
            assert case.classname == suite.name
    assert all(n == 1 for n in identities.values()), "GitLab drops duplicate (classname, name) pairs"
    return xml


def cases_by_status(xml: junitparser.JUnitXml) -> dict[tuple[str, str], str]:
    return {(c.classname, c.name): (type(c.result[0]).__name__ if c.result else "pass") for s in xml for c in s}


def test_one_suite_per_policy_one_case_per_applicable_vm(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    xml = write_and_check(result, tmp_path, schema)
    assert [s.name for s in xml] == [p.id for p in result.policies]
    applicable = [f for f in result.findings if f.status != NOT_APPLICABLE]
    got = cases_by_status(xml)
    assert len(got) == len(applicable)
    noagent = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and f.status == "fail")
    assert got[("VMBK-AGENT-001", noagent.resource_id)] == "Failure"
    unknown = next(f for f in result.findings if f.status == UNKNOWN)
    assert got[(unknown.policy_id, unknown.resource_id)] == "Skipped"


def test_failure_carries_message_evidence_remediation_and_docs(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()))
    xml = write_and_check(result, tmp_path, schema)
    suite = next(s for s in xml if s.name == "VMBK-AGENT-001")
    case = next(c for c in suite if c.result)
    failure = case.result[0]
    assert "not provisioned" in failure.message
    assert "Evidence:" in failure.text and "Remediation:" in failure.text and "https://" in failure.text
    assert "not provisioned" not in case.name, "the name must never contain the message"
    props = {p.name: p.value for p in suite.properties()}
    assert props["snapshot.sha256"] == result.run["source"]["sha256"]
    assert props["policySet.sha256"] == result.run["policySetSha256"]
    assert props["gate.failOn"] == "high" and props["tool.version"]


def test_strict_turns_unknown_into_failure(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    result = run(write_snapshot(tmp_path / "s.json", estate()), Gate(strict=True))
    got = cases_by_status(write_and_check(result, tmp_path, schema))
    unknown = next(f for f in result.findings if f.status == UNKNOWN)
    assert got[(unknown.policy_id, unknown.resource_id)] == "Failure"


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
