"""Outbound reachability verdicts (estate/network.py) on ARG rows built from the REST example shapes."""

from __future__ import annotations

import pytest

from backup_preflight.estate.network import Endpoint, NetworkModel, Verdict
from network_helpers import (
    BACKUP,
    BASE,
    NAT_ID,
    NIC_ID,
    NIC_NSG_ID,
    NOFILE,
    RT_ID,
    STORAGE,
    SUBNET_ID,
    SUBNET_NSG_ID,
    Estate,
    load,
    nsg,
    rule,
    text,
)


@pytest.fixture
def estate() -> Estate:
    return Estate()


# ---------------------------------------------------------------- NSG rules


def test_default_rules_allow_storage_via_internet_rule(estate: Estate) -> None:
    verdict = estate.verdict(STORAGE, BACKUP)
    assert verdict.value is True
    assert len(verdict.evidence) == 1  # one short line for the NIC
    line = verdict.evidence[0]
    assert "Storage:443/Tcp, AzureBackup:443/Tcp: allowed" in line
    assert "NSG 'nsg' on the NIC rule 'AllowInternetOutBound' (priority 65001, Allow, default rule)" in line
    assert "no NSG on subnet 'rg1-vnet/default'" in line


def test_inbound_rules_are_ignored(estate: Estate) -> None:
    estate.nic_rules(rule("DenyAllIn", 100, "Deny", direction="Inbound"))
    assert estate.verdict().value is True


def test_rules_are_sorted_by_priority_not_list_order(estate: Estate) -> None:
    estate.nic_rules(rule("AllowStorage", 200, "Allow", dest="Storage", port="443"), rule("DenyAll", 100, "Deny"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert "blocked by NSG 'nsg' on the NIC rule 'DenyAll' (priority 100, Deny)" in text(verdict)


def test_first_match_wins_allow_above_deny(estate: Estate) -> None:
    estate.nic_rules(rule("DenyAll", 200, "Deny"), rule("AllowStorage", 100, "Allow", dest="Storage", port="443"))
    verdict = estate.verdict()
    assert verdict.value is True
    assert "rule 'AllowStorage' (priority 100, Allow)" in text(verdict)


def test_custom_deny_above_default_allow(estate: Estate) -> None:
    estate.nic_rules(rule("DenyInternet", 4096, "Deny", dest="Internet"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == (
        "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyInternet' (priority 4096, Deny)"
    )


@pytest.mark.parametrize(
    ("ports", "blocked"),
    [(["80", "443"], True), (["80", "8080"], False), (["440-450"], True), (["444-450", "1-442"], False)],
)
def test_plural_destination_port_ranges(estate: Estate, ports: list[str], blocked: bool) -> None:
    estate.nic_rules(rule("DenyPorts", 100, "Deny", port=ports))
    verdict = estate.verdict()
    assert verdict.value is (not blocked)
    assert ("rule 'DenyPorts' (priority 100, Deny)" in text(verdict)) is blocked


@pytest.mark.parametrize(("port", "blocked"), [("443", True), ("440-450", True), ("*", True), ("444-450", False)])
def test_singular_destination_port_range(estate: Estate, port: str, blocked: bool) -> None:
    estate.nic_rules(rule("DenyPort", 100, "Deny", port=port))
    verdict = estate.verdict()
    assert verdict.value is (not blocked)
    expected = "rule 'DenyPort' (priority 100, Deny)" if blocked else "rule 'AllowInternetOutBound'"
    assert expected in text(verdict)


def test_singular_and_plural_port_fields_are_unioned(estate: Estate) -> None:
    deny = rule("DenyPorts", 100, "Deny", port="80")
    deny["properties"]["destinationPortRanges"] = ["443"]
    estate.nic_rules(deny)
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyPorts'" in text(verdict)


def test_plural_destination_address_prefixes(estate: Estate) -> None:
    estate.nic_rules(rule("DenyTags", 100, "Deny", dest=["VirtualNetwork", "Storage"]))
    verdict = estate.verdict(STORAGE, BACKUP)
    assert verdict.value is False
    assert text(verdict) == "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyTags' (priority 100, Deny)"


def test_plural_cidrs_that_together_cover_everything_decide(estate: Estate) -> None:
    estate.nic_rules(rule("DenyHalves", 100, "Deny", dest=["0.0.0.0/1", "128.0.0.0/1"]))
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyHalves'" in text(verdict)
    estate.nic_rules(rule("DenyOneHalf", 100, "Deny", dest=["0.0.0.0/1", "10.0.0.0/8"]))
    assert estate.verdict().value is None


@pytest.mark.parametrize(("protocol", "blocked"), [("Udp", False), ("Icmp", False), ("tcp", True), ("*", True)])
def test_protocol(estate: Estate, protocol: str, blocked: bool) -> None:
    estate.nic_rules(rule("DenyProto", 100, "Deny", protocol=protocol))
    verdict = estate.verdict()
    assert verdict.value is (not blocked)
    assert ("rule 'DenyProto'" in text(verdict)) is blocked


@pytest.mark.parametrize(
    ("region", "blocked"), [("eastus", True), ("East US", True), ("EASTUS", True), ("westus", False)]
)
def test_regional_storage_tag_only_matches_the_vm_region(estate: Estate, region: str, blocked: bool) -> None:
    estate.nic_rules(rule("DenyStorageEast", 100, "Deny", dest="Storage.EastUS"))
    verdict = estate.verdict(region=region)
    assert verdict.value is (not blocked)
    expected = "rule 'DenyStorageEast' (priority 100, Deny)" if blocked else "rule 'AllowInternetOutBound'"
    assert expected in text(verdict)


def test_regional_allow_above_internet_deny(estate: Estate) -> None:
    estate.nic_rules(
        rule("AllowStorageRegion", 100, "Allow", dest="Storage.eastus", port="443"),
        rule("DenyInternet", 200, "Deny", dest="Internet"),
    )
    assert "rule 'AllowStorageRegion' (priority 100, Allow)" in text(estate.verdict())
    assert estate.verdict().value is True
    out_of_region = estate.verdict(region="westeurope")
    assert out_of_region.value is False
    assert "rule 'DenyInternet' (priority 200, Deny)" in text(out_of_region)


def test_virtual_network_tag_does_not_cover_storage(estate: Estate) -> None:
    estate.nic_rules(
        rule("AllowVnet", 100, "Allow", dest="VirtualNetwork"), rule("DenyInternet", 200, "Deny", dest="Internet")
    )
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyInternet' (priority 200, Deny)" in text(verdict)
    assert "AllowVnet" not in text(verdict)


@pytest.mark.parametrize("dest", ["*", "0.0.0.0/0", "Internet", "AzureCloud", "AzureCloud.eastus", "storage"])
def test_destinations_that_cover_storage(estate: Estate, dest: str) -> None:
    estate.nic_rules(rule("DenyIt", 100, "Deny", dest=dest))
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyIt' (priority 100, Deny)" in text(verdict)


def test_specific_cidr_before_decisive_rule_is_unknown(estate: Estate) -> None:
    estate.nic_rules(rule("DenyRange", 100, "Deny", dest="20.60.0.0/16"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert verdict.evidence[0] == (
        "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyRange' (priority 100, Deny), for part of "
        f"{NOFILE}: 20.60.0.0–20.60.255.255"
    )


def test_specific_cidr_allow_before_deny_is_unknown_never_a_guessed_pass(estate: Estate) -> None:
    estate.nic_rules(
        rule("AllowRange", 100, "Allow", dest="20.60.0.0/16"), rule("DenyInternet", 200, "Deny", dest="Internet")
    )
    verdict = estate.verdict()
    assert verdict.value is None
    assert "blocked by NSG 'nsg' on the NIC rule 'DenyInternet' (priority 200, Deny), for part of" in text(verdict)
    assert "rule 'AllowRange' (priority 100, Allow) — allowed for part of" in text(verdict)
    assert "20.60.0.0–20.60.255.255" in text(verdict)


def test_undecidable_rule_with_same_access_as_the_decider_does_not_make_it_unknown(estate: Estate) -> None:
    estate.nic_rules(rule("AllowRange", 100, "Allow", dest="20.60.0.0/16"))
    verdict = estate.verdict()
    assert verdict.value is True
    assert "rule 'AllowInternetOutBound'" in text(verdict)


def test_other_service_tag_is_undecidable(estate: Estate) -> None:
    estate.nic_rules(rule("DenySql", 100, "Deny", dest="Sql"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert "rule 'DenySql' (priority 100, Deny) may match (destination 'Sql'" in text(verdict)


def test_destination_application_security_group_never_holds_storage(estate: Estate) -> None:
    deny = rule("DenyAsg", 100, "Deny")
    del deny["properties"]["destinationAddressPrefix"]
    deny["properties"]["destinationApplicationSecurityGroups"] = [{"id": f"{BASE}/applicationSecurityGroups/a"}]
    estate.nic_rules(deny)
    verdict = estate.verdict()
    assert verdict.value is True  # an ASG holds NIC private addresses; Storage's are public
    assert "rule 'AllowInternetOutBound'" in text(verdict)
    private = estate.verdict(Endpoint("10.1.0.4", 443))
    assert private.value is None
    assert "rule 'AllowVnetOutBound' (priority 65000, Allow, default rule) may match" in text(private)


@pytest.mark.parametrize(
    ("source", "value"), [("172.20.0.0/16", False), ("10.99.0.0/16", True), ("172.20.2.0/25", None)]
)
def test_source_cidr_is_judged_against_the_subnet_prefix(estate: Estate, source: str, value: bool | None) -> None:
    estate.nic_rules(rule("DenyFrom", 100, "Deny", source=source))
    verdict = estate.verdict()
    assert verdict.value is value
    if value is None:
        assert "rule 'DenyFrom' (priority 100, Deny) may match (source '172.20.2.0/25'" in text(verdict)
    elif value is False:
        assert "rule 'DenyFrom' (priority 100, Deny)" in text(verdict)
    else:
        assert "rule 'AllowInternetOutBound'" in text(verdict)


def test_virtual_network_source_matches(estate: Estate) -> None:
    estate.nic_rules(rule("DenyFromVnet", 100, "Deny", source="VirtualNetwork"))
    assert "rule 'DenyFromVnet'" in text(estate.verdict())
    assert estate.verdict().value is False


# ---------------------------------------------------------------- endpoint addresses


@pytest.mark.parametrize(
    ("dest", "value", "decider"),
    [
        ("20.60.0.0/16", False, "DenyIt"),
        ("10.0.0.0/8", True, "AllowInternetOutBound"),
        ("*", False, "DenyIt"),
        ("20.60.0.11/32", None, "DenyIt"),
        ("Storage", None, "DenyIt"),
    ],
)
def test_ip_endpoint(estate: Estate, dest: str, value: bool | None, decider: str) -> None:
    estate.nic_rules(rule("DenyIt", 100, "Deny", dest=dest))
    verdict = estate.verdict(Endpoint("20.60.0.10/31", 443))
    assert verdict.value is value
    assert f"rule '{decider}'" in text(verdict)
    assert text(verdict).startswith("20.60.0.10/31:443/Tcp")


# ---------------------------------------------------------------- NIC and subnet levels


def test_nic_nsg_allows_but_subnet_nsg_denies(estate: Estate) -> None:
    estate.nic_rules(rule("AllowStorage", 100, "Allow", dest="Storage", port="443"))
    estate.subnet_rules(rule("DenyInternet", 100, "Deny", dest="Internet"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == (
        "Storage:443/Tcp: blocked by NSG 'subnet-nsg' on subnet 'rg1-vnet/default' "
        "rule 'DenyInternet' (priority 100, Deny)"
    )


def test_subnet_nsg_allows_but_nic_nsg_denies(estate: Estate) -> None:
    estate.nic_rules(rule("DenyInternet", 100, "Deny", dest="Internet"))
    estate.subnet_rules(rule("AllowStorage", 100, "Allow", dest="Storage", port="443"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyInternet' (priority 100, Deny)"


def test_both_levels_allow(estate: Estate) -> None:
    estate.subnet_rules(rule("AllowStorage", 100, "Allow", dest="Storage", port="443"))
    verdict = estate.verdict()
    assert verdict.value is True
    assert "NSG 'subnet-nsg' on subnet 'rg1-vnet/default' rule 'AllowStorage' (priority 100, Allow)" in text(verdict)
    assert "NSG 'nsg' on the NIC rule 'AllowInternetOutBound'" in text(verdict)


def test_no_nsg_at_either_level_allows(estate: Estate) -> None:
    del estate.nic["properties"]["networkSecurityGroup"]
    verdict = estate.verdict()
    assert verdict.value is True
    assert "no NSG on the NIC; no NSG on subnet 'rg1-vnet/default'; no route table on subnet" in text(verdict)


def test_ids_are_compared_case_insensitively(estate: Estate) -> None:
    estate.nic["properties"]["networkSecurityGroup"]["id"] = NIC_NSG_ID.upper()
    estate.ipconfig["subnet"]["id"] = SUBNET_ID.replace("resourceGroups", "RESOURCEGROUPS")
    estate.subnet_rules(rule("DenyInternet", 100, "Deny", dest="Internet"))
    estate.subnet["networkSecurityGroup"]["id"] = SUBNET_NSG_ID.lower()
    verdict = estate.model().outbound([NIC_ID.upper()], "eastus", [STORAGE])
    assert verdict.value is False
    assert "NSG 'subnet-nsg' on subnet 'rg1-vnet/default' rule 'DenyInternet'" in text(verdict)


def test_standalone_subnet_row_is_used(estate: Estate) -> None:
    subnet = estate.vnet["properties"].pop("subnets")[0]
    subnet["properties"]["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    estate.rows.append(subnet | {"type": "microsoft.network/virtualnetworks/subnets"})
    verdict = estate.verdict()
    assert verdict.value is False
    assert "subnet 'rg1-vnet/default' has defaultOutboundAccess=false" in text(verdict)


def test_missing_nsg_row_is_unknown(estate: Estate) -> None:
    estate.subnet["networkSecurityGroup"] = {"id": f"{BASE}/networkSecurityGroups/gone"}
    verdict = estate.verdict()
    assert verdict.value is None
    assert text(verdict) == (
        f"Storage:443/Tcp: NSG {BASE.lower()}/networksecuritygroups/gone (on subnet 'rg1-vnet/default') "
        "is referenced but not in the collected rows"
    )


def test_missing_nsg_row_does_not_hide_a_block(estate: Estate) -> None:
    estate.rows = [r for r in estate.rows if r["id"] != NIC_NSG_ID]
    estate.subnet_rules(rule("DenyAll", 100, "Deny"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyAll'" in text(verdict)


def test_missing_subnet_nic_and_ipconfig_are_unknown(estate: Estate) -> None:
    estate.rows.remove(estate.vnet)
    verdict = estate.verdict()
    assert verdict.value is None
    assert f"subnet {SUBNET_ID.lower()} is referenced but not in the collected rows" in text(verdict)

    missing = estate.model().outbound([f"{BASE}/networkInterfaces/other"], "eastus", [STORAGE])
    assert missing.value is None
    assert f"NIC {BASE}/networkInterfaces/other is referenced" in text(missing)

    estate.nic["properties"]["ipConfigurations"] = []
    bare = estate.verdict()
    assert bare.value is None
    assert text(bare) == "NIC 'test-nic' has no IP configuration with a subnet; not assessed"


def test_the_primary_ip_configuration_decides_wherever_it_is_listed(estate: Estate) -> None:
    first, second = estate.nic["properties"]["ipConfigurations"]
    first["properties"]["primary"], second["properties"]["primary"] = False, True
    first["properties"]["subnet"] = {"id": f"{BASE}/virtualNetworks/rg1-vnet/subnets/gone"}
    assert estate.verdict().value is True  # the second, primary, configuration's subnet
    second["properties"]["primary"] = False
    unplaced = estate.verdict()  # no primary: the first configuration, whose subnet is not collected
    assert unplaced.value is None
    assert f"subnet {BASE.lower()}/virtualnetworks/rg1-vnet/subnets/gone is referenced" in text(unplaced)


def test_a_lone_ip_configuration_counts_without_a_primary_flag(estate: Estate) -> None:
    configs = estate.nic["properties"]["ipConfigurations"]
    del configs[1]
    del configs[0]["properties"]["primary"]
    assert estate.verdict().value is True


def test_a_nic_without_a_subnet_is_named_by_its_row_else_by_its_id(estate: Estate) -> None:
    estate.nic["properties"]["ipConfigurations"] = []
    estate.nic["name"] = "nic-as-named"
    assert text(estate.verdict()) == "NIC 'nic-as-named' has no IP configuration with a subnet; not assessed"
    del estate.nic["name"]
    assert text(estate.verdict()) == "NIC 'test-nic' has no IP configuration with a subnet; not assessed"


def test_nsg_row_without_properties_is_unknown(estate: Estate) -> None:
    estate.replace({"id": NIC_NSG_ID, "name": "nsg", "type": "microsoft.network/networksecuritygroups"})
    verdict = estate.verdict()
    assert verdict.value is None
    assert "NSG 'nsg' on the NIC cannot be assessed: the row has no properties" in text(verdict)


def test_rule_without_priority_makes_nsg_unknown(estate: Estate) -> None:
    broken = rule("NoPriority", 100, "Deny")
    del broken["properties"]["priority"]
    estate.nic_rules(broken)
    verdict = estate.verdict()
    assert verdict.value is None
    assert "rule 'NoPriority' has no usable priority/access" in text(verdict)


def test_missing_default_rules_use_documented_defaults(estate: Estate) -> None:
    estate.replace(nsg(NIC_NSG_ID, defaults=False))
    verdict = estate.verdict()
    assert verdict.value is True
    assert (
        "rule 'AllowInternetOutBound' (priority 65001, Allow, documented default rule); the row has no "
        "defaultSecurityRules, Azure's documented defaults applied"
    ) in text(verdict)


def test_documented_defaults_are_evaluated_as_rules(estate: Estate) -> None:
    estate.replace(nsg(NIC_NSG_ID, defaults=False))
    verdict = estate.verdict(Endpoint("10.20.0.5", 443))  # a private address may or may not be in the VNet
    assert verdict.value is None
    assert text(verdict) == (
        "10.20.0.5:443/Tcp: NSG 'nsg' on the NIC: rule 'AllowVnetOutBound' (priority 65000, Allow, documented "
        "default rule) may match (destination 'VirtualNetwork' cannot be proven to cover or exclude 10.20.0.5), "
        "so rule 'DenyAllOutBound' (priority 65500, Deny, documented default rule) cannot be proven to decide"
    )



def test_virtual_network_holds_the_routes_prefixes_and_may_hold_their_default_route(estate: Estate) -> None:
    """Azure: VirtualNetwork holds "address prefixes used on user-defined routes. This tag might also contain
    default routes." Hub and spoke: VirtualNetwork allowed first, Internet denied, everything to a firewall."""
    estate.nic_rules(rule("allow-vnet", 100, "Allow", dest="VirtualNetwork"),
                     rule("deny-internet", 4000, "Deny", dest="Internet"))
    estate.routes(("to-firewall", "0.0.0.0/0", "VirtualAppliance"))
    verdict = estate.verdict(declared=True)
    assert verdict.value is None  # was a fail: the deny decided, as if the tag held private addresses only
    assert ("rule 'allow-vnet' (priority 100, Allow) may match (destination 'VirtualNetwork' may hold the default "
            "route of route table 'testrt' (the tag holds the prefixes of user-defined routes, and Azure says it "
            "might hold default routes)), so rule 'deny-internet' (priority 4000, Deny) cannot be proven to "
            "decide") in text(verdict)
    estate.nic_rules(rule("deny-vnet", 100, "Deny", dest="VirtualNetwork"))
    estate.routes(("to-firewall", "Storage", "VirtualAppliance"))  # a route to an appliance: its prefix is in it
    blocked = estate.verdict(declared=True)
    assert blocked.value is False  # was a pass: the tag never matched Storage
    assert "blocked by NSG 'nsg' on the NIC rule 'deny-vnet' (priority 100, Deny)" in text(blocked)
    estate.routes(("storage-direct", "Storage", "Internet"))  # another route's prefix: Azure is not seen to add it
    maybe = estate.verdict()
    assert maybe.value is None
    assert ("destination 'VirtualNetwork' may hold the prefixes of route table 'testrt' (Azure names the prefixes "
            "of user-defined routes; only those of routes to a virtual appliance are seen in the tag)") in text(maybe)
    estate.routes(("elsewhere", "10.50.0.0/16", "VirtualAppliance"))  # private prefixes change nothing
    assert estate.verdict().value is True


def test_virtual_network_may_hold_anything_when_the_route_table_cannot_be_read_or_routes_are_learned(
        estate: Estate) -> None:
    """A route table not collected hides which prefixes the tag holds; a VNet with a gateway may learn an
    on-premises default route, which the tag then holds, unless assumeNoOnPremisesDefaultRoute."""
    estate.nic_rules(rule("allow-vnet", 100, "Allow", dest="VirtualNetwork"),
                     rule("deny-internet", 4000, "Deny", dest="Internet"))
    estate.subnet["routeTable"] = {"id": RT_ID}  # not among the rows
    unread = estate.verdict(declared=True)
    assert unread.value is None  # was a fail: the deny decided
    assert (f"destination 'VirtualNetwork' may hold any address: it holds the prefixes of user-defined routes, and "
            f"route table {RT_ID} cannot be read") in text(unread)
    del estate.subnet["routeTable"]
    assert estate.verdict().value is False  # no routes, no gateway: the tag holds private addresses only
    estate.vnet["properties"]["subnets"].append({
        "name": "GatewaySubnet", "id": f"{SUBNET_ID.rsplit('/subnets/', 1)[0]}/subnets/GatewaySubnet",
        "properties": {"addressPrefix": "172.20.255.0/27", "ipConfigurations": [
            {"id": f"{BASE}/virtualNetworkGateways/vpn-gw/ipConfigurations/default"}]}})
    assert estate.verdict().value is False  # no on-premises default route is assumed
    learned = estate.verdict(assume_no_bgp=False)
    assert learned.value is None
    assert "so a default route learned over BGP may be among them (assumeNoOnPremisesDefaultRoute is false)" in text(
        learned)

# ---------------------------------------------------------------- routes


def test_route_next_hop_none_blocks(estate: Estate) -> None:
    estate.routes(("blackhole", "0.0.0.0/0", "None"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == (
        "Storage:443/Tcp: blocked by route table 'testrt' route 'blackhole' (prefix 0.0.0.0/0, next hop None): "
        "traffic is dropped"
    )


def test_service_tag_route_is_more_specific_than_default_route(estate: Estate) -> None:
    estate.routes(("default", "0.0.0.0/0", "None"), ("storage", "Storage", "Internet"))
    verdict = estate.verdict(STORAGE, BACKUP)
    assert verdict.value is None  # without a service-tag file, Storage's route may or may not cover AzureBackup
    assert text(verdict).startswith("AzureBackup:443/Tcp: the route that wins depends on the prefix lengths of "
                                    "AzureBackup")
    allowed = estate.verdict()
    assert allowed.value is True
    assert "route 'storage' (prefix Storage, next hop Internet)" in text(allowed)
    estate.routes(("default", "0.0.0.0/0", "Internet"), ("storage", "Storage.eastus", "None"))
    assert "route 'storage' (prefix Storage.eastus, next hop None)" in text(estate.verdict())
    assert estate.verdict().value is False


def test_two_routes_with_one_prefix_that_disagree_leave_the_route_unknown(estate: Estate) -> None:
    """Azure refuses a second route with a prefix a table already has (RouteConflict); a snapshot that has one
    anyway does not say which applies, so the scanner does not pick one."""
    estate.routes(("first", "0.0.0.0/2", "Internet"), ("second", "0.0.0.0/2", "None"))
    verdict = estate.verdict(Endpoint("20.60.0.10", 443))
    assert verdict.value is None
    assert text(verdict) == (
        "20.60.0.10:443/Tcp: route table 'testrt' route 'first' (prefix 0.0.0.0/2, next hop Internet) and route "
        "table 'testrt' route 'second' (prefix 0.0.0.0/2, next hop None) match it alike: two routes with one "
        "prefix, which Azure refuses (RouteConflict), so which one applies is not known")
    estate.routes(("first", "0.0.0.0/2", "None"), ("second", "0.0.0.0/2", "None"))  # alike: one verdict
    assert estate.verdict(Endpoint("20.60.0.10", 443)).value is False
    estate.routes(("first", "0.0.0.0/2", "Internet"), ("second", "0.0.0.0/2", "None"), ("narrow", "20.0.0.0/8",
                                                                                       "Internet"))
    assert estate.verdict(Endpoint("20.60.0.10", 443)).value is True  # a longer match decides


def test_private_cidr_route_does_not_cover_storage(estate: Estate) -> None:
    estate.routes(("route1", "10.0.3.0/24", "None"))
    verdict = estate.verdict()
    assert verdict.value is True
    assert "no route in route table 'testrt' covers it (system route to Internet)" in text(verdict)


def test_cidr_route_longest_prefix_for_ip_endpoint(estate: Estate) -> None:
    estate.routes(("wide", "20.0.0.0/8", "Internet"), ("narrow", "20.60.0.0/16", "None"))
    verdict = estate.verdict(Endpoint("20.60.0.10", 443))
    assert verdict.value is False
    assert "route 'narrow' (prefix 20.60.0.0/16, next hop None)" in text(verdict)


def test_virtual_appliance_is_unknown_unless_declared(estate: Estate) -> None:
    estate.routes(("to-firewall", "0.0.0.0/0", "VirtualAppliance"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert text(verdict) == (
        "Storage:443/Tcp: route table 'testrt' route 'to-firewall' (prefix 0.0.0.0/0, next hop VirtualAppliance "
        "172.20.0.4): egress through a device the scanner cannot see"
    )
    declared = estate.verdict(declared=True)
    assert declared.value is True
    assert "route 'to-firewall' (prefix 0.0.0.0/0, next hop VirtualAppliance 172.20.0.4): egress through a " \
        "declared device" in text(declared)


def test_virtual_network_gateway_is_unknown(estate: Estate) -> None:
    estate.routes(("forced-tunnel", "0.0.0.0/0", "VirtualNetworkGateway"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert "route 'forced-tunnel' (prefix 0.0.0.0/0, next hop VirtualNetworkGateway)" in text(verdict)


def test_missing_route_table_row_is_unknown(estate: Estate) -> None:
    estate.subnet["routeTable"] = {"id": RT_ID}
    verdict = estate.verdict()
    assert verdict.value is None
    assert f"route table {RT_ID} is referenced but not in the collected rows" in text(verdict)


# ---------------------------------------------------------------- default outbound access


def test_private_subnet_without_nat_or_public_ip_blocks(estate: Estate) -> None:
    estate.subnet["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == (
        "Storage:443/Tcp: blocked: subnet 'rg1-vnet/default' has defaultOutboundAccess=false and no NAT gateway, "
        "no public IP on the NIC and no egress route through a device"
    )


def test_private_subnet_with_nat_gateway_passes(estate: Estate) -> None:
    estate.subnet.update(defaultOutboundAccess=False, natGateway={"id": NAT_ID})
    del estate.ipconfig["publicIPAddress"]
    verdict = estate.verdict()
    assert verdict.value is True
    assert f"egress via NAT gateway {NAT_ID}" in text(verdict)


def test_private_subnet_reaches_storage_through_its_service_endpoint(estate: Estate) -> None:
    estate.subnet.update(defaultOutboundAccess=False,
                         serviceEndpoints=[{"service": "Microsoft.Storage", "locations": ["eastus", "westus"]}])
    del estate.ipconfig["publicIPAddress"]
    verdict = estate.verdict()
    assert verdict.value is True
    assert "routed through the Microsoft.Storage service endpoint of subnet 'rg1-vnet/default'" in text(verdict)
    estate.subnet["serviceEndpoints"] = [{"service": "Microsoft.KeyVault"}]
    assert estate.verdict().value is False


def test_private_subnet_with_public_ip_passes(estate: Estate) -> None:
    estate.subnet["defaultOutboundAccess"] = False
    verdict = estate.verdict()
    assert verdict.value is True
    assert "egress via the NIC's public IP" in text(verdict)


def test_private_subnet_with_egress_route_follows_the_device(estate: Estate) -> None:
    estate.subnet["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    estate.routes(("to-firewall", "0.0.0.0/0", "VirtualAppliance"))
    assert estate.verdict().value is None
    declared = estate.verdict(declared=True)
    assert declared.value is True
    assert "defaultOutboundAccess" not in text(declared)


def test_private_subnet_behind_a_load_balancer_not_collected_is_unknown(estate: Estate) -> None:
    estate.subnet["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    estate.ipconfig["loadBalancerBackendAddressPools"] = [{"id": f"{BASE}/loadBalancers/lb/backendAddressPools/p"}]
    verdict = estate.verdict()
    assert verdict.value is None
    assert (f"subnet 'rg1-vnet/default' has no default outbound access: load balancer {BASE}/loadBalancers/lb of the "
            "NIC's backend pool is referenced but not in the collected rows") in text(verdict)


def test_default_outbound_access_true_or_missing_is_fine(estate: Estate) -> None:
    del estate.ipconfig["publicIPAddress"]
    assert estate.verdict().value is True
    estate.subnet["defaultOutboundAccess"] = True
    assert estate.verdict().value is True


# ---------------------------------------------------------------- several NICs, memoization


def second_nic(estate: Estate, name: str, subnet_nsg_rules: tuple[dict, ...] = ()) -> str:
    """Add NIC `name` in its own subnet 'other' (with an NSG holding `subnet_nsg_rules`); return its id."""
    nic = load("nic.json")
    nic_id = f"{BASE}/networkInterfaces/{name}"
    nic["id"], nic["name"] = nic_id, name
    del nic["properties"]["networkSecurityGroup"]
    subnet_id = f"{BASE}/virtualNetworks/rg1-vnet/subnets/other"
    for config in nic["properties"]["ipConfigurations"]:
        config["properties"]["subnet"]["id"] = subnet_id
    if not any(s["name"] == "other" for s in estate.vnet["properties"]["subnets"]):
        other_nsg = f"{BASE}/networkSecurityGroups/other-nsg"
        estate.vnet["properties"]["subnets"].append(
            {"name": "other", "id": subnet_id,
             "properties": {"addressPrefix": "172.20.3.0/24", "networkSecurityGroup": {"id": other_nsg}}}
        )
        estate.rows.append(nsg(other_nsg, *subnet_nsg_rules))
    estate.rows.append(nic)
    return nic_id


def test_several_nics_one_blocked(estate: Estate) -> None:
    blocked = second_nic(estate, "nic-b", (rule("DenyStorage", 300, "Deny", dest="Storage"),))
    verdict = estate.model().outbound([NIC_ID, blocked], "eastus", [STORAGE, BACKUP])
    assert verdict.value is False
    assert verdict.evidence == (
        "NIC 'nic-b': Storage:443/Tcp: blocked by NSG 'other-nsg' on subnet 'rg1-vnet/other' "
        "rule 'DenyStorage' (priority 300, Deny)",
    )


def test_several_nics_unknown_and_pass(estate: Estate) -> None:
    unknown = second_nic(estate, "nic-u", (rule("DenyRange", 300, "Deny", dest="20.0.0.0/8"),))
    verdict = estate.model().outbound([NIC_ID, unknown], "eastus", [STORAGE])
    assert verdict.value is None
    assert len(verdict.evidence) == 2  # the blocked part and the allowed part of Storage's possible addresses
    assert verdict.evidence[0].startswith("NIC 'nic-u': Storage:443/Tcp: blocked by NSG 'other-nsg'")
    assert "rule 'DenyRange' (priority 300, Deny), for part of" in verdict.evidence[0]


def test_several_nics_all_pass_one_line_each(estate: Estate) -> None:
    other = second_nic(estate, "nic-b")
    verdict = estate.model().outbound([NIC_ID, other], "eastus", [STORAGE])
    assert verdict.value is True
    assert [line.split(":")[0] for line in verdict.evidence] == ["NIC 'test-nic'", "NIC 'nic-b'"]


def test_identical_nsgs_share_decisions_but_keep_their_own_names(estate: Estate) -> None:
    deny = rule("DenyInternet", 100, "Deny", dest="Internet")
    estate.nic_rules(deny)
    other = second_nic(estate, "nic-b")
    twin_id = f"{BASE}/networkSecurityGroups/twin-nsg"
    next(r for r in estate.rows if r["id"] == other)["properties"]["networkSecurityGroup"] = {"id": twin_id}
    estate.rows.append(nsg(twin_id, deny))
    verdict = estate.model().outbound([NIC_ID, other], "eastus", [STORAGE])
    assert verdict.value is False
    assert verdict.evidence == (
        "NIC 'test-nic': Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyInternet' (priority 100, Deny)",
        "NIC 'nic-b': Storage:443/Tcp: blocked by NSG 'twin-nsg' on the NIC rule 'DenyInternet' (priority 100, Deny)",
    )


def test_no_nics_is_unknown(estate: Estate) -> None:
    verdict = estate.model().outbound([], "eastus", [STORAGE])
    assert verdict == Verdict(None, ("the VM has no network interfaces to assess",))


def test_verdict_is_shared_and_evaluated_once_per_combination(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    nic_ids = []
    for i in range(200):
        nic = load("nic.json")
        nic["id"] = nic["id"].replace("test-nic", f"vm{i}-nic")
        if i % 2:  # half of them spell the ids differently; same combination
            nic["properties"]["networkSecurityGroup"]["id"] = NIC_NSG_ID.lower()
            nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = SUBNET_ID.upper()
        estate.rows.append(nic)
        nic_ids.append(nic["id"])
    estate.subnet_rules(rule("DenyInternet", 100, "Deny", dest="Internet"))
    model = estate.model()
    calls = []
    original = NetworkModel._evaluate

    def counting(self: NetworkModel, *key: object) -> Verdict:
        calls.append(key)
        return original(self, *key)

    monkeypatch.setattr(NetworkModel, "_evaluate", counting)
    verdicts = [model.outbound([nic_id], "East US", [STORAGE, BACKUP]) for nic_id in nic_ids]
    assert len(calls) == 1
    assert all(v is verdicts[0] for v in verdicts)
    assert verdicts[0].value is False
    assert "rule 'DenyInternet' (priority 100, Deny)" in text(verdicts[0])

    # a different region, endpoint set or declared flag is a different combination
    model.outbound([nic_ids[0]], "westus", [STORAGE, BACKUP])
    model.outbound([nic_ids[0]], "eastus", [STORAGE])
    model.outbound([nic_ids[0]], "eastus", [STORAGE, BACKUP], egress_device_declared=True)
    assert len(calls) == 4
