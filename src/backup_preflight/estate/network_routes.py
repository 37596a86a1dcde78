"""Effective routes and default outbound access: the stages after the NSGs on a NIC's outbound path.

Pure and I/O-free; used by `network.NetworkModel` once per subnet and endpoint. The answer is a
partition of the endpoint's addresses, each part with True (allowed), False (blocked) or None
(cannot be proven either way) and a sentence naming the route or subnet setting that decided.

Semantics (decided here, documented once), as Azure selects routes:

* Per address, the longest matching prefix wins among the route table's routes, the subnet's
  service-endpoint routes and the system route `0.0.0.0/0` → Internet. At equal length a user route
  with an explicit prefix beats one with a service tag (regional tag, global tag, AzureCloud
  regional, AzureCloud, in that order), which beats the system routes.
* A route whose prefix is a service tag covers the tag's prefixes. With a service-tag file they and
  their lengths are known. Without it, the endpoint's own tag and AzureCloud (global or the VM's
  region) cover the endpoint entirely with prefixes of unknown length, assumed longer than /8
  (Microsoft publishes no Storage prefix that short), so they beat `0.0.0.0/0`, `0.0.0.0/1` or
  `20.0.0.0/8` but not necessarily a `/9` or longer route; another tag may cover any address.
* Service endpoints: `Microsoft.Storage` (for the regions in its `locations`, the VNet's region
  and its pair by default) and `Microsoft.Storage.Global` (every region) add routes for Storage's
  prefixes with next hop VirtualNetworkServiceEndpoint: traffic on them needs no Internet egress.
* Next hop None drops traffic; VirtualAppliance and VirtualNetworkGateway hand it to a device the
  scanner cannot see (allowed only when declared); VnetLocal keeps traffic inside the VNet, which
  Storage is not in, and is unknown; Internet then needs outbound
  access: a subnet with defaultOutboundAccess=false, or a NIC in a Standard load balancer's backend
  pool (load_balancers.py), needs a NAT gateway, a public IP on the NIC or the load balancer's egress.
* A VNet with a virtual network gateway (or using a peer's) or an Azure Route Server, and BGP
  propagation on, may learn a default route that no snapshot shows (from on-premises, or from an
  appliance peering with the route server); it would replace the system route to Internet. Assumed
  absent unless the policy says otherwise; the evidence says so either way.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise

from backup_preflight.estate.addresses import ALL, PUBLIC_V4, Span, intersect, network_span, union
from backup_preflight.estate.index import props as _props
from backup_preflight.estate.index import row_name as _row_name
from backup_preflight.estate.load_balancers import LbEgress
from backup_preflight.estate.network_rules import _Finding, _Piece, _Prefix, _prefix, _Target

_DEVICE_HOPS = frozenset({"virtualappliance", "virtualnetworkgateway"})
_PASS_HOPS = frozenset({"internet"})
_STORAGE_ENDPOINTS = frozenset({"microsoft.storage", "microsoft.storage.global"})
#: Routes this short are less specific than any prefix of a service tag (see module docstring).
_SHORTEST_TAG_PREFIX = 9
#: Ends the evidence of a path that is allowed only because no on-premises default route is assumed.
ASSUMED_NO_BGP_DEFAULT = "assumed absent (assumeNoOnPremisesDefaultRoute)"
#: Precedence among routes of equal length.
_USER_CIDR, _USER_TAG_RANKS, _ENDPOINT, _SYSTEM = 10, {(1, 1): 5, (1, 0): 4, (0, 1): 3, (0, 0): 2}, 1, 0


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
    propagates_bgp: bool


@dataclass(frozen=True, slots=True)
class _Subnet:
    """What the path stage needs to know about a NIC's subnet, its VNet and the NIC's own egress."""

    label: str
    table: _RouteTable | None
    table_problem: str  # non-empty when a referenced route table cannot be read
    endpoints: tuple[tuple[str, frozenset[str]], ...]  # (service, locations) of Storage endpoints
    region: str
    private: bool  # defaultOutboundAccess=false
    nat: str
    has_public_ip: bool
    lb: LbEgress
    bgp: str  # why the VNet may learn BGP routes, or ''
    assume_no_bgp_default: bool
    declared: bool


@dataclass(frozen=True, slots=True)
class _Entry:
    """One candidate route for some addresses. `length` None: a service tag's prefixes of unknown length."""

    span: Span
    length: int | None
    rank: int
    hop: str  # lowercase next hop type; "endpoint" for service-endpoint routes, "system" for 0.0.0.0/0
    text: str
    maybe: bool = False  # may or may not cover these addresses
    coarse: bool = False  # AzureCloud: its prefixes may be shorter than the endpoint service's


def _compile_route_table(row: dict, rt_id: str) -> _RouteTable:
    name = _row_name(row)
    props = row.get("properties")
    if not isinstance(props, dict):
        return _RouteTable(name, (), "the row has no properties, so its routes are unknown", True)
    disabled = props.get("disableBgpRoutePropagation") in (True, "true", "True")
    if props.get("routes") is not None and not isinstance(props["routes"], list):
        return _RouteTable(name, (), "its routes are not an array, so they are unknown", not disabled)
    routes = []
    for raw in props.get("routes") or ():
        rprops = _props(raw) if isinstance(raw, dict) else {}
        prefix = rprops.get("addressPrefix")
        if isinstance(prefix, str) and prefix:
            hop, hop_ip = str(rprops.get("nextHopType") or ""), str(rprops.get("nextHopIpAddress") or "")
            routes.append(_Route(str(raw.get("name") or "?"), _prefix(prefix), hop, hop_ip))
    return _RouteTable(name, tuple(routes), "", not disabled)


def _storage_endpoints(sprops: dict) -> tuple[tuple[str, frozenset[str]], ...]:
    """The subnet's Storage service endpoints as (service, lowercase locations); names in any case."""
    entries = sprops.get("serviceEndpoints")
    found = []
    for entry in entries if isinstance(entries, list) else ():
        service = str(entry.get("service") or "").lower() if isinstance(entry, dict) else ""
        if service in _STORAGE_ENDPOINTS:
            locations = entry.get("locations")
            names = frozenset(str(x).replace(" ", "").lower() for x in locations if isinstance(x, str)) \
                if isinstance(locations, list) else frozenset()
            found.append((service, names))
    return tuple(found)


def _path_pieces(subnet: _Subnet, target: _Target) -> tuple[_Piece, ...]:
    """Routes and outbound access for one endpoint, per part of its addresses."""
    if subnet.table_problem:
        return ((target.universe, None, subnet.table_problem),)
    entries = [e for e in _entries(subnet, target) if intersect(e.span, target.universe)]
    cuts = sorted({b for e in entries for lo, hi in intersect(e.span, target.universe) for b in (lo, hi)}
                  | {b for lo, hi in target.universe for b in (lo, hi)})
    grouped: dict[_Finding, list[tuple[int, int]]] = {}
    for lo, hi in pairwise(cuts):
        if not _contains(target.universe, lo):
            continue
        found = _outcome(_winners([e for e in entries if _contains(e.span, lo)]), subnet, target)
        grouped.setdefault(found, []).append((lo, hi))
    return tuple((union([tuple(spans)]), value, text) for (value, text), spans in grouped.items())


def _contains(span: Span, address: int) -> bool:
    at = bisect_right(span, (address, 1 << 200)) - 1
    return at >= 0 and span[at][0] <= address < span[at][1]


def _winners(covering: list[_Entry]) -> list[_Entry]:
    """The routes that may be the longest match here: one when decided, several when lengths are unknown.

    Routes of unknown length are at least /9 and at most /32. The endpoint's own tag has the same
    prefixes as its service-endpoint routes and beats them; AzureCloud's prefixes may be shorter
    than the service's (`coarse`), so under an AzureCloud route the service endpoint may still win.
    """
    decided = [e for e in covering if e.length is not None and not e.maybe]
    length, rank = max((e.length or 0, e.rank) for e in decided)
    known = [e for e in decided if (e.length or 0, e.rank) == (length, rank)]  # several: routes with one prefix
    tagged = sorted((e for e in covering if e.length is None and not e.maybe), key=lambda e: -e.rank)
    possible = tagged[:1]
    if tagged and tagged[0].coarse:
        possible += [e for e in tagged if not e.coarse][:1]
    winners = known if length >= _SHORTEST_TAG_PREFIX or not possible else []
    possible += [e for e in covering if e.maybe]  # they may not cover these addresses at all
    return winners + [e for e in possible if length < 32 or e.rank > rank]


def _outcome(winners: list[_Entry], subnet: _Subnet, target: _Target) -> _Finding:
    results = list(dict.fromkeys(_hop_outcome(e, subnet, target) for e in winners))
    if len(results) == 1:
        return results[0]
    values = {v for v, _ in results}
    if len(values) == 1:
        return values.pop(), " or ".join(t for _, t in results)
    tied = [e for e in winners if e.length is not None and not e.maybe]
    if len({_hop_outcome(e, subnet, target)[0] for e in tied}) > 1:
        return None, (f"{' and '.join(e.text for e in tied)} match it alike: two routes with one prefix, which "
                      "Azure refuses (RouteConflict), so which one applies is not known")
    unknown = (f"the prefix lengths of {target.destination}, known only from a service-tag file" if target.tags is None
               else "the prefixes of a service tag the service-tag file does not list")
    return None, f"the route that wins depends on {unknown}: either {' or '.join(t for _, t in results)}"


def _hop_outcome(entry: _Entry, subnet: _Subnet, target: _Target) -> _Finding:
    hop = entry.hop
    if hop == "none":
        return False, f"blocked by {entry.text}: traffic is dropped"
    if hop in _DEVICE_HOPS:
        if subnet.declared:
            return True, f"{entry.text}: egress through a declared device"
        return None, f"{entry.text}: egress through a device the scanner cannot see"
    if hop == "endpoint":
        return True, entry.text
    if hop == "vnetlocal":  # the API: "Keep traffic within the local virtual network"; Storage is not in it
        return None, (f"{entry.text}: next hop VnetLocal keeps traffic inside the virtual network, and Azure does "
                      "not document what becomes of an address outside it")
    if hop not in _PASS_HOPS and hop != "system":
        return None, f"{entry.text}: unknown next hop type"
    text = entry.text
    if hop == "system" and subnet.bgp:
        note = (f"{subnet.bgp} and BGP route propagation is on, so an on-premises default route that no "
                "snapshot shows would replace the system route")
        if not subnet.assume_no_bgp_default:
            return None, note
        text = f"{text}; {note}: {ASSUMED_NO_BGP_DEFAULT}"
    if not (subnet.private or subnet.lb.closes or subnet.lb.unknown):
        return True, text
    value, why = _explicit_outbound(subnet, target)
    return value, f"{text}; {why}" if value else why


def _entries(subnet: _Subnet, target: _Target) -> list[_Entry]:
    """Every route that may apply: user routes, service-endpoint routes, the system default route."""
    table = subnet.table
    if table is None:
        system = f"no route table on subnet '{subnet.label}' (system routes)"
    else:
        system = f"no route in route table '{table.name}' covers it (system route to Internet)"
    entries = [_Entry(ALL, 0, _SYSTEM, "system", system)]
    for route in table.routes if table else ():
        hop_text = f"{route.next_hop} {route.next_hop_ip}" if route.next_hop_ip else route.next_hop
        text = f"route table '{table.name}' route '{route.name}' (prefix {route.prefix.raw}, next hop {hop_text})"
        hop = route.next_hop.lower()
        if route.prefix.net is not None:
            entries.append(_Entry(network_span(route.prefix.net), route.prefix.net.prefixlen, _USER_CIDR, hop, text))
        else:
            entries += _tag_entries(route.prefix, target, hop, text)
    for service, locations in subnet.endpoints:
        spelled = "Microsoft.Storage.Global" if service.endswith("global") else "Microsoft.Storage"
        text = f"routed through the {spelled} service endpoint of subnet '{subnet.label}'"
        regions = locations or frozenset({subnet.region})
        names = ["storage"] if service.endswith("global") or "*" in regions else [f"storage.{r}" for r in regions]
        entries += _endpoint_entries(names, target, text)
    return entries


def _tag_entries(prefix: _Prefix, target: _Target, hop: str, text: str) -> list[_Entry]:
    """A route whose prefix is a service tag (see module docstring)."""
    own = target.net is None and prefix.tag in (target.tag, "azurecloud")
    in_region = not prefix.tag_region or prefix.tag_region == target.tag_region
    rank = _USER_TAG_RANKS[(prefix.tag != "azurecloud", bool(prefix.tag_region))]
    listed = target.tags.get(prefix.lower) if target.tags else None
    if listed is not None:
        return [_Entry(network_span(n), n.prefixlen, rank, hop, text) for n in listed]
    if own and in_region:
        return [_Entry(target.universe, None, rank, hop, text, coarse=prefix.tag == "azurecloud")]
    if own:
        return []  # the same tag in another region: regional tags do not overlap
    return [_Entry(PUBLIC_V4, None, rank, hop, text, maybe=True)]


def _endpoint_entries(names: list[str], target: _Target, text: str) -> list[_Entry]:
    if target.tags is not None:
        listed = [n for name in names for n in target.tags.get(name) or ()]
        if listed or target.net is not None:
            return [_Entry(network_span(n), n.prefixlen, _ENDPOINT, "endpoint", text) for n in listed]
    if target.net is None:
        if target.tag == "storage" and ("storage" in names or f"storage.{target.tag_region}" in names):
            return [_Entry(target.universe, None, _ENDPOINT, "endpoint", text)]
        return []
    return [_Entry(PUBLIC_V4, None, _ENDPOINT, "endpoint", text, maybe=True)]  # an address may be Storage's


def _explicit_outbound(subnet: _Subnet, target: _Target) -> _Finding:
    """A NIC without default outbound access (defaultOutboundAccess=false on its subnet, or a Standard load
    balancer's backend pool) needs an explicit outbound method; a load balancer not assessed leaves it unknown."""
    label, lb = subnet.label, subnet.lb
    lost = (f"subnet '{label}' has no default outbound access" if subnet.private else
            f"the NIC is in a backend pool of {lb.closes}, so it has no default outbound access" if lb.closes else "")
    gone = lost or "the NIC may have no default outbound access"
    if subnet.nat:
        return True, f"{gone}; egress via NAT gateway {subnet.nat}"
    if subnet.has_public_ip:
        return True, f"{gone}; egress via the NIC's public IP"
    if target.protocol in lb.protocols:
        return True, f"{gone}; egress via {lb.via}"
    if doubt := lb.doubt(target.protocol):
        return None, f"{lost or 'whether the NIC has default outbound access is unknown'}: {doubt}"
    setting = (f"subnet '{label}' has defaultOutboundAccess=false" if subnet.private else
               f"the NIC is in a backend pool of {lb.closes}, which gives it no outbound access for "
               f"{target.protocol.upper()}")
    return False, f"blocked: {setting} and no NAT gateway, no public IP on the NIC and no egress route through a device"
