"""Azure's routing and NSG semantics for the Storage endpoint, one documented case per test, on ARG rows.

Each case is checked without the service-tag file (what the scanner can prove from the rows alone)
and, where the file decides more, with the pinned excerpt (fixtures/network/service-tags.json).
"""

from __future__ import annotations

import copy

import pytest

from backup_preflight.estate.network import Endpoint, NetworkModel
from network_helpers import BASE, NIC_ID, STORAGE, SUBNET_ID, Estate, nsg, rule, service_tags, text

AAD = Endpoint("AzureActiveDirectory", 443)
VNET_ID = SUBNET_ID.rsplit("/subnets/", 1)[0]


@pytest.fixture
def estate() -> Estate:
    return Estate()


def deny_internet(estate: Estate, *allow: dict) -> None:
    estate.nic_rules(*allow, rule("DenyInternet", 4000, "Deny", dest="Internet"))


# ---------------------------------------------------------------- routes: longest prefix over the address space


def test_two_halves_to_none_drop_everything_and_both_routes_are_named(estate: Estate) -> None:
    estate.routes(("half-low", "0.0.0.0/1", "None"), ("half-high", "128.0.0.0/1", "None"))
    for tags in (None, service_tags()):
        verdict = estate.verdict(tags=tags)
        assert verdict.value is False
        assert "blocked by route table 'testrt' route 'half-low' (prefix 0.0.0.0/1, next hop None)" in text(verdict)
        if tags is None:  # Storage may be in either half; with the file, every eastus prefix is in the low half
            assert "route 'half-high' (prefix 128.0.0.0/1, next hop None)" in text(verdict)


def test_route_over_part_of_the_public_space_is_unknown_and_named(estate: Estate) -> None:
    estate.routes(("to-nowhere", "20.0.0.0/8", "None"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert ("blocked by route table 'testrt' route 'to-nowhere' (prefix 20.0.0.0/8, next hop None): traffic is "
            "dropped, for part of the public IPv4 addresses Storage.eastus may use") in text(verdict)
    assert "20.0.0.0–20.255.255.255" in text(verdict)


def test_service_tag_file_decides_partial_routes_exactly(estate: Estate) -> None:
    tags = service_tags()
    estate.routes(("to-nowhere", "13.0.0.0/8", "None"))  # no Storage.eastus prefix there
    assert estate.verdict().value is None
    assert estate.verdict(tags=tags).value is True
    estate.routes(("a", "20.0.0.0/8", "None"), ("b", "52.0.0.0/8", "None"))  # every Storage.eastus prefix
    assert estate.verdict().value is None
    blocked = estate.verdict(tags=tags)
    assert blocked.value is False
    assert "route 'a' (prefix 20.0.0.0/8" in text(blocked) and "route 'b' (prefix 52.0.0.0/8" in text(blocked)
    estate.routes(("a", "20.0.0.0/8", "None"))  # some of them
    partial = estate.verdict(tags=tags)
    assert partial.value is None
    assert "for part of the 23 IPv4 prefixes of Storage.eastus in the service-tag file" in text(partial)


def test_half_route_to_an_appliance_is_unknown_unless_declared(estate: Estate) -> None:
    estate.routes(("to-firewall", "0.0.0.0/1", "VirtualAppliance"))
    verdict = estate.verdict()
    assert verdict.value is None
    assert "route 'to-firewall' (prefix 0.0.0.0/1, next hop VirtualAppliance 172.20.0.4): egress through a device " \
           "the scanner cannot see" in text(verdict)
    assert estate.verdict(declared=True).value is True


def test_explicit_prefix_beats_a_service_tag_route_of_the_same_length(estate: Estate) -> None:
    estate.routes(("storage-tag", "Storage", "Internet"), ("exact", "20.60.0.0/24", "None"))
    verdict = estate.verdict(tags=service_tags())
    assert verdict.value is None  # 20.60.0.0/24 is one of Storage.eastus's prefixes: dropped, the others not
    assert "route 'exact' (prefix 20.60.0.0/24, next hop None): traffic is dropped, for part of" in text(verdict)
    assert "20.60.0.0–20.60.0.255" in text(verdict)


def test_regional_tag_route_beats_the_global_one(estate: Estate) -> None:
    estate.routes(("global", "Storage", "None"), ("regional", "Storage.EastUS", "Internet"))
    for tags in (None, service_tags()):
        verdict = estate.verdict(tags=tags)
        assert verdict.value is True
        assert "route 'regional' (prefix Storage.EastUS, next hop Internet)" in text(verdict)


def test_storage_tag_route_beats_azurecloud(estate: Estate) -> None:
    estate.routes(("cloud", "AzureCloud", "None"), ("storage", "Storage", "Internet"))
    for tags in (None, service_tags()):
        assert estate.verdict(tags=tags).value is True


def test_a_host_route_is_never_beaten_by_a_tag_route(estate: Estate) -> None:
    estate.routes(("storage", "Storage", "None"), ("host", "52.239.152.1/32", "Internet"))
    for tags in (None, service_tags()):  # 52.239.152.1 is in Storage.eastus's 52.239.152.0/22
        verdict = estate.verdict(tags=tags)
        assert verdict.value is None
        assert "route 'host' (prefix 52.239.152.1/32, next hop Internet) — allowed for part of" in text(verdict)
        assert "52.239.152.1–52.239.152.1" in text(verdict)
    assert estate.verdict(Endpoint("52.239.152.1", 443)).value is True


# ---------------------------------------------------------------- service endpoints


ENDPOINT = [{"service": "Microsoft.Storage", "locations": ["eastus", "westus"]}]


@pytest.mark.parametrize("endpoints", [
    ENDPOINT,
    [{"service": "microsoft.storage", "locations": ["East US"]}],
    [{"service": "Microsoft.Storage"}],  # no locations: the VNet's region (and its pair)
    [{"service": "MICROSOFT.STORAGE.GLOBAL", "locations": ["*"]}],
])
@pytest.mark.parametrize("hop", ["None", "VirtualAppliance", "VirtualNetworkGateway"])
def test_storage_endpoint_routes_beat_forced_tunnelling(estate: Estate, endpoints: list, hop: str) -> None:
    estate.subnet["serviceEndpoints"] = endpoints
    estate.routes(("forced", "0.0.0.0/0", hop))
    for tags in (None, service_tags()):
        verdict = estate.verdict(tags=tags)
        assert verdict.value is True
        assert "service endpoint of subnet 'rg1-vnet/default'" in text(verdict)
        assert "route 'forced'" not in text(verdict)


def test_endpoint_for_another_region_does_not_help(estate: Estate) -> None:
    estate.subnet["serviceEndpoints"] = [{"service": "Microsoft.Storage", "locations": ["westeurope"]}]
    estate.routes(("forced", "0.0.0.0/0", "None"))
    verdict = estate.verdict()
    assert verdict.value is False
    assert "route 'forced' (prefix 0.0.0.0/0, next hop None)" in text(verdict)


def test_storage_endpoint_does_not_carry_other_services(estate: Estate) -> None:
    estate.subnet["serviceEndpoints"] = ENDPOINT
    estate.routes(("forced", "0.0.0.0/0", "None"))
    assert estate.verdict(AAD, tags=service_tags()).value is False


def test_subnet_without_default_outbound_access_reaches_storage_through_its_endpoint(estate: Estate) -> None:
    estate.subnet.update(defaultOutboundAccess=False, serviceEndpoints=[{"service": "microsoft.storage.global"}])
    del estate.ipconfig["publicIPAddress"]
    verdict = estate.verdict()
    assert verdict.value is True
    assert "routed through the Microsoft.Storage.Global service endpoint" in text(verdict)
    assert estate.verdict(AAD).value is False  # the endpoint carries Storage only


def test_specific_route_may_beat_the_endpoint_without_the_file_and_does_not_with_it(estate: Estate) -> None:
    estate.subnet["serviceEndpoints"] = ENDPOINT
    estate.routes(("storage-block", "20.60.0.0/16", "None"), ("rest", "52.0.0.0/8", "None"))
    unknown = estate.verdict()
    assert unknown.value is None
    assert "the route that wins depends on the prefix lengths of Storage" in text(unknown)
    assert "route 'storage-block' (prefix 20.60.0.0/16, next hop None)" in text(unknown)
    assert estate.verdict(tags=service_tags()).value is True  # every Storage.eastus prefix is longer than /16
    estate.routes(("exact", "20.60.0.0/24", "None"))  # as long as one endpoint route: the user route wins
    assert estate.verdict(tags=service_tags()).value is None


# ---------------------------------------------------------------- BGP routes from on-premises


def gateway_subnet(estate: Estate) -> None:
    estate.vnet["properties"]["subnets"].append({
        "name": "GatewaySubnet", "id": f"{VNET_ID}/subnets/GatewaySubnet",
        "properties": {"addressPrefix": "172.20.255.0/27", "ipConfigurations": [
            {"id": f"{BASE}/virtualNetworkGateways/vpn-gw/ipConfigurations/default"}]}})


def test_gateway_with_bgp_propagation_is_stated_and_can_be_made_unknown(estate: Estate) -> None:
    gateway_subnet(estate)
    verdict = estate.verdict()
    assert verdict.value is True
    assert ("VNet 'rg1-vnet' has a virtual network gateway (its GatewaySubnet is in use) and BGP route propagation "
            "is on, so an on-premises default route that no snapshot shows would replace the system route: "
            "assumed absent (assumeNoOnPremisesDefaultRoute)") in text(verdict)
    assert verdict.assumptions == (
        "Storage:443/Tcp: no route table on subnet 'rg1-vnet/default' (system routes); VNet 'rg1-vnet' has a virtual "
        "network gateway (its GatewaySubnet is in use) and BGP route propagation is on, so an on-premises default "
        "route that no snapshot shows would replace the system route: assumed absent (assumeNoOnPremisesDefaultRoute)",)
    strict = estate.verdict(assume_no_bgp=False)
    assert strict.value is None
    assert "an on-premises default route that no snapshot shows would replace the system route" in text(strict)



def route_server_subnet(estate: Estate, in_use: bool = True) -> None:
    """An Azure Route Server as Resource Graph shows it in the VNet row: its RouteServerSubnet, whose
    ipConfigurations name the route server (a virtualHubs resource)."""
    configs = [{"id": f"{BASE}/virtualHubs/rs-hub/ipConfigurations/ipconfig1"}] if in_use else []
    estate.vnet["properties"]["subnets"].append({
        "name": "RouteServerSubnet", "id": f"{VNET_ID}/subnets/RouteServerSubnet",
        "properties": {"addressPrefix": "172.20.254.0/27", "ipConfigurations": configs}})


def test_a_route_server_is_a_bgp_source_like_a_gateway(estate: Estate) -> None:
    """Route Server programs what appliances advertise to it over BGP (a 0.0.0.0/0 too) into the VNet's subnets."""
    route_server_subnet(estate)
    note = ("VNet 'rg1-vnet' has an Azure Route Server (its RouteServerSubnet is in use) and BGP route propagation is "
            "on, so an on-premises default route that no snapshot shows would replace the system route")
    verdict = estate.verdict()
    assert verdict.value is True
    assert verdict.assumptions == (
        f"Storage:443/Tcp: no route table on subnet 'rg1-vnet/default' (system routes); {note}: "
        "assumed absent (assumeNoOnPremisesDefaultRoute)",)
    strict = estate.verdict(assume_no_bgp=False)
    assert strict.value is None and note in text(strict)


def test_a_route_server_subnet_without_a_route_server_assumes_nothing(estate: Estate) -> None:
    route_server_subnet(estate, in_use=False)
    assert estate.verdict(assume_no_bgp=False).value is True

def test_a_pass_without_a_gateway_assumes_nothing(estate: Estate) -> None:
    verdict = estate.verdict()
    assert verdict.value is True and verdict.evidence
    assert verdict.assumptions == ()


def test_each_nic_names_the_assumption_it_rests_on(estate: Estate) -> None:
    gateway_subnet(estate)
    second = copy.deepcopy(estate.nic)
    second["id"] = second["id"].replace("test-nic", "second-nic").upper()
    estate.rows.append(second)
    verdict = estate.model().outbound([NIC_ID, second["id"]], "eastus", (STORAGE,))
    assert verdict.value is True
    assert [line.split(":", 1)[0] for line in verdict.assumptions] == ["NIC 'test-nic'", "NIC 'SECOND-NIC'"]
    assert all(line.endswith("assumed absent (assumeNoOnPremisesDefaultRoute)") for line in verdict.assumptions)


def test_route_table_that_disables_bgp_propagation_needs_no_assumption(estate: Estate) -> None:
    gateway_subnet(estate)
    estate.routes(("unrelated", "10.9.0.0/16", "None"))
    propagating = estate.verdict(assume_no_bgp=False)
    assert propagating.value is None
    table = next(r for r in estate.rows if r["name"] == "testrt")
    table["properties"]["disableBgpRoutePropagation"] = True
    verdict = estate.verdict(assume_no_bgp=False)
    assert verdict.value is True
    assert "BGP" not in text(verdict)


def test_gateway_row_and_remote_gateway_peering_are_recognised(estate: Estate) -> None:
    estate.rows.append({
        "id": f"{BASE}/virtualNetworkGateways/er-gw", "name": "er-gw",
        "type": "Microsoft.Network/virtualNetworkGateways",
        "properties": {"ipConfigurations": [{"properties": {"subnet": {"id": f"{VNET_ID}/subnets/GatewaySubnet"}}}]}})
    assert "VNet 'rg1-vnet' has virtual network gateway 'er-gw'" in text(estate.verdict(assume_no_bgp=False))
    estate.rows.pop()
    estate.vnet["properties"]["virtualNetworkPeerings"] = [{"name": "to-hub", "properties": {
        "useRemoteGateways": True, "remoteVirtualNetwork": {"id": f"{BASE}/virtualNetworks/hub"}}}]
    assert "VNet 'rg1-vnet' uses the gateway of peered VNet 'hub'" in text(estate.verdict(assume_no_bgp=False))
    assert estate.verdict(assume_no_bgp=False).value is None


def test_endpoint_traffic_is_not_exposed_to_an_on_premises_default_route(estate: Estate) -> None:
    gateway_subnet(estate)
    estate.subnet["serviceEndpoints"] = ENDPOINT
    assert estate.verdict(assume_no_bgp=False).value is True


# ---------------------------------------------------------------- NSG destinations


@pytest.mark.parametrize("dest", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                  "169.254.0.0/16", "127.0.0.0/8", "VirtualNetwork", "AzureLoadBalancer"])
def test_allowing_private_space_then_denying_internet_fails_naming_the_deny(estate: Estate, dest: str) -> None:
    deny_internet(estate, rule("AllowPrivate", 100, "Allow", dest=dest))
    verdict = estate.verdict()
    assert verdict.value is False
    assert text(verdict) == "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'DenyInternet' (priority 4000, Deny)"


def test_allowing_an_application_security_group_then_denying_internet_fails(estate: Estate) -> None:
    allow = rule("AllowAsg", 100, "Allow")
    del allow["properties"]["destinationAddressPrefix"]
    allow["properties"]["destinationApplicationSecurityGroups"] = [{"id": f"{BASE}/applicationSecurityGroups/web"}]
    deny_internet(estate, allow)
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyInternet' (priority 4000, Deny)" in text(verdict)


def test_public_cidrs_are_decided_with_the_service_tag_file_region_aware(estate: Estate) -> None:
    east = ["20.0.0.0/8", "52.239.0.0/16"]  # every Storage.eastus prefix, not every Storage.westeurope one
    deny_internet(estate, rule("AllowStorageRanges", 100, "Allow", dest=east, port="443"))
    assert estate.verdict().value is None
    assert estate.verdict(tags=service_tags()).value is True
    west = estate.verdict(region="westeurope", tags=service_tags())
    assert west.value is None  # 40.113.27.176/28 and 51.105.64.16/28 are left to the deny rule
    assert "51.105.64.16–51.105.64.31" in text(west) or "40.113.27.176–40.113.27.191" in text(west)


def test_other_service_tags_are_decided_from_the_file(estate: Estate) -> None:
    estate.nic_rules(rule("DenySql", 100, "Deny", dest="Sql.WestEurope"), rule("DenyAad", 110, "Deny",
                                                                                 dest="AzureActiveDirectory"))
    assert estate.verdict(region="westeurope").value is None
    assert estate.verdict(region="westeurope", tags=service_tags()).value is True
    assert estate.verdict(AAD, region="westeurope", tags=service_tags()).value is False


def test_storage_of_another_region_is_not_a_match_with_or_without_the_file(estate: Estate) -> None:
    deny_internet(estate, rule("AllowWest", 100, "Allow", dest="Storage.WestEurope"))
    for tags in (None, service_tags()):
        verdict = estate.verdict(tags=tags)
        assert verdict.value is False
        assert "rule 'DenyInternet'" in text(verdict)


def test_region_missing_from_the_file_falls_back_to_the_global_tag(estate: Estate) -> None:
    estate.routes(("a", "20.0.0.0/8", "None"), ("b", "52.0.0.0/8", "None"), ("c", "40.0.0.0/8", "None"),
                  ("d", "51.0.0.0/8", "None"))
    verdict = estate.verdict(region="japaneast", tags=service_tags())
    assert verdict.value is False  # every prefix of the global Storage tag is dropped
    estate.routes(("a", "20.0.0.0/8", "None"))
    assert "the 78 IPv4 prefixes of Storage in the service-tag file, which does not list Storage.japaneast" in text(
        estate.verdict(region="japaneast", tags=service_tags()))


# ---------------------------------------------------------------- case of types and ids


def test_mixed_case_types_join_like_resource_graph_lowercase(estate: Estate) -> None:
    estate.vnet["type"] = "Microsoft.Network/virtualNetworks"
    estate.subnet["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    verdict = estate.verdict()
    assert verdict.value is False
    assert "subnet 'rg1-vnet/default' has defaultOutboundAccess=false" in text(verdict)


def test_standalone_subnet_row_with_mixed_case_type(estate: Estate) -> None:
    estate.routes(("forced", "0.0.0.0/0", "None"))
    subnet = estate.vnet["properties"].pop("subnets")[0]
    subnet["properties"]["serviceEndpoints"] = ENDPOINT
    estate.rows.append(subnet | {"type": "Microsoft.Network/virtualNetworks/subnets"})
    model = NetworkModel({r["id"].upper(): r for r in estate.rows} | {r["id"].lower(): r for r in estate.rows})
    assert model.outbound([NIC_ID], "eastus", [STORAGE]).value is True


def test_nsg_with_plural_fields_and_default_rules_in_mixed_case(estate: Estate) -> None:
    row = nsg(f"{BASE}/networkSecurityGroups/nsg",
              rule("AllowPriv", 100, "allow", dest=["10.0.0.0/8", "VirtualNetwork"], port=["443", "8443"]),
              rule("DenyNet", 200, "DENY", dest="internet", protocol="TCP"))
    row["type"] = "Microsoft.Network/networkSecurityGroups"
    estate.replace(row)
    verdict = estate.verdict()
    assert verdict.value is False
    assert "rule 'DenyNet' (priority 200, Deny)" in text(verdict)


def test_unreadable_peerings_may_hide_a_gateway(estate: Estate) -> None:
    estate.vnet["properties"]["virtualNetworkPeerings"] = 7
    assert estate.verdict().value is True
    assert "virtualNetworkPeerings that is not an array" in estate.verdict().assumptions[0]
    strict = estate.verdict(assume_no_bgp=False)
    assert strict.value is None and "whether it uses a peered VNet's gateway is unknown" in text(strict)
