"""The exemption index gives exactly the matches of comparing every finding with every exemption.

The oracle below is the definition, written the slow and obvious way (fnmatch over lowercased ids,
file order, first active exemption decides); the index must agree on mixed inputs: ids in any case,
exact ids and globs, scopes, policy ids and causes, expired and active entries, every status.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.findings import EXEMPT, STATUSES, Finding
from backup_preflight.review import exemptions

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SUBS = ("00000000-0000-0000-0000-00000000000A", "00000000-0000-0000-0000-00000000000b")
GROUPS = ("RG-App", "rg-data")
VMS = ("vm-1", "VM-2", "vm-10", "vm-[x]")
POLICIES = ("VMBK-AGENT-001", "vmbk-net-001", "VMBK-PROT-001")
CAUSES = ("vm-agent", "outbound-connectivity", "backup-protection")


def vm_id(sub: str, group: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def recase(draw: st.DrawFn, text: str) -> str:
    return draw(st.sampled_from((text, text.upper(), text.lower())))


@st.composite
def findings(draw: st.DrawFn) -> list[Finding]:
    out = []
    for _ in range(draw(st.integers(0, 25))):
        rid = vm_id(draw(st.sampled_from(SUBS)), draw(st.sampled_from(GROUPS)), draw(st.sampled_from(VMS)))
        out.append(Finding(policy_id=recase(draw, draw(st.sampled_from(POLICIES))), resource_id=recase(draw, rid),
                           resource_name="vm", status=draw(st.sampled_from(STATUSES)), severity="high",
                           cause=draw(st.sampled_from(CAUSES)), evidence=("as found",)))
    return out


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    sub, group, name = draw(st.sampled_from(SUBS)), draw(st.sampled_from(GROUPS)), draw(st.sampled_from(VMS))
    resources = st.sampled_from((
        recase(draw, vm_id(sub, group, name)),           # exact id
        f"*/virtualmachines/{name}",                      # glob
        f"/subscriptions/{sub}/*/VM-?",                   # glob with ?
        f"/subscriptions/*/resourcegroups/{group}/*",     # glob across subscriptions
        "*vm-[12]",                                       # character class
    ))
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["policies"] = draw(st.lists(st.sampled_from(POLICIES), min_size=1, max_size=2, unique=True))
    if "policies" not in entry or draw(st.booleans()):
        entry["causes"] = draw(st.lists(st.sampled_from(CAUSES), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        entry["resources"] = draw(st.lists(resources, min_size=1, max_size=3))
    if "resources" not in entry or draw(st.booleans()):
        scope_sub = recase(draw, sub)
        entry["scopes"] = [draw(st.sampled_from((f"/subscriptions/{scope_sub}",
                                                 f"/subscriptions/{scope_sub}/resourceGroups/{group.upper()}/")))]
    entry["expiresOn"] = draw(st.sampled_from(("2020-01-01", "2099-12-31")))
    return entry


def oracle_covers(raw: dict[str, Any], finding: Finding) -> bool:
    policy = (finding.policy_id.lower() in [p.lower() for p in raw.get("policies", [])]
              or finding.cause in raw.get("causes", []))
    rid = finding.resource_id.lower()
    resource = (any(fnmatch.fnmatchcase(rid, p.lower()) for p in raw.get("resources", []))
                or any(rid.startswith(s.lower().rstrip("/") + "/") for s in raw.get("scopes", [])))
    return policy and resource


def oracle_outcome(raws: list[dict[str, Any]], finding: Finding) -> tuple[str, str | None, str | None]:
    """(status, exempting id, expired id) as the definition says."""
    if finding.status not in exemptions.EXEMPTIBLE:
        return finding.status, None, None
    matches = [r for r in raws if oracle_covers(r, finding)]
    active = [r for r in matches if r["expiresOn"] > NOW.date().isoformat()]
    if active:
        return EXEMPT, active[0]["id"], None
    return finding.status, None, matches[0]["id"] if matches else None


@settings(max_examples=300, deadline=None)
@given(findings(), st.lists(selectors(), max_size=12))
def test_index_matches_the_definition(found: list[Finding], entries: list[dict[str, Any]]) -> None:
    raws = [{"id": f"EX-{i}", "category": "waiver", "justification": "accepted for the test",
             "owner": "team@contoso.example", **entry} for i, entry in enumerate(entries)]
    expected = [oracle_outcome(raws, f) for f in copy.deepcopy(found)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exemptions.json"
        path.write_text(json.dumps({"schemaVersion": 1, "exemptions": raws}))
        account = exemptions.apply(found, exemptions.load(path), NOW)
    got = [(f.status, f.annotations.get("exemption", {}).get("id"),
            f.annotations.get("expiredExemption", {}).get("id")) for f in found]
    assert got == expected
    counts = {e["id"]: e["exempted"] for e in account["entries"]}
    assert counts == {r["id"]: sum(1 for _, by, _ in expected if by == r["id"]) for r in raws}
