"""NSG rule fields in every shape ARM rows carry them: priority as text, access and ports in any case and
spacing, missing direction/protocol/port/destination/source, source lists, tags and ASGs, IPv6, partial
default rule lists. Each case asserts the verdict and the sentence that names why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backup_preflight.estate.network import Endpoint, NetworkModel
from network_helpers import NIC_ID, NIC_NSG_ID, STORAGE, Estate, nsg, rule, text

DENIED = "Storage:443/Tcp: blocked by NSG 'nsg' on the NIC rule 'R' (priority 100, Deny)"
ALLOWED = "rule 'AllowInternetOutBound' (priority 65001, Allow, default rule)"
UNUSABLE = "Storage:443/Tcp: NSG 'nsg' on the NIC cannot be assessed: rule 'R' has no usable priority/access"


def may(why: str) -> str:
    return (f"Storage:443/Tcp: NSG 'nsg' on the NIC: rule 'R' (priority 100, Deny) may match ({why}), so rule "
            f"'AllowInternetOutBound' (priority 65001, Allow, default rule) cannot be proven to decide")


@pytest.mark.parametrize(("changes", "value", "evidence"), [
    ({"priority": "100"}, False, DENIED),
    ({"priority": "abc"}, None, UNUSABLE),
    ({"priority": True}, None, UNUSABLE),
    ({"priority": None}, None, UNUSABLE),
    ({"access": "DENY"}, False, DENIED),
    ({"access": "Block"}, None, UNUSABLE),
    ({"access": None}, None, UNUSABLE),
    ({"direction": None}, None, may("the rule has no direction")),
    ({"direction": "OUTBOUND"}, False, DENIED),
    ({"protocol": None}, None, may("the rule has no protocol")),
    ({"protocol": "Any"}, False, DENIED),
    ({"protocol": "TCP"}, False, DENIED),
    ({"destinationPortRange": None}, None, may("the rule has no destination port")),
    ({"destinationPortRange": "https"}, None, may("destination port 'https' cannot be parsed")),
    ({"destinationPortRange": "https", "destinationPortRanges": ["443"]}, False, DENIED),
    ({"destinationPortRange": "https", "destinationPortRanges": ["80"]}, None,
     may("destination port 'https' cannot be parsed")),
    ({"destinationPortRange": " 440 - 450 "}, False, DENIED),
    ({"destinationPortRange": "Any"}, False, DENIED),
    ({"destinationPortRange": "443-"}, False, DENIED),
    ({"destinationPortRange": "443-44x"}, None, may("destination port '443-44x' cannot be parsed")),
    ({"destinationPortRange": "444"}, True, ALLOWED),
    ({"destinationPortRange": "1-442"}, True, ALLOWED),
    ({"destinationPortRange": "443-443"}, False, DENIED),
    ({"destinationAddressPrefix": None}, None, may("the rule has no destination")),
    ({"destinationAddressPrefix": "Any"}, False, DENIED),
    ({"destinationAddressPrefix": "Storage.East US"}, False, DENIED),
    ({"destinationAddressPrefix": "Storage.WestUS"}, True, ALLOWED),
    ({"destinationAddressPrefix": "AzureCloud.westus"}, True, ALLOWED),
    ({"destinationAddressPrefix": "AzureCloud.EastUS"}, False, DENIED),
    ({"destinationAddressPrefix": "2001:db8::/32"}, True, ALLOWED),
    ({"destinationAddressPrefix": "AzureLoadBalancer"}, True, ALLOWED),
    ({"destinationAddressPrefix": "20.0.0.0/33"}, None,
     may("destination '20.0.0.0/33' cannot be proven to cover or exclude Storage")),
    ({"destinationAddressPrefix": "", "destinationAddressPrefixes": ["", 5, None, "Storage"]}, False, DENIED),
    ({"destinationPortRange": "", "destinationPortRanges": ["", 443, None, "443"]}, False, DENIED),
    ({"sourceAddressPrefix": None}, None, may("the rule has no source")),
    ({"sourceAddressPrefix": "Any"}, False, DENIED),
    ({"sourceAddressPrefix": "0.0.0.0/0"}, False, DENIED),
    ({"sourceAddressPrefix": "2001:db8::/32"}, True, ALLOWED),
    ({"sourceAddressPrefix": "", "sourceAddressPrefixes": ["10.99.0.0/16", "172.20.0.0/16"]}, False, DENIED),
    ({"sourceAddressPrefix": "", "sourceAddressPrefixes": ["10.99.0.0/16", "192.168.0.0/16"]}, True, ALLOWED),
    ({"sourceAddressPrefix": "AzureLoadBalancer"}, None,
     may("source 'AzureLoadBalancer' cannot be proven to include or exclude this VM")),
    ({"sourceAddressPrefix": None, "sourceApplicationSecurityGroups": [{"id": "asg"}]}, None,
     may("source application security groups cannot be resolved")),
    ({"sourceAddressPrefix": "10.99.0.0/16", "sourceApplicationSecurityGroups": [{"id": "asg"}]}, None,
     may("source application security groups cannot be resolved")),
    ({"sourceAddressPrefix": "172.20.0.0/16", "sourceApplicationSecurityGroups": [{"id": "asg"}]}, False, DENIED),
])
def test_rule_field_shapes(changes: dict[str, Any], value: bool | None, evidence: str) -> None:
    """A Deny rule at priority 100 (Tcp 443 to anything from anything), one field changed; the subnet is
    172.20.2.0/24 (the REST example's)."""
    estate = Estate()
    deny = rule("R", 100, "Deny")
    for key, new in changes.items():
        if new is None:
            deny["properties"].pop(key, None)
        else:
            deny["properties"][key] = new
    estate.nic_rules(deny)
    verdict = estate.verdict()
    assert verdict.value is value
    assert evidence in text(verdict)
    if value is not False:
        assert DENIED not in text(verdict)


def partial_defaults(*custom: dict) -> dict:
    """An NSG row whose defaultSecurityRules list only AllowVnetOutBound (a row cut short): no DenyAll."""
    row = nsg(NIC_NSG_ID, *custom)
    row["properties"]["defaultSecurityRules"] = [
        r for r in row["properties"]["defaultSecurityRules"] if r["name"] == "AllowVnetOutBound"]
    return row


def test_when_no_rule_matches_the_nsg_cannot_decide() -> None:
    estate = Estate()
    estate.replace(partial_defaults())
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (None, "Storage:443/Tcp: NSG 'nsg' on the NIC: no outbound rule matches")
    estate.replace(partial_defaults(rule("SqlDeny", 100, "Deny", dest="Sql")))
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (None, (
        "Storage:443/Tcp: NSG 'nsg' on the NIC: no rule definitely matches; rule 'SqlDeny' (priority 100, Deny) "
        "may match (destination 'Sql' cannot be proven to cover or exclude Storage)"))


TWIN_NIC = NIC_ID.replace("test-nic", "twin-nic")
TWIN_NSG = NIC_NSG_ID.replace("/nsg", "/twin-nsg")


@pytest.mark.parametrize(("field", "first", "second"), [
    ("direction", "Outbound", None), ("priority", 100, 200), ("access", "Deny", "Allow"),
    ("protocol", "Tcp", "Udp"), ("destinationPortRange", "443", "80"),
    ("destinationPortRanges", ["443"], ["80"]), ("destinationAddressPrefix", "*", "VirtualNetwork"),
    ("destinationAddressPrefixes", ["Storage"], ["Sql"]),
    ("destinationApplicationSecurityGroups", None, [{"id": "asg"}]),
    ("sourceAddressPrefix", "*", "10.99.0.0/16"), ("sourceAddressPrefixes", ["*"], ["10.99.0.0/16"]),
    ("sourceApplicationSecurityGroups", None, [{"id": "asg"}]),
])
def test_rules_differing_in_one_field_are_never_judged_alike(field: str, first: Any, second: Any) -> None:
    """Rules are compiled once per distinct content and shared between NSGs: the twin NSG's verdict, decided
    after the first NSG's in one model, is the verdict a model that never saw the first NSG gives."""
    estate = Estate()
    twin_nic = json.loads(json.dumps(estate.nic))
    twin_nic["id"], twin_nic["name"] = TWIN_NIC, "twin-nic"
    twin_nic["properties"]["networkSecurityGroup"]["id"] = TWIN_NSG
    rules = []
    for value in (first, second):
        r = rule("R", 100, "Deny", dest="" if field in ("destinationAddressPrefixes",
                                                        "destinationApplicationSecurityGroups") else "*")
        if field.endswith("Ranges"):
            r["properties"]["destinationPortRange"] = ""
        if field in ("sourceAddressPrefixes", "sourceApplicationSecurityGroups"):
            r["properties"]["sourceAddressPrefix"] = ""
        if value is None:
            r["properties"].pop(field, None)
        else:
            r["properties"][field] = value
        rules.append(r)
    estate.nic_rules(rules[0])
    estate.rows += [twin_nic, nsg(TWIN_NSG, rules[1])]
    shared = estate.model()
    shared.outbound([NIC_ID], "eastus", [STORAGE])
    alone = NetworkModel({r["id"].lower(): r for r in estate.rows if r["id"] not in (NIC_ID, NIC_NSG_ID)})
    twin = shared.outbound([TWIN_NIC], "eastus", [STORAGE])
    assert twin == alone.outbound([TWIN_NIC], "eastus", [STORAGE])


def test_an_allowing_application_security_group_leaves_a_private_address_unknown_saying_why() -> None:
    estate = Estate()
    allow = rule("AllowAsg", 100, "Allow")
    del allow["properties"]["destinationAddressPrefix"]
    allow["properties"]["destinationApplicationSecurityGroups"] = [{"id": "asg"}]
    estate.nic_rules(allow, rule("DenyAll", 200, "Deny"))
    assert estate.verdict().value is False  # Storage's addresses are public: the ASG cannot hold them
    verdict = estate.verdict(Endpoint("10.1.0.4", 443))
    assert (verdict.value, text(verdict)) == (None, (
        "10.1.0.4:443/Tcp: NSG 'nsg' on the NIC: rule 'AllowAsg' (priority 100, Allow) may match (destination "
        "application security groups cannot be resolved), so rule 'DenyAll' (priority 200, Deny) cannot be proven "
        "to decide"))
