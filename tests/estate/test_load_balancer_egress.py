"""A NIC in a load balancer's backend pool, as Azure documents its outbound access.

A Standard load balancer's pool takes default outbound access away ("secure by default"); the NIC then
reaches Storage only through a NAT gateway, its own public IP, or the load balancer's public frontend by an
outbound rule or a load-balancing rule with outbound SNAT, for that rule's protocol. An internal Standard load
balancer gives none: "when only an internal Load Balancer serves a VM, outbound connections over default SNAT
aren't available". A Basic load balancer leaves default outbound access as it was.
"""

from __future__ import annotations

import pytest

from network_helpers import BASE, NAT_ID, Estate, load, text

LB_ID = f"{BASE}/loadBalancers/lb1"
POOL = f"{LB_ID}/backendAddressPools/pool"
LOST = "the NIC is in a backend pool of load balancer 'lb1' (Standard), so it has no default outbound access"
BLOCKED = ("blocked: the NIC is in a backend pool of load balancer 'lb1' (Standard), which gives it no outbound "
           "access for TCP and no NAT gateway, no public IP on the NIC and no egress route through a device")


@pytest.fixture
def estate() -> Estate:
    """The example NIC without a public IP, in the fixture load balancer's pool (pool id spelled in lower case,
    as some tools write it)."""
    estate = Estate()
    del estate.ipconfig["publicIPAddress"]
    estate.ipconfig["loadBalancerBackendAddressPools"] = [{"id": POOL.lower()}]
    estate.rows += [load("loadbalancer.json"), load("publicip.json")]
    return estate


def lb(estate: Estate) -> dict:
    return next(r for r in estate.rows if r["type"] == "microsoft.network/loadbalancers")


def test_an_outbound_rule_on_a_public_frontend_gives_egress(estate: Estate) -> None:
    verdict = estate.verdict()
    assert verdict.value is True
    assert f"{LOST}; egress via load balancer 'lb1' outbound rule 'out-all'" in text(verdict)


def test_without_an_outbound_rule_a_standard_pool_blocks(estate: Estate) -> None:
    lb(estate)["properties"]["outboundRules"] = []  # the load-balancing rule has disableOutboundSnat true
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (False, f"Storage:443/Tcp: {BLOCKED}")


def test_a_load_balancing_rule_with_outbound_snat_gives_egress_for_its_protocol(estate: Estate) -> None:
    props = lb(estate)["properties"]
    props["outboundRules"] = []
    rule = props["loadBalancingRules"][0]["properties"]
    rule["disableOutboundSnat"] = False
    assert estate.verdict().value is True
    assert "egress via load balancer 'lb1' load-balancing rule 'http' (outbound SNAT)" in text(estate.verdict())
    del rule["disableOutboundSnat"]  # absent means false
    assert estate.verdict().value is True
    rule["protocol"] = "Udp"  # SNAT for UDP says nothing of TCP 443
    assert estate.verdict().value is False


def test_an_outbound_rule_for_udp_only_or_on_an_internal_frontend_gives_nothing(estate: Estate) -> None:
    rule = lb(estate)["properties"]["outboundRules"][0]["properties"]
    rule["protocol"] = "Udp"
    assert estate.verdict().value is False
    rule["protocol"] = "Tcp"
    assert estate.verdict().value is True
    rule["frontendIPConfigurations"] = [{"id": f"{LB_ID}/frontendIPConfigurations/fe-internal"}]
    assert estate.verdict().value is False


def test_an_internal_standard_load_balancer_takes_default_outbound_access_away(estate: Estate) -> None:
    """The false pass this fixes: the pool was read as harmless unless the subnet disabled default outbound."""
    del lb(estate)["properties"]["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]
    assert estate.subnet.get("defaultOutboundAccess") is None
    verdict = estate.verdict()
    assert verdict.value is False and BLOCKED in text(verdict)


def test_a_nat_gateway_or_a_public_ip_still_gives_egress(estate: Estate) -> None:
    lb(estate)["properties"]["outboundRules"] = []
    estate.subnet["natGateway"] = {"id": NAT_ID}
    assert f"{LOST}; egress via NAT gateway {NAT_ID}" in text(estate.verdict())
    del estate.subnet["natGateway"]
    estate.ipconfig["publicIPAddress"] = {"id": f"{BASE}/publicIPAddresses/test-ip"}
    assert f"{LOST}; egress via the NIC's public IP" in text(estate.verdict())


def test_a_private_subnet_egresses_through_the_load_balancer(estate: Estate) -> None:
    estate.subnet["defaultOutboundAccess"] = False
    verdict = estate.verdict()
    assert verdict.value is True
    assert ("subnet 'rg1-vnet/default' has no default outbound access; egress via load balancer 'lb1' outbound "
            "rule 'out-all'") in text(verdict)


def test_a_basic_load_balancer_leaves_default_outbound_access(estate: Estate) -> None:
    row = lb(estate)
    row["sku"] = {"name": "Basic", "tier": "Regional"}
    row["properties"]["outboundRules"] = []
    assert estate.verdict().value is True
    estate.subnet["defaultOutboundAccess"] = False  # ... which a private subnet does not have
    assert estate.verdict().value is False


@pytest.mark.parametrize(("change", "why"), [
    (lambda rows: rows.remove(lb_row(rows)),
     f"whether the NIC has default outbound access is unknown: load balancer {LB_ID.lower()} of the NIC's backend "
     "pool is referenced but not in the collected rows"),
    (lambda rows: lb_row(rows).update(sku={"name": "Gateway", "tier": "Regional"}),
     "whether the NIC has default outbound access is unknown: load balancer 'lb1' has SKU 'Gateway', whose "
     "outbound access is not assessed"),
    (lambda rows: lb_row(rows).update(sku=None),
     "whether the NIC has default outbound access is unknown: load balancer 'lb1' has SKU '?', whose outbound "
     "access is not assessed"),
])
def test_a_load_balancer_not_collected_or_of_another_sku_is_unknown(estate: Estate, change, why: str) -> None:
    change(estate.rows)
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (None, f"Storage:443/Tcp: {why}")


def lb_row(rows: list[dict]) -> dict:
    return next(r for r in rows if r["type"] == "microsoft.network/loadbalancers")


def test_pools_of_two_load_balancers_egress_through_either(estate: Estate) -> None:
    other = load("loadbalancer.json")
    other["id"], other["name"] = f"{BASE}/loadBalancers/lb2", "lb2"
    other["properties"]["outboundRules"] = []
    estate.rows.append(other)
    estate.ipconfig["loadBalancerBackendAddressPools"].insert(0, {"id": f"{other['id']}/backendAddressPools/pool"})
    lb(estate)["properties"]["outboundRules"][0]["properties"]["backendAddressPool"]["id"] = POOL.upper()
    verdict = estate.verdict()
    assert verdict.value is True
    assert ("the NIC is in a backend pool of load balancer 'lb2' (Standard), load balancer 'lb1' (Standard), so it "
            "has no default outbound access; egress via load balancer 'lb1' outbound rule 'out-all'") in text(verdict)



def test_a_frontend_egresses_to_storage_only_with_an_ipv4_address(estate: Estate) -> None:
    pip = next(r for r in estate.rows if r["type"] == "microsoft.network/publicipaddresses")
    pip["properties"]["publicIPAddressVersion"] = "IPv6"
    blocked = estate.verdict()
    assert blocked.value is False and BLOCKED in text(blocked)
    del pip["properties"]["publicIPAddressVersion"]  # the API's default is IPv4
    assert estate.verdict().value is True
    estate.rows.remove(pip)
    unknown = estate.verdict()
    assert (unknown.value, text(unknown)) == (None, (
        f"Storage:443/Tcp: {LOST}: load balancer 'lb1': public IP {BASE}/publicIPAddresses/lb1-pip of frontend "
        "'fe-public' is not in the collected rows, so whether it gives IPv4 egress is unknown"))


def test_a_frontend_on_a_public_ip_prefix_reads_the_prefix(estate: Estate) -> None:
    front = lb(estate)["properties"]["frontendIPConfigurations"][0]["properties"]
    prefix_id = f"{BASE}/publicIPPrefixes/lb1-prefix"
    front["publicIPPrefix"] = {"id": prefix_id}
    del front["publicIPAddress"]
    assert estate.verdict().value is None  # the prefix row was not collected
    estate.rows.append({"id": prefix_id, "name": "lb1-prefix", "type": "microsoft.network/publicipprefixes",
                        "properties": {"prefixLength": 31, "publicIPAddressVersion": "IPv4",
                                       "ipPrefix": "20.1.4.0/31"}})
    assert estate.verdict().value is True


@pytest.mark.parametrize("fields", [("backendAddressPool",), ("backendAddressPools",), ()])
def test_a_load_balancing_rule_names_its_pool_in_either_field(estate: Estate, fields: tuple[str, ...]) -> None:
    """Older API versions name a rule's pool in `backendAddressPool`, newer ones in `backendAddressPools` too;
    a rule naming neither (or another pool) gives this pool nothing."""
    props = lb(estate)["properties"]
    props["outboundRules"] = []
    rule = props["loadBalancingRules"][0]
    rule["properties"]["disableOutboundSnat"] = False
    del rule["name"]  # a rule without a name is still a rule; the evidence says so
    pool = rule["properties"].pop("backendAddressPool")
    rule["properties"].pop("backendAddressPools")
    if "backendAddressPool" in fields:
        rule["properties"]["backendAddressPool"] = pool
    if "backendAddressPools" in fields:
        rule["properties"]["backendAddressPools"] = [{"id": f"{LB_ID}/backendAddressPools/other"}, pool]
    verdict = estate.verdict()
    if fields:
        assert verdict.value is True
        assert "egress via load balancer 'lb1' load-balancing rule '?' (outbound SNAT)" in text(verdict)
    else:
        assert verdict.value is False


def test_nameless_rules_and_frontends_are_named_by_a_question_mark(estate: Estate) -> None:
    props = lb(estate)["properties"]
    del props["outboundRules"][0]["name"]
    assert "egress via load balancer 'lb1' outbound rule '?'" in text(estate.verdict())
    del props["frontendIPConfigurations"][0]["name"]
    estate.rows = [r for r in estate.rows if r["type"] != "microsoft.network/publicipaddresses"]
    assert "of frontend '?' is not in the collected rows" in text(estate.verdict())



def test_a_load_balancer_not_collected_beside_a_nat_gateway_says_default_access_may_be_gone(estate: Estate) -> None:
    estate.rows = [r for r in estate.rows if r["type"] != "microsoft.network/loadbalancers"]
    estate.subnet["natGateway"] = {"id": NAT_ID}
    assert f"the NIC may have no default outbound access; egress via NAT gateway {NAT_ID}" in text(estate.verdict())
    del estate.subnet["natGateway"]
    estate.ipconfig["publicIPAddress"] = {"id": f"{BASE}/publicIPAddresses/test-ip"}
    assert "the NIC may have no default outbound access; egress via the NIC's public IP" in text(estate.verdict())



@pytest.mark.parametrize(("pools", "why"), [
    ("pool", "the NIC's loadBalancerBackendAddressPools is not an array"),
    ([{"id": POOL}, {"name": "pool"}], "a backend pool the NIC names has no id"),
    ([5], "a backend pool the NIC names has no id"),
    ([{"id": LB_ID}], f"load balancer {LB_ID} of the NIC's backend pool is referenced but not in the collected rows"),
])
def test_pool_references_that_name_no_pool_are_unknown(estate: Estate, pools: object, why: str) -> None:
    """A reference that names no pool (no id, or a load balancer's own id) cannot tell what the pool does."""
    lb(estate)["properties"]["outboundRules"] = []
    estate.ipconfig["loadBalancerBackendAddressPools"] = pools
    verdict = estate.verdict()
    assert verdict.value is None and why in text(verdict)
    estate.ipconfig["loadBalancerBackendAddressPools"] = []
    assert estate.verdict().value is True  # no pool: default outbound access


def test_a_frontend_without_an_id_is_named_by_no_rule(estate: Estate) -> None:
    props = lb(estate)["properties"]
    nameless = {"name": "fe-noid", "properties": {"publicIPAddress": {"id": f"{BASE}/publicIPAddresses/lb1-pip"}}}
    props["frontendIPConfigurations"].insert(0, nameless)  # passed over: the frontends after it still count
    assert estate.verdict().value is True
    del props["frontendIPConfigurations"][1]["id"]
    del props["outboundRules"][0]["properties"]["frontendIPConfigurations"][0]["id"]
    verdict = estate.verdict()
    assert verdict.value is False and BLOCKED in text(verdict)


def test_every_rule_that_egresses_is_named(estate: Estate) -> None:
    lb(estate)["properties"]["loadBalancingRules"][0]["properties"]["disableOutboundSnat"] = False
    assert ("egress via load balancer 'lb1' outbound rule 'out-all' and load-balancing rule 'http' (outbound SNAT)"
            in text(estate.verdict()))


def test_a_basic_pool_egresses_beside_a_pool_whose_load_balancer_was_not_collected(estate: Estate) -> None:
    row = lb(estate)
    row["sku"] = {"name": "Basic", "tier": "Regional"}
    row["properties"]["outboundRules"] = []
    row["properties"]["loadBalancingRules"][0]["properties"]["disableOutboundSnat"] = False
    gone = f"{BASE}/loadBalancers/gone/backendAddressPools/p"
    estate.ipconfig["loadBalancerBackendAddressPools"].append({"id": gone})
    verdict = estate.verdict()
    assert verdict.value is True
    assert ("the NIC may have no default outbound access; egress via load balancer 'lb1' load-balancing rule 'http' "
            "(outbound SNAT)") in text(verdict)


def _second_frontend(estate: Estate, pip_collected: bool) -> str:
    """A second public frontend whose public IP is collected (IPv4) or not; its id."""
    fid = f"{LB_ID}/frontendIPConfigurations/fe-two"
    pip_id = f"{BASE}/publicIPAddresses/lb1-pip-two"
    lb(estate)["properties"]["frontendIPConfigurations"].append(
        {"name": "fe-two", "id": fid, "properties": {"publicIPAddress": {"id": pip_id}}})
    if pip_collected:
        estate.rows.append({"id": pip_id, "name": "lb1-pip-two", "type": "microsoft.network/publicipaddresses",
                            "properties": {"publicIPAddressVersion": "IPv4", "ipAddress": "20.1.4.9"}})
    return fid


def _outbound_rule(name: str, protocol: object, frontend: str) -> dict:
    return {"name": name, "properties": {"protocol": protocol, "backendAddressPool": {"id": POOL},
                                         "frontendIPConfigurations": [{"id": frontend}]}}


def test_a_doubt_is_for_the_protocols_of_its_rule(estate: Estate) -> None:
    """Egress found for UDP does not settle TCP when a TCP rule's frontend cannot be read (it was a fail), and a
    UDP rule whose frontend cannot be read leaves TCP blocked (it was unknown)."""
    props = lb(estate)["properties"]
    unread = _second_frontend(estate, pip_collected=False)
    public = props["frontendIPConfigurations"][0]["id"]
    props["outboundRules"] = [_outbound_rule("udp-out", "Udp", public), _outbound_rule("tcp-out", "Tcp", unread)]
    unknown = estate.verdict()
    assert (unknown.value, text(unknown)) == (None, (
        f"Storage:443/Tcp: {LOST}: load balancer 'lb1': public IP {BASE}/publicIPAddresses/lb1-pip-two of frontend "
        "'fe-two' is not in the collected rows, so whether it gives IPv4 egress is unknown"))
    props["outboundRules"] = [_outbound_rule("udp-out", "Udp", unread)]
    blocked = estate.verdict()
    assert (blocked.value, text(blocked)) == (False, f"Storage:443/Tcp: {BLOCKED}")


@pytest.mark.parametrize(("protocol", "said"), [(None, "None"), ("Icmp", "'Icmp'"), (["Tcp"], "['Tcp']")])
def test_a_rule_whose_protocol_cannot_be_read_may_give_egress(estate: Estate, protocol: object, said: str) -> None:
    props = lb(estate)["properties"]
    props["outboundRules"][0]["properties"]["protocol"] = protocol
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (None, (
        f"Storage:443/Tcp: {LOST}: load balancer 'lb1': outbound rule 'out-all' has protocol {said}, not Tcp, Udp "
        "or All"))
    props["outboundRules"].append(_outbound_rule("tcp-out", "Tcp", props["frontendIPConfigurations"][0]["id"]))
    assert estate.verdict().value is True  # another rule gives TCP egress for sure


@pytest.mark.parametrize("flag", ["true", 1, 0, None, False])
def test_a_snat_setting_that_is_not_a_boolean_leaves_the_rule_unknown(estate: Estate, flag: object) -> None:
    props = lb(estate)["properties"]
    props["outboundRules"] = []
    props["loadBalancingRules"][0]["properties"]["disableOutboundSnat"] = flag
    verdict = estate.verdict()
    if flag is None or flag is False:
        assert verdict.value is True
    else:
        assert (verdict.value, text(verdict)) == (None, (
            f"Storage:443/Tcp: {LOST}: load balancer 'lb1': load-balancing rule 'http' (outbound SNAT) has "
            f"disableOutboundSnat {flag!r}, not true or false"))
