"""Outbound reachability of Azure Backup endpoints from a VM's NICs, decided from Resource Graph rows.

Pure and I/O-free. For every NIC the path is: the NIC's NSG, then its subnet's NSG (both must allow),
then the subnet's effective routes and outbound access. Each stage partitions the endpoint's
addresses (for the Storage tag: the prefixes of Storage.<region> in Microsoft's service-tag file
when the user gave one, else every public IPv4 address) into allowed, blocked and unknown parts,
each with a sentence naming what decided. An address is reached when every stage allows it; the
endpoint is allowed (True) when all its addresses are, blocked (False) when none is, and unknown
(None) otherwise, or when anything the scanner cannot see (an appliance, a missing row, a tag not
in the file) could change the answer: never a guessed pass or a false failure.

This module holds the public `Endpoint`, `Verdict` and `NetworkModel` with its caches; NSG rules,
prefixes, ports and service tags are compiled and matched in `network_rules`, routes, service
endpoints and outbound access in `network_routes` (each documents its semantics), address sets in
`addresses`.

Scale: 100,000 VMs share a few hundred NSGs and subnets, so each NSG and route table is compiled once
into sorted tuples (NSGs with identical rules, such as per-VM portal NSGs, share one decided rule set),
NSG decisions are cached per (NSG, level, subnet prefixes, endpoints in the region), and
the whole per-NIC verdict is cached per (NIC NSG, subnet, NIC egress, region, endpoints, flags) and
shared, as the same `Verdict` object, by every NIC behind that combination.

Conservative choices (decided here, documented once):

* The primary IP configuration (or the first one) carries outbound traffic: its subnet, public IP
  and load-balancer backend pools are what count.
* A VNet may learn BGP routes when its GatewaySubnet is in use, a virtual network gateway row sits
  in it, or one of its peerings uses the remote gateway; a route table with
  disableBgpRoutePropagation=true stops that for its subnets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backup_preflight.estate.addresses import PUBLIC_V4, Span, describe, intersect, network_span, union
from backup_preflight.estate.index import Lookup
from backup_preflight.estate.index import last_segment as _last_segment
from backup_preflight.estate.index import props as _props
from backup_preflight.estate.index import ref_id as _ref
from backup_preflight.estate.index import row_name as _row_name
from backup_preflight.estate.load_balancers import LbEgress, lb_egress
from backup_preflight.estate.network_routes import (
    ASSUMED_NO_BGP_DEFAULT,
    _compile_route_table,
    _path_pieces,
    _RouteTable,
    _storage_endpoints,
    _Subnet,
)
from backup_preflight.estate.network_rules import (
    _DOCUMENTED_RULES,
    _RULE_FIELDS,
    NO_ROUTES,
    VnetTag,
    _compile_rule,
    _hashable,
    _IpNetwork,
    _networks,
    _Nsg,
    _nsg_pieces,
    _Piece,
    _prefix,
    _Rule,
    _RuleSet,
    _Target,
)
from backup_preflight.service_tags import ServiceTags

#: Where a NIC is: its NSG, its subnet, whether it has a public IP, and what its load balancers do.
_Place = tuple[str, str, bool, LbEgress]

_VNET_TYPE = "microsoft.network/virtualnetworks"
_SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
#: Gateway rows note the VNet of their subnet, which another subscription's row may name: shared by every
#: part of a split estate (estate/parts.py).
GATEWAY_TYPE = "microsoft.network/virtualnetworkgateways"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One destination the backup extension must reach: a service tag or CIDR/IP, a port, a protocol."""

    destination: str
    port: int
    protocol: str = "Tcp"

    def __str__(self) -> str:
        return f"{self.destination}:{self.port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Three-valued answer (True allowed, False blocked, None unknown) with the sentences that decided it."""

    value: bool | None
    evidence: tuple[str, ...]
    #: The evidence lines of a pass that rest on what no snapshot shows (shown even on a pass).
    assumptions: tuple[str, ...] = ()


#: Subnets whose use means the VNet may learn routes over BGP, by lowercase name: a gateway, or an Azure Route
#: Server, which programs what network appliances advertise to it (0.0.0.0/0 too) into the VNet's subnets.
_BGP_SUBNETS = {"gatewaysubnet": "a virtual network gateway (its GatewaySubnet is in use)",
                "routeserversubnet": "an Azure Route Server (its RouteServerSubnet is in use)"}


class NetworkModel:
    """Outbound verdicts for NICs over one inventory of Resource Graph rows, with shared caches."""

    def __init__(self, rows_by_id: Mapping[str, dict], service_tags: ServiceTags | None = None,
                 lookup: Lookup = dict) -> None:
        """rows_by_id: lowercase ARM id -> ARG row, for all rows of the `resources` table (NICs, VNets, NSGs,
        route tables, public IPs, NAT gateways, gateways...). Builds a subnet index from VNet rows'
        properties.subnets[] (and from standalone microsoft.network/virtualnetworks/subnets rows if
        present); types are compared case-insensitively. `service_tags`: Microsoft's service-tag
        prefixes, when the user supplied the file. `lookup` makes the subnet index (see Index)."""
        self._rows = rows_by_id
        self._tags = service_tags
        self._subnets: dict[str, dict] = lookup()
        self._gateways: dict[str, str] = {}  # lowercase VNet id -> why it may learn BGP routes
        for row in rows_by_id.values():
            kind = str(row.get("type") or "").lower()
            if kind == _VNET_TYPE:
                subnets = _props(row).get("subnets")
                for subnet in subnets if isinstance(subnets, list) else ():  # else unresolved: unknown
                    sid = subnet.get("id") if isinstance(subnet, dict) else None
                    if isinstance(sid, str):
                        self._subnets[sid.lower()] = subnet  # embedded copy wins over a standalone row
                self._note_peerings(row)
            elif kind == _SUBNET_TYPE and isinstance(row.get("id"), str):
                self._subnets.setdefault(row["id"].lower(), row)
            elif kind == GATEWAY_TYPE:
                self._note_gateway(row)
        for sid, subnet in self._subnets.items():
            learns = _BGP_SUBNETS.get(sid.rpartition("/subnets/")[2]) if "/subnets/" in sid else None
            if learns and _props(subnet).get("ipConfigurations"):
                self._gateways.setdefault(_vnet_id(sid), f"VNet '{_vnet_name(sid)}' has {learns}")
        self._nsgs: dict[str, _Nsg | None] = {}
        self._rule_sets: dict[tuple[_Rule, ...], _RuleSet] = {}
        self._rules: dict[tuple, _Rule | None] = {}
        self._route_tables: dict[str, _RouteTable | None] = {}
        self._nsg_findings: dict[tuple, tuple[tuple[_Piece, ...], ...]] = {}
        self._paths: dict[tuple, tuple[tuple[_Piece, ...], ...]] = {}
        self._targets: dict[tuple[Endpoint, str], _Target] = {}
        self._verdicts: dict[tuple, Verdict] = {}
        #: By NIC id as referenced: where the NIC is (`_place`).
        self._places: dict[str, _Place | Verdict] = {}

    def _note_gateway(self, row: dict) -> None:
        configs = _props(row).get("ipConfigurations")
        for config in configs if isinstance(configs, list) else ():  # no subnet named: no VNet to note
            sid = _ref(_props(config), "subnet") if isinstance(config, dict) else ""
            if sid:
                name = _row_name(row)
                self._gateways[_vnet_id(sid.lower())] = (
                    f"VNet '{_vnet_name(sid)}' has virtual network gateway '{name}'")

    def _note_peerings(self, row: dict) -> None:
        peerings = _props(row).get("virtualNetworkPeerings")
        if peerings is not None and not isinstance(peerings, list):
            self._gateways.setdefault(str(row.get("id") or "").lower(), (
                f"VNet '{row.get('name') or '?'}' has virtualNetworkPeerings that is not an array, so whether "
                "it uses a peered VNet's gateway is unknown"))
            return
        for peering in peerings or ():
            pprops = _props(peering) if isinstance(peering, dict) else {}
            if pprops.get("useRemoteGateways") in (True, "true", "True"):
                remote = _ref(pprops, "remoteVirtualNetwork")
                self._gateways.setdefault(str(row.get("id") or "").lower(), (
                    f"VNet '{row.get('name') or '?'}' uses the gateway of peered VNet "
                    f"'{_last_segment(remote) if remote else '?'}'"))

    def outbound(
        self,
        nic_ids: Sequence[str],
        region: str,
        endpoints: Sequence[Endpoint],
        *,
        egress_device_declared: bool = False,
        assume_no_bgp_default: bool = True,
    ) -> Verdict:
        """All NICs (each must reach every endpoint) → one three-valued verdict: False if any NIC/endpoint
        is blocked, else None if any is unknown, else True. Evidence lists the deciding items (for a
        pass: one short line per NIC is fine)."""
        if not nic_ids:
            return Verdict(None, ("the VM has no network interfaces to assess",))
        region_key = _region_key(region)
        eps = tuple(endpoints)
        flags = (egress_device_declared, assume_no_bgp_default)
        if len(nic_ids) == 1:
            return self._nic_verdict(nic_ids[0], region_key, eps, flags)
        per_nic = [(nic_id, self._nic_verdict(nic_id, region_key, eps, flags)) for nic_id in nic_ids]
        value = _and(v.value for _, v in per_nic)
        def lines(field: str) -> tuple[str, ...]:
            return tuple(f"NIC '{_last_segment(nic_id)}': {line}" for nic_id, verdict in per_nic
                         if verdict.value is value for line in getattr(verdict, field))

        return Verdict(value, lines("evidence"), lines("assumptions"))

    def sharing_key(self, nic_ids: Sequence[str], region: str) -> tuple[Any, ...]:
        """Equal for two VMs whose `outbound` verdicts are equal for every query: one NIC in the same place
        (NSG, subnet, public IP, load balancer pool) and region. A NIC that is not resolved, or several
        NICs, are named in the evidence, so then the key holds the ids themselves."""
        region_key = _region_key(region)
        if len(nic_ids) == 1:
            place = self._place(nic_ids[0])
            if not isinstance(place, Verdict):
                return ("place", region_key, place)
        return ("nics", region_key, tuple(nic_ids))

    def _nic_verdict(self, nic_id: str, region: str, eps: tuple[Endpoint, ...], flags: tuple[bool, bool]) -> Verdict:
        """Resolve the NIC to its cache key; the shared verdict for that key is computed at most once."""
        place = self._place(nic_id)
        if isinstance(place, Verdict):
            return place
        key = (*place, region, eps, flags)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._evaluate(*key)
        return verdict

    def _place(self, nic_id: str) -> _Place | Verdict:
        """The NIC's (NSG, subnet, public IP?, what its load balancers do), read from its row once; or the unknown
        verdict that says why it cannot be placed."""
        place = self._places.get(nic_id)
        if place is None:
            place = self._places[nic_id] = self._read_place(nic_id)
        return place

    def _read_place(self, nic_id: str) -> _Place | Verdict:
        nic = self._rows.get(nic_id.lower())
        if nic is None:
            return Verdict(None, (f"NIC {nic_id} is referenced but not in the collected rows",))
        props = _props(nic)
        raw_configs = props.get("ipConfigurations")
        if raw_configs is not None and not isinstance(raw_configs, list):
            return Verdict(None, (f"NIC {nic_id}: ipConfigurations is not an array; not assessed",))
        ipconfigs = [c for c in raw_configs or () if isinstance(c, dict)]
        primary = next((c for c in ipconfigs if _props(c).get("primary") is True), None)
        ipconfig = _props(primary or (ipconfigs[0] if ipconfigs else {}))
        subnet_id = _ref(ipconfig, "subnet")
        if not subnet_id:
            name = _row_name(nic)
            return Verdict(None, (f"NIC '{name}' has no IP configuration with a subnet; not assessed",))
        return (
            _ref(props, "networkSecurityGroup").lower(),
            subnet_id.lower(),
            bool(_ref(ipconfig, "publicIPAddress")),
            lb_egress(ipconfig.get("loadBalancerBackendAddressPools"), self._rows),
        )

    def _evaluate(
        self,
        nic_nsg_id: str,
        subnet_id: str,
        has_public_ip: bool,
        lb: LbEgress,
        region: str,
        eps: tuple[Endpoint, ...],
        flags: tuple[bool, bool],
    ) -> Verdict:
        """Evaluate one (NIC NSG, subnet, NIC egress, region, endpoints, flags) combination."""
        targets = tuple(self._target(ep, region) for ep in eps)
        subnet = self._subnets.get(subnet_id)
        subnet_prefixes: tuple[_IpNetwork, ...] = ()
        if subnet is not None:
            sprops = _props(subnet)
            subnet_prefixes = _networks(sprops.get("addressPrefix"), sprops.get("addressPrefixes"))
        vnet = self._vnet_tag(subnet_id, subnet, flags[1])
        stages = [self._nsg_stage(nic_nsg_id, "on the NIC", subnet_prefixes, targets, vnet)]
        if subnet is None:
            missing = f"subnet {subnet_id} is referenced but not in the collected rows"
            stages.append(tuple(((t.universe, None, missing),) for t in targets))
        else:
            label = _subnet_label(subnet)
            sprops = _props(subnet)
            stages.append(self._nsg_stage(_ref(sprops, "networkSecurityGroup").lower(), f"on subnet '{label}'",
                                          subnet_prefixes, targets, vnet))
            key = (subnet_id, has_public_ip, lb, region, flags, targets)
            paths = self._paths.get(key)
            if paths is None:  # shared by every NSG combination on this subnet
                path = self._path(subnet_id, subnet, label, region, has_public_ip, lb, flags)
                paths = self._paths[key] = tuple(_path_pieces(path, t) for t in targets)
            stages.append(paths)
        return _verdict(targets, [tuple(stage[i] for stage in stages) for i in range(len(targets))])

    def _vnet_tag(self, subnet_id: str, subnet: dict | None, assume_no_bgp_default: bool) -> VnetTag:
        """What the VirtualNetwork tag holds on this subnet beyond private addresses (network_rules.VnetTag)."""
        rt_id, table = self._table_of(_props(subnet)) if subnet is not None else ("", None)
        anything = ""
        if rt_id and (table is None or table.problem):
            anything = f"it holds the prefixes of user-defined routes, and route table {rt_id} cannot be read"
        elif (bgp := self._gateways.get(_vnet_id(subnet_id), "")) and not assume_no_bgp_default:
            anything = (f"it holds connected on-premises address spaces, and {bgp}, so a default route learned over "
                        "BGP may be among them (assumeNoOnPremisesDefaultRoute is false)")
        routes = table.routes if table is not None else ()
        appliance = tuple(r.prefix for r in routes if r.next_hop.lower() == "virtualappliance")
        others = tuple(r.prefix for r in routes if r.next_hop.lower() != "virtualappliance")
        if not (appliance or others or anything):
            return NO_ROUTES
        return VnetTag(appliance, others, anything, table.name if table is not None else "")

    def _path(self, subnet_id: str, subnet: dict, label: str, region: str, has_public_ip: bool, lb: LbEgress,
              flags: tuple[bool, bool]) -> _Subnet:
        """The route table, service endpoints, outbound access and BGP exposure of one subnet."""
        sprops = _props(subnet)
        rt_id, table = self._table_of(sprops)
        problem = ""
        if rt_id and table is None:
            problem = f"route table {rt_id} is referenced but not in the collected rows"
        elif table is not None and table.problem:
            problem = f"route table '{table.name}' cannot be assessed: {table.problem}"
        bgp = self._gateways.get(_vnet_id(subnet_id), "")
        if table is not None and not table.propagates_bgp:
            bgp = ""
        return _Subnet(label, table, problem, _storage_endpoints(sprops), region,
                       sprops.get("defaultOutboundAccess") in (False, "false", "False"),
                       _ref(sprops, "natGateway"), has_public_ip, lb, bgp, flags[1], flags[0])

    def _table_of(self, sprops: dict) -> tuple[str, _RouteTable | None]:
        """The id of the subnet's route table as referenced ('' when none), and the table (None when not collected)."""
        rt_id = _ref(sprops, "routeTable")
        return rt_id, self._route_table(rt_id.lower()) if rt_id else None

    def _target(self, ep: Endpoint, region: str) -> _Target:
        """Parse an endpoint once per model; a global tag (`Storage`) means that tag in the VM's region."""
        key = (ep, region)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _target(ep, region, self._tags)
        return target

    def _nsg_stage(
        self,
        nsg_id: str,
        level: str,
        prefixes: tuple[_IpNetwork, ...],
        targets: tuple[_Target, ...],
        vnet: VnetTag,
    ) -> tuple[tuple[_Piece, ...], ...]:
        """Per endpoint, the NSG's pieces at one level (none there: allowed at that level).

        Cached per (NSG, level, subnet prefixes, endpoints in this region, VirtualNetwork's routes), so an NSG
        shared by many subnets or NICs is matched once per distinct context.
        """
        if not nsg_id:
            return tuple(((t.universe, True, f"no NSG {level}"),) for t in targets)
        key = (nsg_id, level, prefixes, targets, vnet)
        cached = self._nsg_findings.get(key)
        if cached is None:
            nsg = self._nsg(nsg_id)
            if nsg is None:
                miss = f"NSG {nsg_id} ({level}) is referenced but not in the collected rows"
                cached = tuple(((t.universe, None, miss),) for t in targets)
            else:
                cached = tuple(_nsg_pieces(nsg, level, t, prefixes, vnet) for t in targets)
            self._nsg_findings[key] = cached
        return cached

    def _nsg(self, nsg_id: str) -> _Nsg | None:
        if nsg_id not in self._nsgs:
            row = self._rows.get(nsg_id)
            self._nsgs[nsg_id] = None if row is None else self._compile_nsg(row, nsg_id)
        return self._nsgs[nsg_id]

    def _route_table(self, rt_id: str) -> _RouteTable | None:
        if rt_id not in self._route_tables:
            row = self._rows.get(rt_id)
            self._route_tables[rt_id] = None if row is None else _compile_route_table(row, rt_id)
        return self._route_tables[rt_id]

    def _compile_nsg(self, row: dict, nsg_id: str) -> _Nsg:
        """Outbound custom and default rules, sorted by priority; documented defaults if the row has none.

        Rules and rule sets are interned by content, so identical NSGs share one `_RuleSet`.
        """
        name = _row_name(row)
        props = row.get("properties")
        if not isinstance(props, dict):
            return _Nsg(name, _RuleSet(()), "the row has no properties, so its rules are unknown")
        rules: list[_Rule] = []
        problems: list[str] = []
        for raws, origin in ((props.get("securityRules"), ""), (props.get("defaultSecurityRules"), "default rule")):
            if raws is not None and not isinstance(raws, list):
                return _Nsg(name, _RuleSet(()), "its rule list is not an array, so its rules are unknown")
            for raw in raws or ():
                if not isinstance(raw, dict):
                    continue
                rprops = _props(raw)
                direction = str(rprops.get("direction") or "").lower()
                if direction and direction != "outbound":
                    continue
                rule = self._compile_rule(raw, rprops, origin)
                if rule is None:
                    problems.append(f"rule '{raw.get('name') or '?'}' has no usable priority/access")
                else:
                    rules.append(rule)
        if not any(r.origin == "default rule" for r in rules):
            rules.extend(_DOCUMENTED_RULES)
        rules.sort(key=lambda r: r.priority)
        key = tuple(rules)
        rule_set = self._rule_sets.get(key)
        if rule_set is None:
            rule_set = self._rule_sets[key] = _RuleSet(key)
        return _Nsg(name, rule_set, "; ".join(problems))

    def _compile_rule(self, raw: dict, props: dict, origin: str) -> _Rule | None:
        """One outbound rule, interned by its raw content (ARG repeats the same default rules in every NSG)."""
        try:
            key = (origin, raw.get("name"), *(_hashable(props.get(f)) for f in _RULE_FIELDS))
            hash(key)
        except TypeError:  # odd shapes are compiled without interning
            return _compile_rule(raw, props, origin)
        if key not in self._rules:
            self._rules[key] = _compile_rule(raw, props, origin)
        return self._rules[key]


# ---------------------------------------------------------------- verdict assembly


def _and(values: Iterable[bool | None]) -> bool | None:
    """Three-valued AND: False wins, then None, else True."""
    result: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _verdict(targets: tuple[_Target, ...], stages: list[tuple[tuple[_Piece, ...], ...]]) -> Verdict:
    """Fold per-endpoint results into one verdict; evidence keeps only the endpoints of the deciding value.

    Blocking and unknown sentences are grouped by sentence with the endpoints they concern; a pass is
    one line per group of endpoints that were allowed through the same rules and routes.
    """
    decided = [_target_verdict(t, s) for t, s in zip(targets, stages, strict=True)]
    value = _and(v for v, _ in decided)
    groups: dict[object, list[str]] = {}
    for target, (v, lines) in zip(targets, decided, strict=True):
        if v is not value:
            continue
        if value is True:
            groups.setdefault(lines, []).append(target.label)
        else:
            for line in lines:
                groups.setdefault(line, []).append(target.label)
    if value is True:
        out = tuple(f"{', '.join(labels)}: allowed — {'; '.join(t)}" for t, labels in groups.items())  # type: ignore[arg-type]
        assumed = tuple(f"{', '.join(labels)}: {text}" for t, labels in groups.items()
                        for text in t if ASSUMED_NO_BGP_DEFAULT in text)  # type: ignore[union-attr]
        return Verdict(True, out or ("no endpoints to check",), assumed)
    return Verdict(value, tuple(f"{', '.join(labels)}: {text}" for text, labels in groups.items()))


def _target_verdict(target: _Target, stages: tuple[tuple[_Piece, ...], ...]) -> tuple[bool | None, tuple[str, ...]]:
    """Per address, every stage must allow; the endpoint is decided when all its addresses agree.

    Evidence: for a pass, every stage's sentence; for a block, the blocking sentences; for unknown,
    the undecidable sentences and, when some addresses are blocked and others not, the blocking ones
    with the addresses they concern.
    """
    pieces: list[tuple[Span, tuple[tuple[bool | None, str], ...]]] = [(target.universe, ())]
    for stage in stages:
        pieces = [(both, (*found, (v, text))) for span, found in pieces for part, v, text in stage
                  if (both := intersect(span, part))]
    valued = [(span, _and(v for v, _ in found), found) for span, found in pieces]
    values = {v for _, v, _ in valued}
    if values == {True}:
        return True, tuple(dict.fromkeys(text for _, _, found in valued for _, text in found))
    if values == {False}:
        return False, tuple(dict.fromkeys(text for _, _, found in valued for v, text in found if v is False))
    lines = dict.fromkeys(text for _, value, found in valued if value is None for v, text in found if v is None)
    if False in values:
        blocked = _texts_by_span(valued, False)
        for text, span in blocked.items():
            lines[f"{text}, for part of {target.scope}: {describe(span)}"] = None
        on_blocked = {text for _, value, found in valued if value is False for _, text in found}
        for text, span in _texts_by_span(valued, True).items():
            if text not in on_blocked:  # what lets the other addresses through
                lines[f"{text} — allowed for part of {target.scope}: {describe(span)}"] = None
    return None, tuple(lines)


def _texts_by_span(valued: list[tuple[Span, bool | None, tuple[tuple[bool | None, str], ...]]],
                   value: bool) -> dict[str, Span]:
    """For the addresses with this final value: each deciding sentence and the addresses it decided."""
    spans: dict[str, list[Span]] = {}
    for span, final, found in valued:
        if final is value:
            for v, text in found:
                if v is value:
                    spans.setdefault(text, []).append(span)
    return {text: union(parts) for text, parts in spans.items()}


# ---------------------------------------------------------------- small parsers


def _region_key(region: str) -> str:
    """A region as verdicts are cached and shared by it: "East US" and "eastus" are one."""
    return region.replace(" ", "").lower()


def _target(ep: Endpoint, region: str, tags: ServiceTags | None) -> _Target:
    """An endpoint with the addresses it may be (see `network_rules`), from the service tags when given."""
    prefix = _prefix(ep.destination)
    region = prefix.tag_region or region
    if prefix.net is not None:
        universe, scope = network_span(prefix.net), ep.destination
    else:
        name = ep.destination if prefix.tag_region else f"{ep.destination}.{region}"
        universe, scope = _tag_universe(prefix.tag, region, name, tags)
    return _Target(str(ep), ep.destination, ep.port, ep.protocol.lower(), prefix.tag, region, prefix.net,
                   universe, scope, tags)


def _tag_universe(tag: str, region: str, name: str, tags: ServiceTags | None) -> tuple[Span, str]:
    """The IPv4 addresses of `tag.region` in the service-tag file (the global tag if the region is not listed)."""
    if tags is None:
        return PUBLIC_V4, (f"the public IPv4 addresses {name} may use (its prefixes are known only from a "
                           "service-tag file, --service-tags)")
    fallback = (tag, name.partition(".")[0], f", which does not list {name}")
    for listed, shown, note in ((f"{tag}.{region}", name, ""), fallback):
        nets = [n for n in tags.get(listed) or () if n.version == 4]
        if nets:
            scope = f"the {len(nets)} IPv4 prefixes of {shown} in the service-tag file{note}"
            return union(map(network_span, nets)), scope
    return PUBLIC_V4, f"the public IPv4 addresses {name} may use (the service-tag file does not list {tag})"


def _vnet_id(subnet_id: str) -> str:
    return subnet_id.lower().split("/subnets/")[0]


def _vnet_name(subnet_id: str) -> str:
    return _last_segment(subnet_id.split("/subnets/")[0].split("/Subnets/")[0])


def _subnet_label(subnet: dict) -> str:
    """`vnet/subnet` from the subnet's own id, as Azure spells it."""
    parts = str(subnet.get("id") or "").split("/")
    lowered = [p.lower() for p in parts]
    if "virtualnetworks" in lowered:
        i = lowered.index("virtualnetworks")
        if i + 3 < len(parts):
            return f"{parts[i + 1]}/{parts[i + 3]}"
    return str(subnet.get("name") or "?")
