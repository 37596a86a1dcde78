"""VNet, gateway, peering and subnet rows in the odd shapes ARM allows (text booleans, ids in another
case, rows without names, plural address prefixes), and evidence that groups endpoints."""

from __future__ import annotations

import pytest

from network_helpers import BACKUP, BASE, NIC_ID, STORAGE, Estate, rule, service_tags, text

BGP = ("and BGP route propagation is on, so an on-premises default route that no snapshot shows would replace "
       "the system route")


def test_endpoints_blocked_by_one_rule_share_one_line() -> None:
    estate = Estate()
    estate.nic_rules(rule("DenyAll", 100, "Deny"))
    verdict = estate.verdict(STORAGE, BACKUP)
    assert verdict.evidence == (
        "Storage:443/Tcp, AzureBackup:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyAll' (priority 100, Deny)",)


def test_a_peering_using_the_remote_gateway_in_text_form_and_without_a_remote_id() -> None:
    estate = Estate()
    estate.vnet["properties"]["virtualNetworkPeerings"] = [
        "not a peering", {"properties": {"useRemoteGateways": False, "remoteVirtualNetwork": {"id": "hub"}}},
        {"name": "to-hub", "properties": {"useRemoteGateways": "true"}}]
    verdict = estate.verdict(assume_no_bgp=False)
    assert (verdict.value, text(verdict)) == (
        None, f"Storage:443/Tcp: VNet 'rg1-vnet' uses the gateway of peered VNet '?' {BGP}")


def test_a_peering_not_using_the_remote_gateway_exposes_nothing() -> None:
    estate = Estate()
    estate.vnet["properties"]["virtualNetworkPeerings"] = [
        {"properties": {"useRemoteGateways": "false", "remoteVirtualNetwork": {"id": f"{BASE}/virtualNetworks/hub"}}}]
    assert estate.verdict(assume_no_bgp=False).value is True


def test_a_gateway_row_without_a_name_naming_its_subnet_in_upper_case() -> None:
    estate = Estate()
    subnet = f"{BASE}/virtualNetworks/rg1-vnet".upper() + "/Subnets/GatewaySubnet"
    estate.rows.append({"id": f"{BASE}/virtualNetworkGateways/vpn", "type": "microsoft.network/virtualnetworkgateways",
                        "properties": {"ipConfigurations": [5, {"properties": {}}, {"properties": {"subnet": {
                            "id": subnet}}}]}})
    verdict = estate.verdict(assume_no_bgp=False)
    assert (verdict.value, text(verdict)) == (
        None, f"Storage:443/Tcp: VNet 'RG1-VNET' has virtual network gateway 'vpn' {BGP}")


def test_an_empty_gateway_subnet_is_no_gateway() -> None:
    estate = Estate()
    estate.vnet["properties"]["subnets"].append(
        {"id": estate.vnet["id"] + "/subnets/GatewaySubnet", "properties": {"addressPrefix": "10.0.255.0/27"}})
    assert estate.verdict(assume_no_bgp=False).value is True


def test_a_source_is_judged_against_every_plural_address_prefix_of_the_subnet() -> None:
    estate = Estate()
    estate.subnet.pop("addressPrefix")
    estate.subnet["addressPrefixes"] = ["172.20.2.0/24", "172.20.3.0/24", "not a prefix"]
    estate.nic_rules(rule("DenyFrom", 100, "Deny", source="172.20.0.0/16"))
    assert estate.verdict().value is False
    estate.subnet["addressPrefixes"].append("10.5.0.0/24")  # one prefix outside the source: undecidable
    verdict = estate.verdict()
    assert verdict.value is None
    assert "source '172.20.0.0/16' cannot be proven to include or exclude this VM" in text(verdict)


def test_a_subnet_whose_id_is_not_a_vnet_path_is_named_by_its_name_or_a_question_mark() -> None:
    estate = Estate()
    subnet = estate.vnet["properties"]["subnets"][0]
    subnet["id"] = "subnet-1"
    estate.ipconfig["subnet"]["id"] = "SUBNET-1"
    verdict = estate.verdict()
    assert verdict.value is True and "no NSG on subnet 'default'" in text(verdict)
    del subnet["name"]
    assert "no NSG on subnet '?'" in text(estate.verdict())


def test_gateway_configurations_that_are_not_an_array_expose_nothing_and_never_raise() -> None:
    """Found by the row fuzz (test_type_safety) during a mutation run: a number there raised TypeError.
    (Peerings that are not an array may hide a gateway: test_network_semantics.)"""
    estate = Estate()
    estate.rows.append({"id": f"{BASE}/virtualNetworkGateways/vpn", "type": "microsoft.network/virtualnetworkgateways",
                        "properties": {"ipConfigurations": {"subnet": "GatewaySubnet"}}})
    verdict = estate.verdict(assume_no_bgp=False)
    assert verdict.value is True and "BGP" not in text(verdict)


def test_a_gateway_is_named_by_its_row_name() -> None:
    estate = Estate()
    estate.rows.append({"id": f"{BASE}/virtualNetworkGateways/gw-1", "name": "ExpressRoute-GW",
                        "type": "Microsoft.Network/virtualNetworkGateways", "properties": {"ipConfigurations": [
                            {"properties": {"subnet": {"id": estate.vnet["id"] + "/subnets/GatewaySubnet"}}}]}})
    assert "VNet 'rg1-vnet' has virtual network gateway 'ExpressRoute-GW'" in text(estate.verdict())


@pytest.mark.parametrize("disabled", [True, "true", "True"])
def test_bgp_propagation_disabled_in_any_spelling(disabled: object) -> None:
    estate = Estate()
    estate.vnet["properties"]["virtualNetworkPeerings"] = [{"properties": {"useRemoteGateways": True}}]
    estate.routes(("unrelated", "10.9.0.0/16", "None"))
    next(r for r in estate.rows if r["name"] == "testrt")["properties"]["disableBgpRoutePropagation"] = disabled
    verdict = estate.verdict(assume_no_bgp=False)
    assert verdict.value is True and "BGP" not in text(verdict)


def test_the_estate_judges_the_network_with_the_service_tag_file_it_is_given() -> None:
    from backup_preflight import snapshot
    from backup_preflight.estate import build_estate
    from backup_preflight.estate.network_facts import parse_outbound_operand

    from arg import snapshot_doc, vm_row

    estate = Estate()
    estate.nic_rules(rule("DenySql", 100, "Deny", dest="Sql.WestEurope"))
    vm = vm_row("vm1", nics=[NIC_ID])
    vm["location"] = "westeurope"
    snap = snapshot.from_document(snapshot_doc([vm, *estate.rows]), "t")
    query = parse_outbound_operand({"destinations": ["Storage"], "ports": [443]})
    assert build_estate(snap).vms[0]["network"].outbound(query).value is None  # Sql may overlap Storage
    assert build_estate(snap, service_tags=service_tags()).vms[0]["network"].outbound(query).value is True
