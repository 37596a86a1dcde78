"""The overlay: what-if changes applied to a snapshot in Resource Graph shapes, the input left untouched."""

from __future__ import annotations

import copy
from typing import Any

from backup_preflight.snapshot import Snapshot
from backup_preflight.whatif import PlannedChange, overlay
from backup_preflight.whatif.parse import from_document
from whatif.plan import (
    NSG_ID,
    RT_ID,
    SNET_APP,
    VNET_ID,
    az_output,
    body,
    change,
    estate,
    new_vm,
    nsg_modify_with_rule,
    route_body,
    rule_body,
    subnet,
)

from arg import SUB, rid


def apply(snap: Snapshot, *changes: dict[str, Any]) -> tuple[Snapshot, list[PlannedChange], list[dict[str, str]]]:
    return overlay(snap, from_document(az_output(*changes), "whatif.json"))


def row(snap: Snapshot, resource_id: str, table: str = "resources") -> dict[str, Any] | None:
    return next((r for r in snap.tables[table] if r["id"].lower() == resource_id.lower()), None)


def rule_names(snap: Snapshot) -> list[str]:
    return [r["name"] for r in row(snap, NSG_ID)["properties"]["securityRules"]]


def test_security_rule_created_on_its_own_lands_in_the_nsg_and_keeps_default_rules() -> None:
    snap = estate()
    original = copy.deepcopy(snap.tables)
    rule = rule_body("DenyStorage443", 50)
    after, changes, notes = apply(snap, change("Create", rule["id"], after=rule))
    nsg = row(after, NSG_ID)
    assert rule_names(after) == ["rule1", "DenyStorage443"]
    added = nsg["properties"]["securityRules"][1]
    assert added["id"] == rule["id"] and added["properties"]["priority"] == 50 and "apiVersion" not in added
    assert len(nsg["properties"]["defaultSecurityRules"]) == 6
    assert [(c.change_type, c.target_id) for c in changes] == [("Create", NSG_ID.lower())]
    assert changes[0].to_dict() == {"resourceId": rule["id"], "changeType": "Create",
                                    "resourceType": "microsoft.network/networksecuritygroups/securityrules",
                                    "description": changes[0].description}
    assert changes[0].description == ("security rule DenyStorage443 (Deny Outbound, priority 50, to Storage port 443) "
                                      "created by this deployment on NSG nsg-app")
    assert notes == []
    assert snap.tables == original  # the input snapshot is untouched
    assert rule_names(snap) == ["rule1"]


def test_nsg_modify_with_full_after_keeps_default_rules_and_describes_the_delta() -> None:
    snap = estate()
    after, changes, _ = apply(snap, nsg_modify_with_rule("DenyStorage443", 50))
    nsg = row(after, NSG_ID)
    assert rule_names(after) == ["DenyStorage443", "rule1"]
    assert nsg["properties"]["defaultSecurityRules"] == row(snap, NSG_ID)["properties"]["defaultSecurityRules"]
    assert (nsg["type"], nsg["resourceGroup"], nsg["subscriptionId"], nsg["location"]) == (
        "microsoft.network/networksecuritygroups", "rg-app", SUB, "westus")
    assert nsg["tenantId"] == row(snap, NSG_ID)["tenantId"] and "apiVersion" not in nsg
    assert changes[0].description == (
        "NSG nsg-app modified by this deployment: securityRules[0] DenyStorage443 "
        "(Deny Outbound, priority 50, to Storage port 443) created")


def test_rule_modify_and_delete_match_by_name_ignoring_case() -> None:
    snap = estate()
    rule = rule_body("RULE1", 120, access="Allow")
    after, _, notes = apply(snap, change("Modify", rule["id"], after=rule))
    assert rule_names(after) == ["RULE1"] and notes == []
    assert row(after, NSG_ID)["properties"]["securityRules"][0]["properties"]["priority"] == 120
    gone, changes, _ = apply(snap, change("Delete", f"{NSG_ID}/securityRules/Rule1", before=rule))
    assert rule_names(gone) == []
    assert changes[0].description.startswith("security rule RULE1 (Allow Outbound, priority 120")
    assert changes[0].description.endswith("deleted by this deployment on NSG nsg-app")


def test_route_with_next_hop_none_lands_in_the_route_table() -> None:
    route = route_body("drop-all", "0.0.0.0/0", "None")
    after, changes, _ = apply(estate(), change("Create", route["id"], after=route))
    routes = row(after, RT_ID)["properties"]["routes"]
    assert [(r["name"], r["properties"]["nextHopType"]) for r in routes] == [
        ("route1", "VirtualNetworkGateway"), ("drop-all", "None")]
    assert changes[0].description == ("route drop-all (0.0.0.0/0 → None) created by this deployment "
                                      "in route table rt-app")


def test_subnet_change_replaces_the_embedded_subnet() -> None:
    new = body(SNET_APP.upper(), "Microsoft.Network/virtualNetworks/subnets",
               subnet(SNET_APP, "10.1.1.0/24", NSG_ID)["properties"])
    after, _, _ = apply(estate(), change("Modify", new["id"], after=new))
    subnets = row(after, VNET_ID)["properties"]["subnets"]
    assert [s["name"].lower() for s in subnets] == ["snet-app", "snet-db"]
    assert "routeTable" not in subnets[0]["properties"]


def test_new_vm_without_agent_has_no_extended_block_nor_instance_view() -> None:
    snap = estate()
    after, changes, _ = apply(snap, *new_vm("vm-new", provision=False))
    vm = row(after, rid("vm", "vm-new"))
    assert vm["type"] == "microsoft.compute/virtualmachines" and vm["location"] == "westeurope"
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] is False
    assert "extended" not in vm["properties"]
    assert not any(r["id"].lower() == vm["id"].lower() for r in after.tables["instanceviews"])
    assert changes[1].description == "VM vm-new (provisionVMAgent false) created by this deployment"


def test_vm_modify_keeps_power_state_from_the_current_row() -> None:
    snap = estate()
    current = row(snap, rid("vm", "vm1"))
    props = copy.deepcopy(current["properties"])
    del props["extended"]
    props["hardwareProfile"]["vmSize"] = "Standard_D4s_v3"
    new = body(current["id"], current["type"], props)
    after, _, _ = apply(snap, change("Modify", current["id"].upper(), after=new))
    vm = row(after, current["id"])
    assert vm["id"] == current["id"]  # the current spelling of the id stays
    assert vm["properties"]["extended"] == current["properties"]["extended"]
    assert vm["properties"]["hardwareProfile"]["vmSize"] == "Standard_D4s_v3"
    assert sum(r["id"].lower() == current["id"].lower() for r in after.tables["resources"]) == 1


def test_deleted_vm_goes_with_its_extensions() -> None:
    snap = estate()
    vm_id = rid("vm", "vm2")
    before = body(vm_id, "Microsoft.Compute/virtualMachines", {})
    after, changes, _ = apply(snap, change("Delete", vm_id.upper(), before=before))
    ids = {r["id"].lower() for r in after.tables["resources"]}
    assert vm_id.lower() not in ids and not any(i.startswith(vm_id.lower() + "/") for i in ids)
    assert rid("vm", "vm1").lower() in ids
    assert changes[0].description == "VM vm2 deleted by this deployment"


def test_no_change_and_ignore_keep_the_current_row() -> None:
    snap = estate()
    current = row(snap, NSG_ID)
    stale = body(NSG_ID, "Microsoft.Network/networkSecurityGroups", {"securityRules": []})
    after, changes, notes = apply(snap, change("NoChange", NSG_ID, before=stale, after=stale),
                                  change("Ignore", RT_ID, before=stale))
    assert row(after, NSG_ID) is current and changes == [] and notes == []


def test_unsupported_gives_a_note_and_keeps_the_row() -> None:
    snap = estate()
    after, changes, notes = apply(snap, change("Unsupported", NSG_ID, reason="Depends on a reference() at deploy time"))
    assert row(after, NSG_ID) is row(snap, NSG_ID)
    assert notes == [{"scope": NSG_ID, "table": "what-if", "message": (
        "what-if cannot predict this change (Depends on a reference() at deploy time); the current state is kept, "
        "so findings that depend on it may be out of date")}]
    assert changes[0].change_type == "Unsupported"


def test_modify_of_a_missing_resource_is_a_create_with_a_note() -> None:
    nsg_id = NSG_ID.replace("nsg-app", "nsg-other")
    new = body(nsg_id, "Microsoft.Network/networkSecurityGroups", {"securityRules": []}, location="westeurope")
    after, _, notes = apply(estate(), change("Modify", nsg_id, after=new))
    assert row(after, nsg_id)["properties"] == {"securityRules": []}
    assert notes[0]["scope"] == nsg_id
    assert notes[0]["message"] == "Modify of a resource that is not in the snapshot: applied as a create"


def test_child_of_a_missing_parent_is_noted_not_applied() -> None:
    rule = rule_body("x", 100)
    rule["id"] = rule["id"].replace("nsg-app", "nsg-gone")
    _, _, notes = apply(estate(), change("Create", rule["id"], after=rule))
    assert "is neither in the snapshot nor created by this deployment" in notes[0]["message"]


def test_parent_and_child_created_together_child_first_in_the_file() -> None:
    nsg_id = NSG_ID.replace("nsg-app", "nsg-new")
    rule = rule_body("DenyStorage443", 50)
    rule["id"] = rule["id"].replace("nsg-app", "nsg-new")
    nsg = body(nsg_id, "Microsoft.Network/networkSecurityGroups", {"securityRules": []}, location="westeurope")
    after, _, notes = apply(estate(), change("Create", rule["id"], after=rule), change("Create", nsg_id, after=nsg))
    assert [r["name"] for r in row(after, nsg_id)["properties"]["securityRules"]] == ["DenyStorage443"]
    assert notes == []


def test_unmodelled_type_passes_through_and_recovery_types_go_to_their_table() -> None:
    snap = estate()
    snap.tables["recoveryservicesresources"] = []
    kv = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.KeyVault/vaults/kv-app"
    vault_policy = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.RecoveryServices/vaults/rsv/" \
                   "backupPolicies/Daily"
    after, _, notes = apply(snap, change("Create", kv, after=body(kv, "Microsoft.KeyVault/vaults", {"sku": {}},
                                                                   location="westeurope", tags={"a": "b"})),
                            change("Create", vault_policy, after=body(vault_policy,
                                                                      "Microsoft.RecoveryServices/vaults/backupPolicies",
                                                                      {"backupManagementType": "AzureIaasVM"})))
    assert row(after, kv) == {"id": kv, "name": "kv-app", "type": "microsoft.keyvault/vaults", "location": "westeurope",
                              "properties": {"sku": {}}, "tags": {"a": "b"}, "subscriptionId": SUB,
                              "resourceGroup": "rg-app"}
    assert row(after, vault_policy, "recoveryservicesresources")["type"] == \
        "microsoft.recoveryservices/vaults/backuppolicies"
    assert notes == []


def test_table_not_collected_is_not_created() -> None:
    policy = f"/subscriptions/{SUB}/resourceGroups/RG-App/providers/Microsoft.RecoveryServices/vaults/rsv/" \
             "backupPolicies/Daily"
    after, _, notes = apply(estate(), change("Create", policy, after=body(policy, "x", {})))
    assert "recoveryservicesresources" not in after.tables
    assert notes[0]["message"].startswith("table recoveryservicesresources was not collected")


def test_mixed_case_ids_match() -> None:
    # The VNet row spells `resourcegroups`; the what-if spells `resourceGroups` and shouts the subnet name.
    gone, _, _ = apply(estate(), change("Delete", VNET_ID.upper() + "/SUBNETS/SNET-DB"))
    assert [s["name"] for s in row(gone, VNET_ID)["properties"]["subnets"]] == ["snet-app"]
