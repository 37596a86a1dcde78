"""The `outboundAllowed` operand (estate/network_facts.py): every malformed operand is a load error that
says what is expected, and each option changes the verdict the way its name says."""

from __future__ import annotations

from typing import Any

import pytest

from backup_preflight.estate.network_facts import NetworkFacts
from backup_preflight.policy.conditions import ConditionError
from network_helpers import NIC_ID, Estate, rule

from policy_helpers import compile_json, ev

DESTINATIONS = "'destinations' must be a non-empty array of service tags or CIDRs"
PORTS = "'ports' must be a non-empty array of port numbers"


@pytest.mark.parametrize(("operand", "reason"), [
    (["Storage"], "expects an object with 'destinations' and 'ports'"),
    ({"ports": [443]}, DESTINATIONS),
    ({"destinations": "Storage", "ports": [443]}, DESTINATIONS),
    ({"destinations": ["Storage", ""], "ports": [443]}, DESTINATIONS),
    ({"destinations": ["Storage", 5], "ports": [443]}, DESTINATIONS),
    ({"destinations": ["Storage"]}, PORTS),
    ({"destinations": ["Storage"], "ports": []}, PORTS),
    ({"destinations": ["Storage"], "ports": 443}, PORTS),
    ({"destinations": ["Storage"], "ports": [0]}, PORTS),
    ({"destinations": ["Storage"], "ports": [65536]}, PORTS),
    ({"destinations": ["Storage"], "ports": [True]}, PORTS),
    ({"destinations": ["Storage"], "ports": ["443"]}, PORTS),
    ({"destinations": ["Storage"], "ports": [443], "protocol": "tcp"}, "'protocol' must be Tcp or Udp"),
    ({"destinations": ["Storage"], "ports": [443], "protocol": "Icmp"}, "'protocol' must be Tcp or Udp"),
    ({"destinations": ["Storage"], "ports": [443], "egressDeviceDeclared": "yes"},
     "'egressDeviceDeclared' must be true or false"),
    ({"destinations": ["Storage"], "ports": [443], "assumeNoOnPremisesDefaultRoute": 1},
     "'assumeNoOnPremisesDefaultRoute' must be true or false"),
])
def test_a_malformed_operand_is_a_load_error(operand: Any, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_json({"field": "network", "outboundAllowed": operand})
    assert info.value.reason == f"outboundAllowed {reason}"


def allowed(estate: Estate, **options: Any) -> bool | None:
    """The operator's answer for the example NIC in eastus, through a compiled condition."""
    facts = {"network": NetworkFacts(estate.model(), (NIC_ID,), "East US")}
    return ev({"field": "network", "outboundAllowed": {"destinations": ["Storage"], "ports": [1, 443, 65535],
                                                       **options}}, facts)


def test_every_port_and_the_protocol_are_checked() -> None:
    estate = Estate()
    estate.nic_rules(rule("DenyTcpHigh", 100, "Deny", port="65535", protocol="Tcp"))
    assert allowed(estate) is False
    assert allowed(estate, protocol="Udp") is True
    assert allowed(estate, protocol="Tcp") is False


def test_the_egress_device_option() -> None:
    estate = Estate()
    estate.routes(("to-firewall", "0.0.0.0/0", "VirtualAppliance"))
    assert allowed(estate) is None
    assert allowed(estate, egressDeviceDeclared=False) is None
    assert allowed(estate, egressDeviceDeclared=True) is True


def test_the_on_premises_default_route_option() -> None:
    estate = Estate()
    estate.vnet["properties"]["subnets"].append(
        {"id": estate.vnet["id"] + "/subnets/GatewaySubnet", "name": "GatewaySubnet",
         "properties": {"addressPrefix": "10.0.255.0/27", "ipConfigurations": [{"id": "gw-ipconfig"}]}})
    assert allowed(estate) is True
    assert allowed(estate, assumeNoOnPremisesDefaultRoute=True) is True
    assert allowed(estate, assumeNoOnPremisesDefaultRoute=False) is None


def test_a_vm_without_nics_is_unknown() -> None:
    assert ev({"field": "network", "outboundAllowed": {"destinations": ["Storage"], "ports": [443]}},
              {"network": NetworkFacts(Estate().model(), (), "eastus")}) is None
