"""Every document the tool writes validates against the JSON Schema it ships, printed by `schema NAME`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from backup_preflight import snapshot
from backup_preflight.policy.loader import bundled_policy_dir, policy_files
from backup_preflight.report import outputs, schemas
from backup_preflight.results import Gate
from backup_preflight.review import Review, baseline, exemptions
from scan_helpers import estate, run, write_snapshot
from whatif.plan import az_output, estate_doc, new_vm, write

from cli_helpers import run as cli


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schemas.text(name))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(name: str, doc: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_schema_command_prints_each_shipped_schema(name: str) -> None:
    done = cli("schema", name)
    assert done.returncode == 0 and json.loads(done.stdout) == json.loads(schemas.text(name))


def test_results_of_every_kind_of_scan_validate(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s.json", estate())
    ex = tmp_path / "ex.json"
    ex.write_text(json.dumps({"exemptions": [{
        "id": "EX-1", "policies": ["VMBK-AGENT-001"], "resources": ["*vm-noagent"], "category": "waiver",
        "justification": "appliance without an agent", "owner": "ops", "expiresOn": "2099-01-01"}]}))
    outputs.write_all(run(snap), tmp_path / "plain")
    base = baseline.load(tmp_path / "plain" / "results.json")
    kinds = {
        "strict": run(snap, Gate(strict=True)),
        "reviewed": run(snap, review=Review(exemptions=exemptions.load(ex), baseline=base)),
    }
    for name, result in kinds.items():
        outputs.write_all(result, tmp_path / name)
    plan_snap = write(tmp_path / "current.json", estate_doc())
    plan = write(tmp_path / "whatif.json", az_output(*new_vm("vm-new", provision=False)))
    cli("scan", "--snapshot", plan_snap, "--what-if", plan, "--output-dir", tmp_path / "whatif")
    for name in ("plain", "strict", "reviewed", "whatif"):
        doc = json.loads((tmp_path / name / "results.json").read_text())
        assert problems("results", doc) == [], name
    reviewed = json.loads((tmp_path / "reviewed" / "results.json").read_text())
    assert any(f["status"] == "exempt" for f in reviewed["findings"])
    reviewed["findings"][0]["status"] = "fine"
    del reviewed["scan"]["policySetSha256"]
    found = problems("results", reviewed)
    assert any("findings/0/status" in p for p in found) and any("policySetSha256" in p for p in found)


def test_snapshots_validate_and_a_bad_one_does_not(tmp_path: Path) -> None:
    cli("demo-estate", "--vms", "20", "--output", tmp_path / "demo.json")
    saved = tmp_path / "saved.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "s.json", estate())), saved)
    for path in (tmp_path / "demo.json", saved):
        assert problems("snapshot", json.loads(path.read_text())) == [], path.name
    bad = json.loads(saved.read_text())
    del bad["tables"]["resources"][0]["type"]
    assert any("tables/resources/0" in p for p in problems("snapshot", bad))


def test_bundled_policies_and_the_documented_exemptions_example_validate() -> None:
    for path in policy_files([bundled_policy_dir()])[0]:
        assert problems("policy", json.loads(path.read_text())) == [], path.name
    doc = (Path(__file__).parents[1] / "docs" / "reports.md").read_text()
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    assert problems("exemptions", json.loads(example)) == []
