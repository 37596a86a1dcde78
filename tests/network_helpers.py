"""ARG-shaped network rows for the network tests: the REST example NIC, VNet, NSG and route table, adjustable."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from backup_preflight.estate.network import Endpoint, NetworkModel, Verdict
from backup_preflight.service_tags import ServiceTags
from backup_preflight.service_tags import load as load_service_tags

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "network"
BASE = "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network"
NIC_ID = f"{BASE}/networkInterfaces/test-nic"
NIC_NSG_ID = f"{BASE}/networkSecurityGroups/nsg"
SUBNET_NSG_ID = f"{BASE}/networkSecurityGroups/subnet-nsg"
RT_ID = f"{BASE}/routeTables/testrt"
NAT_ID = f"{BASE}/natGateways/nat1"
SUBNET_ID = f"{BASE}/virtualNetworks/rg1-vnet/subnets/default"
STORAGE = Endpoint("Storage", 443)
NOFILE = "the public IPv4 addresses Storage.eastus may use (its prefixes are known only from a service-tag file, " \
    "--service-tags)"
BACKUP = Endpoint("AzureBackup", 443)


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(name: str) -> dict:
    """A fresh copy of a fixture row, safe to mutate."""
    return json.loads(_fixture_text(name))


def rule(
    name: str,
    priority: int,
    access: str,
    *,
    dest: str | list[str] = "*",
    port: str | list[str] = "*",
    protocol: str = "*",
    source: str = "*",
    direction: str = "Outbound",
) -> dict:
    """A security rule in the API shape; lists go to the plural fields with an empty singular."""
    props: dict = {
        "provisioningState": "Succeeded",
        "protocol": protocol,
        "sourcePortRange": "*",
        "sourceAddressPrefix": source,
        "access": access,
        "priority": priority,
        "direction": direction,
    }
    if isinstance(dest, list):
        props |= {"destinationAddressPrefix": "", "destinationAddressPrefixes": dest}
    else:
        props["destinationAddressPrefix"] = dest
    if isinstance(port, list):
        props |= {"destinationPortRange": "", "destinationPortRanges": port}
    else:
        props["destinationPortRange"] = port
    return {"name": name, "id": f"{BASE}/networkSecurityGroups/x/securityRules/{name}", "properties": props}


def nsg(nsg_id: str, *rules: dict, defaults: bool = True) -> dict:
    """The example NSG (inbound rule1 + all default rules) renamed, with extra custom rules."""
    row = load("nsg.json")
    row["id"], row["name"] = nsg_id, nsg_id.rsplit("/", 1)[-1]
    row["properties"]["securityRules"].extend(rules)
    if not defaults:
        del row["properties"]["defaultSecurityRules"]
    return row


class Estate:
    """The example NIC in subnet rg1-vnet/default with NSG 'nsg' (default rules only) and a public IP."""

    def __init__(self) -> None:
        self.nic = load("nic.json")
        self.vnet = load("vnet.json")
        self.rows: list[dict] = [self.nic, self.vnet, nsg(NIC_NSG_ID)]

    @property
    def subnet(self) -> dict:
        return self.vnet["properties"]["subnets"][0]["properties"]

    @property
    def ipconfig(self) -> dict:
        return self.nic["properties"]["ipConfigurations"][0]["properties"]

    def replace(self, row: dict) -> None:
        """Put `row` in place of any row with the same id (compared case-insensitively)."""
        self.rows = [r for r in self.rows if r["id"].lower() != row["id"].lower()] + [row]

    def nic_rules(self, *rules: dict) -> None:
        self.replace(nsg(NIC_NSG_ID, *rules))

    def subnet_rules(self, *rules: dict) -> None:
        self.subnet["networkSecurityGroup"] = {"id": SUBNET_NSG_ID}
        self.replace(nsg(SUBNET_NSG_ID, *rules))

    def routes(self, *routes: tuple[str, str, str]) -> None:
        """Attach the example route table with (name, addressPrefix, nextHopType) routes."""
        table = load("routetable.json")
        table["properties"]["routes"] = [
            {"name": name, "properties": {"addressPrefix": prefix, "nextHopType": hop}
             | ({"nextHopIpAddress": "172.20.0.4"} if hop == "VirtualAppliance" else {})}
            for name, prefix, hop in routes
        ]
        self.subnet["routeTable"] = {"id": RT_ID}
        self.replace(table)

    def model(self, tags: ServiceTags | None = None) -> NetworkModel:
        return NetworkModel({r["id"].lower(): r for r in self.rows}, tags)

    def verdict(self, *endpoints: Endpoint, region: str = "eastus", declared: bool = False,
                tags: ServiceTags | None = None, assume_no_bgp: bool = True) -> Verdict:
        return self.model(tags).outbound(
            [NIC_ID], region, endpoints or (STORAGE,), egress_device_declared=declared,
            assume_no_bgp_default=assume_no_bgp,
        )


@cache
def service_tags() -> ServiceTags:
    """The pinned service-tag excerpt (fixtures/network/service-tags.json), read by the input layer."""
    return load_service_tags(FIXTURES / "service-tags.json")


def text(verdict: Verdict) -> str:
    return "\n".join(verdict.evidence)


