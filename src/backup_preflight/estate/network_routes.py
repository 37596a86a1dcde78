"""Route tables and default outbound access: the stages after the NSGs on a NIC's outbound path.

Pure and I/O-free; used by `network.NetworkModel` once per subnet and endpoint. Each finding
answers True (allowed), False (blocked) or None (cannot be proven either way), with a sentence
naming the route or subnet setting that decided.

Conservative choices (decided here, documented once):

* Routes for a service tag: the same tag in the VM's region, then the global tag, then `AzureCloud`,
  then `0.0.0.0/0`; other CIDR routes cannot be proven to cover a tag and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_preflight.estate.index import last_segment as _last_segment
from backup_preflight.estate.index import props as _props
from backup_preflight.estate.network_rules import _Finding, _Prefix, _prefix, _Target

_DEVICE_HOPS = frozenset({"virtualappliance", "virtualnetworkgateway"})
_PASS_HOPS = frozenset({"internet", "vnetlocal"})


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    prefix: _Prefix
    next_hop: str
    next_hop_ip: str


@dataclass(frozen=True, slots=True)
class _RouteTable:
    name: str
    routes: tuple[_Route, ...]
    problem: str


def _compile_route_table(row: dict, rt_id: str) -> _RouteTable:
    name = row.get("name") or _last_segment(rt_id)
    props = row.get("properties")
    if not isinstance(props, dict):
        return _RouteTable(name, (), "the row has no properties, so its routes are unknown")
    routes = []
    if props.get("routes") is not None and not isinstance(props["routes"], list):
        return _RouteTable(name, (), "its routes are not an array, so they are unknown")
    for raw in props.get("routes") or ():
        rprops = _props(raw) if isinstance(raw, dict) else {}
        prefix = rprops.get("addressPrefix")
        if isinstance(prefix, str) and prefix:
            hop, hop_ip = str(rprops.get("nextHopType") or ""), str(rprops.get("nextHopIpAddress") or "")
            routes.append(_Route(str(raw.get("name") or "?"), _prefix(prefix), hop, hop_ip))
    return _RouteTable(name, tuple(routes), "")


def _route_finding(table: _RouteTable, target: _Target, declared: bool) -> tuple[_Finding, bool]:
    """Most specific covering route and what its next hop means; second item: egress goes via a device."""
    best: _Route | None = None
    best_rank = -1
    for route in table.routes:
        rank = _route_rank(route.prefix, target)
        if rank > best_rank:
            best, best_rank = route, rank
    if best is None:
        return (True, f"no route in route table '{table.name}' covers it (system route to Internet)"), False
    hop = best.next_hop.lower()
    hop_text = f"{best.next_hop} {best.next_hop_ip}" if best.next_hop_ip else best.next_hop
    route = f"route table '{table.name}' route '{best.name}' (prefix {best.prefix.raw}, next hop {hop_text})"
    if hop == "none":
        return (False, f"blocked by {route}: traffic is dropped"), False
    if hop in _DEVICE_HOPS:
        if declared:
            return (True, f"{route}: egress through a declared device"), True
        return (None, f"{route}: egress through a device the scanner cannot see"), True
    if hop in _PASS_HOPS:
        return (True, route), False
    return (None, f"{route}: unknown next hop type"), False


def _route_rank(prefix: _Prefix, target: _Target) -> int:
    """Specificity of a route for the endpoint, or -1 when it cannot be proven to cover it."""
    if target.net is None:
        if prefix.tag == target.tag and prefix.net is None:
            if not prefix.tag_region:
                return 2
            return 3 if prefix.tag_region == target.tag_region else -1
        if prefix.tag == "azurecloud" and prefix.tag_region in ("", target.tag_region):
            return 1
        return 0 if prefix.lower == "0.0.0.0/0" else -1
    net = prefix.net
    if net is None or net.version != target.net.version or not target.net.subnet_of(net):  # type: ignore[arg-type]
        return -1
    return net.prefixlen


def _service_endpoints(sprops: dict) -> frozenset[str]:
    """Lowercase service names of a subnet's service endpoints (they work without default outbound access)."""
    entries = sprops.get("serviceEndpoints")
    return frozenset(str(e.get("service", "")).lower() for e in entries if isinstance(e, dict)) \
        if isinstance(entries, list) else frozenset()


def _private_subnet_finding(label: str, nat: str, has_public_ip: bool, in_lb_pool: bool) -> _Finding:
    """A subnet with defaultOutboundAccess=false needs an explicit outbound method."""
    if nat:
        return True, f"subnet '{label}' has no default outbound access; egress via NAT gateway {nat}"
    if has_public_ip:
        return True, f"subnet '{label}' has no default outbound access; egress via the NIC's public IP"
    if in_lb_pool:
        return None, (
            f"subnet '{label}' has no default outbound access and the NIC is in a load balancer backend pool "
            "whose outbound rules the scanner does not assess"
        )
    return False, (
        f"blocked: subnet '{label}' has defaultOutboundAccess=false and no NAT gateway, "
        "no public IP on the NIC and no egress route through a device"
    )
