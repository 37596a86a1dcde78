"""Exemptions: validation with file + JSON pointer, matching, expiry, and what findings keep."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.errors import InputError
from backup_preflight.findings import EXEMPT, FAIL, PASS
from backup_preflight.review import Review, exemptions
from scan_helpers import estate, run, write_snapshot

from arg import SUB

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def entry(**over: Any) -> dict[str, Any]:
    base = {"id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*/virtualmachines/vm-noagent"],
            "category": "waiver", "justification": "appliance image, vendor installs no agent",
            "owner": "platform@contoso.example", "ticket": "CHG-1", "expiresOn": "2099-12-31"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "exemptions.json"
    path.write_text(json.dumps({"schemaVersion": 1, "exemptions": list(entries)}))
    return path


def problems(tmp_path: Path, doc: Any) -> list[str]:
    path = tmp_path / "bad.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(InputError) as caught:
        exemptions.load(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("doc", "expected"), [
    ({"exemptions": [entry(justification=None)]}, "/exemptions/0: 'justification' is a required property"),
    ({"exemptions": [entry(policies=None)]}, "/exemptions/0: incomplete entry: say which policies"),
    ({"exemptions": [entry(resources=None)]}, "/exemptions/0: incomplete entry: say which VMs"),
    ({"exemptions": [entry(category="forever")]}, "/exemptions/0/category"),
    ({"exemptions": [entry(expiresOn="2026-13-45")]}, "/exemptions/0/expiresOn: '2026-13-45' is not a valid date"),
    ({"exemptions": [entry(expiresOn="next week")]}, "/exemptions/0/expiresOn"),
    ({"exemptions": [entry(colour="red")]}, "/exemptions/0: unknown key ('colour' was unexpected)"),
    ({"exemptions": [entry(), entry()]}, "/exemptions/1/id: duplicate exemption id 'EX-1'"),
    ({"exemptions": [entry(scopes=["/subscriptions/x/resourceGroups/rg/providers/y"], resources=None)]},
     "/exemptions/0/scopes/0"),
    ("{not json", "line 1 column 2"),
    (json.dumps({"exemptions": [entry(expiresOn="2020-01-01")]}).replace(  # the later date would win silently
        '"expiresOn": "2020-01-01"', '"expiresOn": "2020-01-01", "expiresOn": "2099-12-31"'),
     '/exemptions/0: the key "expiresOn" is given twice in this object'),
])
def test_bad_files_name_file_and_pointer(tmp_path: Path, doc: Any, expected: str) -> None:
    found = problems(tmp_path, doc)
    assert any(expected in p and p.startswith(str(tmp_path / "bad.json")) for p in found), found


def test_exempt_finding_keeps_its_verdict_and_says_why(tmp_path: Path) -> None:
    ex = exemptions.load(write(tmp_path, entry(resources=["/SUBSCRIPTIONS/*/VIRTUALMACHINES/VM-NOAGENT"])))
    result = run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex))
    f = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and "noagent" in f.resource_id)
    assert f.status == EXEMPT
    assert f.annotations["verdict"] == FAIL
    assert f.annotations["exemption"]["id"] == "EX-1" and f.annotations["exemption"]["ticket"] == "CHG-1"
    assert result.summary["byStatus"][EXEMPT] == 1 and result.summary["exempt"]["waiver"] == 1
    assert result.run["exemptions"]["entries"][0]["exempted"] == 1
    assert result.run["exemptions"]["sha256"] == ex.sha256
    assert result.exit_code == 1, "vm-stopped still fails"


def test_expired_exemption_no_longer_exempts_and_the_finding_says_so(tmp_path: Path) -> None:
    ex = exemptions.load(write(tmp_path, entry(expiresOn="2020-01-31")))
    result = run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex))
    f = next(f for f in result.findings if f.policy_id == "VMBK-AGENT-001" and "noagent" in f.resource_id)
    assert f.status == FAIL
    assert f.annotations["expiredExemption"]["id"] == "EX-1"
    assert any("EX-1 expired on 2020-01-31" in e for e in f.evidence)
    assert result.run["exemptions"]["entries"][0]["expired"] is True
    assert result.summary["exempt"]["expired"] == 1


def test_scopes_causes_and_pass_stays_pass(tmp_path: Path) -> None:
    ex = exemptions.load(write(tmp_path, entry(policies=None, causes=["vm-agent", "guest-shutdown"], resources=None,
                                               scopes=[f"/subscriptions/{SUB.upper()}/resourceGroups/rg-app"])))
    result = run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex))
    agent = [f for f in result.findings if f.cause in ("vm-agent", "guest-shutdown")]
    assert {f.status for f in agent} <= {EXEMPT, PASS, "notApplicable"}
    assert any(f.status == PASS and not f.annotations for f in agent), "a pass is never turned into exempt"
    assert result.exit_code == 0


@pytest.mark.parametrize("scope", [f"/subscriptions/{SUB}/resourcegroups/rg-app",
                                   f"/SUBSCRIPTIONS/{SUB.upper()}/RESOURCEGROUPS/RG-APP/"])
def test_scopes_are_case_insensitive_as_the_docs_say(tmp_path: Path, scope: str) -> None:
    """Resource Graph spells ids `resourcegroups`; the schema refused such a scope (exit 2) as not matching."""
    ex = exemptions.load(write(tmp_path, entry(resources=None, scopes=[scope])))
    result = run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex))
    assert result.run["exemptions"]["entries"][0]["exempted"] == 1


def test_expiry_is_inclusive_of_the_day_and_honours_offsets() -> None:
    day = exemptions._compile(entry(expiresOn="2026-11-20"))
    assert not day.expired(NOW)
    assert day.expired(datetime(2026, 11, 21, tzinfo=UTC))
    instant = exemptions._compile(entry(expiresOn="2026-11-20T13:00:00+02:00"))
    assert instant.expired(NOW)


def test_shipped_schema_accepts_the_documented_example() -> None:
    doc_example = Path(__file__).parents[2] / "docs" / "reports.md"
    text = doc_example.read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    from jsonschema import Draft202012Validator

    Draft202012Validator(exemptions.exemptions_schema()).validate(json.loads(block))


def test_an_exemption_naming_a_policy_no_policy_has_is_warned_about(tmp_path: Path) -> None:
    """A typo in a policy id made the waiver do nothing without a word (report.html said "matched nothing",
    as it does for a VM since fixed). Every report now names the ids; a cause or a known id is no warning."""
    typo = entry(id="EX-TYPO", policies=["VMBK-AGENT-01", "vmbk-power-001"], expiresOn="2099-01-01")
    fine = entry(id="EX-OK", policies=["vmbk-agent-001"], expiresOn="2099-01-01")
    by_cause = entry(id="EX-CAUSE", policies=None, causes=["vm-agent"], expiresOn="2099-01-01")
    ex = exemptions.load(write(tmp_path, typo, fine, by_cause))
    result = run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex))
    warned = {e["id"]: e["warnings"] for e in result.run["exemptions"]["entries"]}
    assert warned == {"EX-TYPO": ["names VMBK-AGENT-01, which no policy of this scan has, so it exempts nothing "
                                  "there"], "EX-OK": [], "EX-CAUSE": []}


def test_a_warning_quoting_the_files_policy_ids_is_escaped_in_summary_md(tmp_path: Path) -> None:
    """The ids come from the exemptions file: in summary.md (posted on pull requests) they are text, not HTML
    or a mention."""
    from backup_preflight.report import markdown
    hostile = entry(id="EX-X", policies=["<img src=x onerror=alert(1)>", "@octocat"], expiresOn="2099-01-01")
    ex = exemptions.load(write(tmp_path, hostile))
    text = markdown.render(run(write_snapshot(tmp_path / "s.json", estate()), review=Review(exemptions=ex)))
    [line] = [line for line in text.splitlines() if "Exemption warnings" in line]
    assert not re.search(r"(?<!\\)<", line) and "\\<IMG" in line  # every < escaped
    assert "@OCTOCAT" not in line and "@\u200bOCTOCAT" in line
