"""The demo generator's scenarios carry the verdict a correct scan must reach: check the catalog against them."""

from collections import defaultdict

import pytest

from backup_preflight import demo, snapshot
from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

SCENARIOS = {s.name: s for s in (*demo.SCENARIOS, *demo.SHOWCASE)}


def verdicts_by_cause(vms: int, seed: int, subscriptions: int | None) -> tuple[dict, dict]:
    plan = demo.plan_estate(vms, seed, subscriptions)
    doc = demo.generate(vms, seed, subscriptions)
    estate = build_estate(snapshot.from_document(doc, "demo"))
    statuses: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in evaluate(load_policies([bundled_policy_dir()]), estate.vms):
        statuses[(f.resource_name, f.cause)].add(f.status)
    return {vm.name: SCENARIOS[vm.scenario] for vm in plan.vms}, statuses


def expected_matches(expect: str, seen: set[str]) -> bool:
    if expect == "fail":
        return "fail" in seen
    if expect == "unknown":
        return "fail" not in seen and "unknown" in seen
    return not seen & {"fail", "unknown", "error"}


@pytest.mark.parametrize(("vms", "seed", "subscriptions"), [(50, 7, 3), (600, 11, None)])
def test_every_scenario_gets_the_verdict_its_cause_should_have(vms: int, seed: int, subscriptions: int | None) -> None:
    scenario_of, statuses = verdicts_by_cause(vms, seed, subscriptions)
    wrong = []
    for name, scenario in scenario_of.items():
        if scenario.cause is None:
            continue
        seen = statuses[(name, scenario.cause)]
        if not expected_matches(scenario.expect, seen):
            wrong.append(f"{name} ({scenario.name}): expected {scenario.expect} for {scenario.cause}, "
                         f"got {sorted(seen)}")
    assert wrong == []
