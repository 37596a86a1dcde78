"""`scan --what-if` on an estate of more VMs than a part: both estates judged in parts, exactly as held whole.

The oracle is the what-if scan of the same file held whole (`--part-size 0`), which overlays the plan on the
whole snapshot and judges both estates whole (tests/whatif/test_gate.py and test_cli_what_if.py pin that down).
In parts, the current estate is judged as a split file is, and the estate the deployment would leave is streamed
from the file's rows into the temporary folder, judged in parts, and blamed from what each part gives of its
VMs. Plans are drawn from a pool of changes to the rows of a four-subscription estate: deletions (a VM with its
failures, a NIC, an extension, a resource group, a backup policy), modifications (an agent turned off, a backup
time moved, an NSG restated without its default rules), creations (a rule denying Storage 443, a default route to
nowhere, a VM in a subscription the estate does not have) and what what-if cannot predict.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_preflight import demo, scan
from backup_preflight.estate import parts
from backup_preflight.estate.parts import Split
from backup_preflight.policy.loader import PolicySet, bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import parse_cli_params
from backup_preflight.results import Gate
from backup_preflight.whatif.parse import load_what_ifs
from scan_helpers import outcome, rehome, write_row_lines
from whatif import plan as whatif_plan

POLICIES = load_policies([bundled_policy_dir()])
AS_OF = "2026-11-24T06:00:00Z"
DOC = demo.generate(120, seed=5, subscriptions=4)


def rows(doc: dict[str, Any], kind: str, table: str = "resources") -> list[dict[str, Any]]:
    return [r for r in doc["tables"][table] if r["type"].lower() == kind]


def modify(row: dict[str, Any], change: Any) -> dict[str, Any]:
    """A Modify whose `after` is the row as the provider returns it, with `change` made to its properties."""
    properties = copy.deepcopy(row["properties"])
    change(properties)
    return whatif_plan.change("Modify", row["id"], after=whatif_plan.body(row["id"], row["type"], properties,
                                                                          location=row["location"]))


def _agent_off(p: dict[str, Any]) -> None:
    p["osProfile"]["linuxConfiguration"]["provisionVMAgent"] = False


def _at_three(p: dict[str, Any]) -> None:
    p["schedulePolicy"]["scheduleRunTimes"] = ["2024-01-01T03:00:00Z"]


def _restated(p: dict[str, Any]) -> None:
    """As a template states an NSG: its own rules only, a deny of Storage 443 first."""
    p.pop("defaultSecurityRules", None)
    p["securityRules"] = [{"name": "DenyStorage", "properties": whatif_plan.rule_props(90)}, *p.get("securityRules",
                                                                                                  [])]


def pool(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Changes by name, each one or more what-if changes of the estate's real rows."""
    vms = rows(doc, "microsoft.compute/virtualmachines")
    linux = next(r for r in vms if "linuxConfiguration" in r["properties"]["osProfile"])
    nsgs = rows(doc, "microsoft.network/networksecuritygroups")
    nsg = next(r for r in nsgs if r["subscriptionId"] != vms[0]["subscriptionId"])
    rule = whatif_plan.body(f"{nsg['id']}/securityRules/DenyStorage443",
                            "Microsoft.Network/networkSecurityGroups/securityRules", whatif_plan.rule_props(50))
    table = next(r for r in rows(doc, "microsoft.network/routetables")
                 if r["name"].endswith("-onprem") and r["subscriptionId"] != nsg["subscriptionId"])
    route = whatif_plan.body(f"{table['id']}/routes/to-nowhere", "Microsoft.Network/routeTables/routes",
                             {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"})
    policy = rows(doc, "microsoft.recoveryservices/vaults/backuppolicies", "recoveryservicesresources")[0]
    group = rows(doc, "microsoft.resources/subscriptions/resourcegroups", "resourcecontainers")[-1]
    extension = rows(doc, "microsoft.compute/virtualmachines/extensions")[3]
    return {
        "delete a VM": [whatif_plan.change("Delete", vms[0]["id"])],
        "delete a NIC": [whatif_plan.change("Delete", rows(doc, "microsoft.network/networkinterfaces")[5]["id"])],
        "delete an extension": [whatif_plan.change("Delete", extension["id"])],
        "delete a resource group": [whatif_plan.change("Delete", group["id"])],
        "delete a backup policy": [whatif_plan.change("Delete", policy["id"])],
        "turn an agent off": [modify(linux, _agent_off)],
        "move a backup time": [modify(policy, _at_three)],
        "restate an NSG": [modify(nsgs[-1], _restated)],
        "deny Storage 443": [whatif_plan.change("Create", rule["id"], after=rule)],
        "route to nowhere": [whatif_plan.change("Create", route["id"], after=route)],
        "a VM in a new subscription": whatif_plan.new_vm("vm-new", provision=False),
        "what-if cannot predict": [whatif_plan.change("Unsupported", vms[7]["id"], reason="a nested template")],
    }


def with_hub(doc: dict[str, Any]) -> dict[str, Any]:
    """The estate with its VNets and route tables moved to a subscription without VMs: read alongside every part
    whose VMs use them, where blame must find the subnets' NSGs and route tables too."""
    hub = "00000000-0000-4000-8000-00000000000f"
    for row in [r for r in doc["tables"]["resources"] if r["type"] in ("microsoft.network/virtualnetworks",
                                                                         "microsoft.network/routetables")]:
        doc = rehome(doc, row["id"], hub)
    return doc


HUB = with_hub(DOC)
SUBSCRIPTIONS = sorted({r["subscriptionId"] for r in rows(DOC, "microsoft.compute/virtualmachines")})
POOL = pool(DOC)


def scans(tmp_path: Path, names: list[str], jobs: int = 1, doc: dict[str, Any] = DOC
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The what-if scan of the estate held whole, and in parts of one VM (`jobs` at once)."""
    changes = pool(doc)
    return planned_scans(tmp_path, doc, [c for name in names for c in changes[name]], jobs)


def planned_scans(tmp_path: Path, doc: dict[str, Any], changes: list[dict[str, Any]], jobs: int = 1,
                  policies: PolicySet = POLICIES) -> tuple[dict[str, Any], dict[str, Any]]:
    path = write_row_lines(doc, tmp_path / "s.json")
    plan_file = tmp_path / "whatif.json"
    plan_file.write_text(json.dumps(whatif_plan.az_output(*changes)))
    what_if = load_what_ifs([plan_file])
    whole = scan.run_scan(scan.snapshot_source([path], 0), policies, Gate(), as_of=AS_OF, what_if=what_if)
    with mock.patch.object(parts, "APART_BYTES", 0):
        apart = scan.snapshot_source([path], 1, jobs)
    apart.jobs = jobs
    assert apart.split is not None
    return outcome(whole), outcome(scan.run_scan(apart, policies, Gate(), as_of=AS_OF, what_if=what_if))


def marks(run: dict[str, Any]) -> list[str | None]:
    return [(f["notes"] or {}).get("baseline") for f in run["findings"]]


@pytest.mark.parametrize("hub", [False, True], ids=["networks in their subscriptions", "networks in a hub"])
def test_every_change_at_once_in_child_processes(tmp_path: Path, caplog: pytest.LogCaptureFixture, hub: bool
                                                 ) -> None:
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, apart = scans(tmp_path, list(POOL), jobs=3, doc=HUB if hub else DOC)
    assert apart == whole
    judged = re.findall(r"judged (\d+) VMs in \d+ part\(s\) of up to 1 VMs, up to 3 at once", caplog.text)
    assert len(judged) == 2 and judged[0] != "120"  # the predicted estate, then the current one where the plan reaches
    # Every part reads the hub, whose route table the plan changes; else one subscription is out of the plan's reach.
    reached = re.findall(r"the plan reaches (\d of \d) subscriptions", caplog.text)
    assert (reached, judged[1] == "120") == ((["5 of 5"], True) if hub else (["3 of 4"], False)), (reached, judged)
    assert marks(whole).count("new") > 10 and marks(whole).count("unchanged") > 10
    assert whole["run"]["baseline"]["fixed"] and whole["run"]["whatIf"]["notes"]
    planned = [e for f in whole["findings"] for e in f["evidence"] if e.startswith("Planned change: ")]
    assert any("DenyStorage443" in e for e in planned) and any("to-nowhere" in e for e in planned)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(POOL)), min_size=1, max_size=4, unique=True), st.booleans())
def test_any_plan_gives_the_whole_scan(tmp_path: Path, names: list[str], hub: bool) -> None:
    whole, apart = scans(tmp_path, names, doc=HUB if hub else DOC)
    assert apart == whole


def test_the_predicted_estate_is_never_held_whole(tmp_path: Path) -> None:
    with mock.patch.object(Split, "whole", side_effect=AssertionError("held whole")):
        whole, apart = scans(tmp_path, ["deny Storage 443", "delete a VM"])
    assert apart == whole and "new" in marks(apart)


def _fixed(run: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["policyId"], f["resourceName"]) for f in run["run"]["baseline"]["fixed"]}


def test_a_group_the_plan_splits_is_judged_where_the_plan_does_not_reach(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Two VMs in two subscriptions crowd one slot of a group (a tag) until the plan retags one of them: the
    predicted estate's parts share no group, so only the retagged VM's subscription is reached, but the current
    estate judged there shares the group with the other subscription, which must be judged too (both are fixed)."""
    doc = copy.deepcopy(DOC)
    items = rows(doc, "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                 "recoveryservicesresources")
    daily = {}
    for item in items:
        item_props = item["properties"]
        if item_props.get("policyName") == "DailyPolicy-0200" and item_props.get("protectionState") == "Protected":
            daily.setdefault(item_props["sourceResourceId"].split("/")[2], item_props["sourceResourceId"])
    first, second = list(daily.values())[:2]
    vms = {r["id"]: r for r in rows(doc, "microsoft.compute/virtualmachines")}
    for vm_id in (first, second):
        vms[vm_id]["tags"] = {**vms[vm_id]["tags"], "team": "payments"}
    moved = vms[second]
    retag = whatif_plan.change("Modify", moved["id"], after=whatif_plan.body(
        moved["id"], moved["type"], copy.deepcopy(moved["properties"]), location=moved["location"],
        tags={**moved["tags"], "team": "ledger"}))
    by_team = load_policies([bundled_policy_dir()], parse_cli_params(["VMBK-SCHED-001.groupKey=tags.team",
                                                                      "VMBK-SCHED-001.maximumPerSlot=1"]))
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, apart = planned_scans(tmp_path, doc, [retag], policies=by_team)
    assert apart == whole
    assert _fixed(whole) == {("VMBK-SCHED-001", vms[first]["name"]), ("VMBK-SCHED-001", moved["name"])}
    assert "the plan reaches 2 of 4 subscriptions" in caplog.text  # the retagged VM's, then the group's other one


def test_a_deleted_vault_reaches_the_subscriptions_of_the_vms_it_protected(tmp_path: Path) -> None:
    """A vault in a subscription without VMs protects VMs of another: deleting it takes its protected items, which
    a split file places with their VMs, so those VMs' subscription is reached and their unprotected findings new."""
    vault = next(r for r in rows(DOC, "microsoft.recoveryservices/vaults", "resources")
                 if r["name"] == "rsv-northeurope")
    doc = rehome(DOC, vault["id"], "00000000-0000-4000-8000-0000000000aa")
    moved = vault["id"].replace(vault["id"].split("/")[2], "00000000-0000-4000-8000-0000000000aa", 1)
    whole, apart = planned_scans(tmp_path, doc, [whatif_plan.change("Delete", moved)])
    assert apart == whole
    new = {f["resource_id"] for f in whole["findings"] if f["policy_id"] == "VMBK-PROT-001"
           and (f["notes"] or {}).get("baseline") == "new"}
    assert len(new) > 20 and {rid.split("/")[2] for rid in new} == {vault["id"].split("/")[2]}


def test_a_hub_the_plan_empties_reaches_the_parts_that_read_it(tmp_path: Path) -> None:
    """The plan deletes every row of the hub: the predicted estate has no rows there, so its parts' lookups miss
    the hub instead of reading it alongside, and those parts are reached all the same."""
    hub = "00000000-0000-4000-8000-00000000000f"
    emptied = [whatif_plan.change("Delete", r["id"]) for r in HUB["tables"]["resources"]
               if r["id"].split("/")[2] == hub]
    whole, apart = planned_scans(tmp_path, HUB, emptied)
    assert apart == whole
    assert marks(whole).count("new") > 50  # every VM's network is unknown now


def test_a_row_every_part_reads_reaches_every_subscription(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Virtual network gateways go to every part: one created in a VNet (which may then learn routes over BGP)
    reaches the whole current estate, which is judged everywhere (here no verdict moves with it: the gateway only
    widens the VirtualNetwork tag, which no rule of this estate's NSGs decides on)."""
    vnet = next(r for r in rows(DOC, "microsoft.network/virtualnetworks") if r["subscriptionId"] == SUBSCRIPTIONS[0])
    gateway_id = vnet["id"].split("/providers/")[0] + "/providers/Microsoft.Network/virtualNetworkGateways/vgw-new"
    gateway = whatif_plan.body(gateway_id, "Microsoft.Network/virtualNetworkGateways", {
        "gatewayType": "Vpn", "ipConfigurations": [{"name": "default", "properties": {
            "subnet": {"id": f"{vnet['id']}/subnets/GatewaySubnet"}}}]}, location=vnet["location"])
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, apart = planned_scans(tmp_path, DOC, [whatif_plan.change("Create", gateway_id, after=gateway)])
    assert apart == whole
    assert "the plan reaches" not in caplog.text and caplog.text.count("judged 120 VMs") == 2


def test_a_plan_that_changes_no_row_judges_no_current_part(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    with caplog.at_level(logging.INFO, logger="backup_preflight"):
        whole, apart = scans(tmp_path, ["what-if cannot predict"])
    assert apart == whole and "new" not in marks(whole) and "unchanged" in marks(whole)
    assert "the plan reaches 0 of 4 subscriptions" in caplog.text
