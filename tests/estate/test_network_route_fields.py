"""Route tables and service endpoints in every shape ARM rows carry them: a row without properties,
routes that are not an array or lack a prefix or name, next hop types in any case or unknown, Storage
endpoint entries with and without locations. Each case asserts the verdict and the sentence that names why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backup_preflight.estate.network import Endpoint
from network_helpers import RT_ID, Estate, service_tags, text

TUNNEL = "blocked by route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop None): traffic is dropped"
ENDPOINT = "routed through the Microsoft.Storage service endpoint of subnet 'rg1-vnet/default'"


def tunnel_table(change: Callable[[dict[str, Any]], object]) -> Estate:
    """The subnet's route table sends everything to None; `change` edits the route table row."""
    estate = Estate()
    estate.routes(("tunnel", "0.0.0.0/0", "None"))
    change(next(r for r in estate.rows if r["id"] == RT_ID))
    return estate


def _route(table: dict[str, Any]) -> dict[str, Any]:
    return table["properties"]["routes"][0]


@pytest.mark.parametrize(("change", "value", "evidence"), [
    (lambda t: t.pop("properties"), None,
     "route table 'testrt' cannot be assessed: the row has no properties, so its routes are unknown"),
    (lambda t: t["properties"].update(routes={"tunnel": "None"}), None,
     "route table 'testrt' cannot be assessed: its routes are not an array, so they are unknown"),
    (lambda t: t["properties"].update(routes=None), True,
     "no route in route table 'testrt' covers it (system route to Internet)"),
    (lambda t: _route(t)["properties"].pop("addressPrefix"), True,
     "no route in route table 'testrt' covers it (system route to Internet)"),
    (lambda t: _route(t).pop("name"), False,
     "blocked by route table 'testrt' route '?' (prefix 0.0.0.0/0, next hop None): traffic is dropped"),
    (lambda t: t["properties"]["routes"].insert(0, "not a route"), False, TUNNEL),
    (lambda t: t.pop("name"), False,  # the name is the id's last segment
     "blocked by route table 'testrt' route 'tunnel'"),
    (lambda t: _route(t)["properties"].update(nextHopType="Foo"), None,
     "route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop Foo): unknown next hop type"),
    (lambda t: _route(t)["properties"].pop("nextHopType"), None,
     "route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop ): unknown next hop type"),
    (lambda t: _route(t)["properties"].update(nextHopType="VnetLocal"), None,
     "route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop VnetLocal): next hop VnetLocal keeps traffic "
     "inside the virtual network, and Azure does not document what becomes of an address outside it"),
    (lambda t: _route(t)["properties"].update(nextHopType="internet"), True,
     "route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop internet)"),
    (lambda t: _route(t)["properties"].update(nextHopType="none"), False,
     "blocked by route table 'testrt' route 'tunnel' (prefix 0.0.0.0/0, next hop none): traffic is dropped"),
    (lambda t: _route(t)["properties"].update(nextHopType="virtualappliance", nextHopIpAddress="10.0.0.4"), None,
     "route 'tunnel' (prefix 0.0.0.0/0, next hop virtualappliance 10.0.0.4): egress through a device the "
     "scanner cannot see"),
])
def test_route_table_shapes(change: Callable[[dict[str, Any]], object], value: bool | None, evidence: str) -> None:
    verdict = tunnel_table(change).verdict()
    assert verdict.value is value
    assert evidence in text(verdict)


def test_a_declared_gateway_passes_naming_it() -> None:
    estate = Estate()
    estate.routes(("forced", "0.0.0.0/0", "VirtualNetworkGateway"))
    verdict = estate.verdict(declared=True)
    assert verdict.value is True
    assert ("route table 'testrt' route 'forced' (prefix 0.0.0.0/0, next hop VirtualNetworkGateway): egress "
            "through a declared device") in text(verdict)


@pytest.mark.parametrize(("entries", "region", "evidence"), [
    ([{"service": "microsoft.storage"}], "eastus", ENDPOINT),
    ([{"service": "Microsoft.Storage"}], "westus", ENDPOINT),  # by default the endpoint serves the VNet's region
    ([{"service": "Microsoft.Storage", "locations": ["East US", "West US"]}], "eastus", ENDPOINT),
    ([{"service": "Microsoft.Storage", "locations": [5, "eastus"]}], "eastus", ENDPOINT),
    ([{"service": "Microsoft.Storage", "locations": ["*"]}], "eastus", ENDPOINT),
    ([{"service": "Microsoft.Storage", "locations": "westus"}], "eastus", ENDPOINT),  # not a list: the default
    ([{"service": "Microsoft.Storage", "locations": ["westus"]}], "eastus", TUNNEL),
    ([{"service": "MICROSOFT.STORAGE.GLOBAL", "locations": ["westus"]}], "eastus",
     "routed through the Microsoft.Storage.Global service endpoint of subnet 'rg1-vnet/default'"),
    ([{"service": "Microsoft.Sql"}, "Microsoft.Storage", {"service": 5}, {"locations": ["eastus"]}], "eastus",
     TUNNEL),
    ({"service": "Microsoft.Storage"}, "eastus", TUNNEL),  # not an array: no endpoint
])
def test_storage_service_endpoint_shapes(entries: Any, region: str, evidence: str) -> None:
    estate = Estate()
    estate.routes(("tunnel", "0.0.0.0/0", "None"))
    estate.subnet["serviceEndpoints"] = entries
    verdict = estate.verdict(region=region)
    assert verdict.value is (evidence != TUNNEL)
    assert evidence in text(verdict)


SYSTEM = "no route in route table 'testrt' covers it (system route to Internet)"


@pytest.mark.parametrize(("prefix", "value"), [("20.0.0.0/8", True), ("20.0.0.0/9", None)])
def test_a_tag_route_beats_a_slash_8_but_not_necessarily_a_slash_9(prefix: str, value: bool | None) -> None:
    """Microsoft publishes no Storage prefix shorter than /9: a Storage route beats /8 and shorter routes."""
    estate = Estate()
    estate.routes(("wide", prefix, "None"), ("storage", "Storage", "Internet"))
    verdict = estate.verdict()
    assert verdict.value is value
    if value is None:
        assert text(verdict) == (
            "Storage:443/Tcp: the route that wins depends on the prefix lengths of Storage, known only from a "
            f"service-tag file: either blocked by route table 'testrt' route 'wide' (prefix {prefix}, next hop "
            "None): traffic is dropped or route table 'testrt' route 'storage' (prefix Storage, next hop Internet)")
    assert estate.verdict(tags=service_tags()).value is True  # the file's Storage.eastus prefixes are longer


def test_a_tag_the_file_does_not_list_leaves_the_route_unknown_saying_so() -> None:
    estate = Estate()
    estate.routes(("t", "NoSuchTag", "None"))
    verdict = estate.verdict(tags=service_tags())
    assert (verdict.value, text(verdict)) == (None, (
        "Storage:443/Tcp: the route that wins depends on the prefixes of a service tag the service-tag file does "
        f"not list: either {SYSTEM} or blocked by route table 'testrt' route 't' (prefix NoSuchTag, next hop None): "
        "traffic is dropped"))


def test_routes_that_may_win_with_the_same_outcome_are_named_together() -> None:
    estate = Estate()
    estate.routes(("sql", "Sql", "Internet"))
    verdict = estate.verdict()
    assert verdict.value is True
    assert f"{SYSTEM} or route table 'testrt' route 'sql' (prefix Sql, next hop Internet)" in text(verdict)


def test_an_address_endpoint_behind_a_storage_service_endpoint_is_decided_by_the_file() -> None:
    """An address may be one of Storage's: without the file it is unknown whether the endpoint routes carry it;
    with it, 20.60.0.10 (in Storage.eastus) is carried and a private address is not."""
    estate = Estate()
    estate.routes(("tunnel", "0.0.0.0/0", "None"))
    estate.subnet["serviceEndpoints"] = [{"service": "Microsoft.Storage"}]
    public, private = Endpoint("20.60.0.10", 443), Endpoint("10.1.0.4", 443)
    unknown = estate.verdict(public)
    assert (unknown.value, text(unknown)) == (None, (
        "20.60.0.10:443/Tcp: the route that wins depends on the prefix lengths of 20.60.0.10, known only from a "
        f"service-tag file: either {TUNNEL} or {ENDPOINT}"))
    assert estate.verdict(public, tags=service_tags()).value is True
    assert ENDPOINT in text(estate.verdict(public, tags=service_tags()))
    for tags in (None, service_tags()):
        assert text(estate.verdict(private, tags=tags)) == f"10.1.0.4:443/Tcp: {TUNNEL}"


def test_a_private_subnet_behind_a_pool_id_naming_no_load_balancer_says_what_is_not_assessed() -> None:
    estate = Estate()
    estate.subnet["defaultOutboundAccess"] = False
    del estate.ipconfig["publicIPAddress"]
    estate.ipconfig["loadBalancerBackendAddressPools"] = [{"id": "pool"}]
    verdict = estate.verdict()
    assert (verdict.value, text(verdict)) == (None, (
        "Storage:443/Tcp: subnet 'rg1-vnet/default' has no default outbound access: load balancer pool of the NIC's "
        "backend pool is referenced but not in the collected rows"))
