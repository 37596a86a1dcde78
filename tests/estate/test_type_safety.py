"""Type-safe estate (issue 11): wrong types in rows make facts unknown with a reason, never a crash.

The property test mutates Resource Graph shaped rows (the demo generator's, which follow the real
API shapes) — types swapped, fields removed, values wrapped in lists and objects, ids re-cased,
lone surrogates — and builds the estate and evaluates the bundled catalog: it never raises, no
finding is an evaluation error, and every fact keeps the type facts.schema.json gives it.
"""

from __future__ import annotations

import copy
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_preflight import cli, demo, snapshot
from backup_preflight.errors import InputError
from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.policy.paths import facts_schema
from backup_preflight.report.outputs import WRITERS

LONE_SURROGATE = "vm-\ud800"


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


#: What a mutated field may become: every JSON type, empty and odd values, deep nesting.
REPLACEMENTS = (None, 0, -1, 5, 1.5, 99.5, True, False, "", "x", "99.5", "TRUE", LONE_SURROGATE, [], [1], ["a"],
                {}, {"a": 1}, {"id": 5}, _deep(200))


NETWORK_FIXTURES = Path(__file__).parent.parent / "fixtures" / "network"


@cache
def base_document() -> str:
    """A small demo estate: VMs, NICs, NSGs, VNets, route tables, extensions, backup items and policies,
    instance views, guest facts, metrics and Machine Configuration assignments; and a Standard load
    balancer (with its frontend's public IP) whose backend pool holds a NIC that reaches Storage, which the demo
    estate has not."""
    doc = demo.generate(10, seed=5, subscriptions=1)
    resources = doc["tables"]["resources"]
    lb, pip = (json.loads((NETWORK_FIXTURES / name).read_text()) for name in ("loadbalancer.json", "publicip.json"))
    nic = next(r for r in resources if r["name"] == "vm-app-004-nic01")
    nic["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] = [
        {"id": lb["properties"]["backendAddressPools"][0]["id"]}]
    resources += [lb, pip]
    return json.dumps(doc)


@cache
def catalog() -> Any:
    return load_policies([bundled_policy_dir()])


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return list(range(len(value)))
    return []


def _walk(value: Any) -> Any:
    """Every (holder, key) pair below `value`."""
    for key in _children(value):
        yield value, key
        yield from _walk(value[key])


@cache
def key_names() -> tuple[str, ...]:
    """Every object key that occurs in the base document's rows, other than the rows' own id and type."""
    doc = json.loads(base_document())
    names = {key for rows in doc["tables"].values() for holder, key in _walk(rows) if isinstance(key, str)}
    return tuple(sorted(names - {"id", "type"}))


def _mutate(draw: st.DrawFn, parent: Any, key: Any) -> None:
    action = draw(st.sampled_from(("replace", "replace", "delete", "wrap-list", "wrap-object", "recase")))
    value = parent[key]
    if action == "delete" and isinstance(parent, dict):
        del parent[key]
    elif action == "wrap-list":
        parent[key] = [value]
    elif action == "wrap-object":
        parent[key] = {"value": value}
    elif action == "recase" and isinstance(value, str):
        parent[key] = value.upper()
    else:
        parent[key] = copy.deepcopy(draw(st.sampled_from(REPLACEMENTS)))


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The base document with a few mutations: of one field somewhere in one row, or of every
    occurrence of one key name in one table (a type swapped wherever that field appears)."""
    doc = json.loads(base_document())
    tables = doc["tables"]
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(sorted(tables)))
        rows = tables[name]
        if not rows:
            continue
        if draw(st.booleans()):
            field = draw(st.sampled_from(key_names()))
            targets = [(holder, key) for holder, key in _walk(rows) if key == field]
            for holder, key in targets[:50]:
                if key in holder:
                    _mutate(draw, holder, key)
            continue
        row = rows[draw(st.integers(0, len(rows) - 1))]
        parent: Any = row
        key: Any = draw(st.sampled_from(_children(row)))
        for _ in range(draw(st.integers(0, 5))):  # how deep into the row the mutation lands
            if not _children(parent[key]):
                break
            parent, key = parent[key], draw(st.sampled_from(_children(parent[key])))
        if parent is row and key in ("id", "type"):
            parent[key] = parent[key].upper()  # a row without a string id or type is an input error
        else:
            _mutate(draw, parent, key)
    return doc


#: Facts that keep a value beside their reason (test_fact_record.py): subscriptionId and resourceGroup are read from
#: the id instead (the same name), a location of the wrong type is read as '' and tags of the wrong type as none.
BESIDE_THEIR_REASON = frozenset({"subscriptionId", "resourceGroup", "location", "tags", "subscriptionTags",
                                 "resourceGroupTags"})


def _known_despite_a_reason(facts: dict[str, Any]) -> list[str]:
    """The facts that have a value although their reason says they are unknown (another source stood in)."""
    out = []
    for path in facts.get("unknownReasons", {}):
        value: Any = facts
        for step in path.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None and path not in BESIDE_THEIR_REASON:
            out.append(path)
    return out


def _typed(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts as JSON for schema validation: the network is an opaque object evaluated by its operator."""
    return {k: v for k, v in facts.items() if k != "network"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_rows_never_raise_and_facts_keep_their_types(doc: dict[str, Any]) -> None:
    try:
        snap = snapshot.from_document(doc, "mutated.json")
    except InputError:
        return  # an unusable row is an input error (exit 2), which is allowed
    estate = build_estate(snap)
    validator = jsonschema.Draft202012Validator(facts_schema())
    for facts in estate.vms:
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_typed(facts))]
        assert problems == [], facts["id"]
        assert _known_despite_a_reason(facts) == [], facts["id"]
    errors = [(f.policy_id, f.resource_name, f.message) for f in evaluate(catalog(), estate.vms) if f.status == "error"]
    assert errors == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_rows_through_the_whole_scan_write_a_complete_set_or_nothing(doc: dict[str, Any]) -> None:
    """The CLI end to end, reports included: exit 0, 1 or 3 with every report written and readable, or
    exit 2 (an unusable row) with none; never exit 4 (a crash) and never a partial set."""
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp, "mutated.json"), Path(tmp, "reports")
        path.write_text(json.dumps(doc))  # ASCII escapes, so a lone surrogate reaches the reader as \ud800
        code = cli.main(["--quiet", "scan", "--snapshot", str(path), "--output-dir", str(out)])
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        if code == 2:
            assert written == []
            return
        assert code in (0, 1, 3)
        assert written == sorted(WRITERS)
        results = json.loads((out / "results.json").read_text())
        assert results["summary"]["byStatus"]["error"] == 0
        ElementTree.parse(out / "junit.xml")


@pytest.mark.parametrize("name", [["a"], {"a": 1}, 5, None, ""], ids=repr)
def test_a_network_row_whose_name_is_not_a_string_is_named_by_its_id(name: Any) -> None:
    """Found by the property test above: a route table named by a list made the NSG cache key unhashable, and
    NET-001/002 an evaluation error. Every network row's evidence falls back to the last segment of its id."""
    doc = json.loads(base_document())
    for row in doc["tables"]["resources"]:
        if row["type"].startswith("microsoft.network/"):
            row["name"] = copy.deepcopy(name)
    findings = list(evaluate(catalog(), build_estate(snapshot.from_document(doc, "names.json")).vms))
    assert [f for f in findings if f.status == "error"] == []
    texts = " ".join(" ".join((f.message, *f.evidence)) for f in findings if f.policy_id.startswith("VMBK-NET"))
    assert "route table 'rt-" in texts and "NSG 'nsg-" in texts
    assert f"'{name}'" not in texts
