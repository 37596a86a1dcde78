"""Outbound reachability of Azure Backup endpoints from a VM's NICs, decided from Resource Graph rows.

Pure and I/O-free. For every NIC the path is: the NIC's NSG, then its subnet's NSG (both must allow),
then the subnet's route table, then the subnet's default outbound access. Each stage answers True
(allowed), False (blocked) or None (cannot be proven either way), with a sentence naming exactly what
decided. Results are three-valued so that anything the scanner cannot see (specific CIDRs against a
service tag, application security groups, appliances behind a UDR, missing rows) surfaces as unknown,
never as a guessed pass or a false failure.

Scale: 100,000 VMs share a few hundred NSGs and subnets, so each NSG and route table is compiled once
into sorted tuples (NSGs with identical rules, such as per-VM portal NSGs, share one decided rule set),
NSG verdicts are cached per (NSG, level, subnet prefixes, endpoints in the region), and
the whole per-NIC verdict is cached per (NIC NSG, subnet, NIC egress, region, endpoints, declared) and
shared, as the same `Verdict` object, by every NIC behind that combination.

Conservative choices (decided here, documented once):

* Source fields: `*`, `Any`, `0.0.0.0/0` and `VirtualNetwork` match every VM. A CIDR source matches
  when it contains every address prefix of the VM's subnet, does not match when it is disjoint from all
  of them, and is undecidable otherwise; other source tags and source ASGs are undecidable. An
  undecidable rule only makes the result unknown if it could change it (see next point).
* An undecidable rule is kept as "may match". The first rule that definitely matches decides only if
  no earlier "may match" rule has the opposite access; otherwise the result is unknown and the
  evidence names the undecidable rule. (An undecidable Allow before a decisive Allow changes nothing.)
* Endpoint service tags are public Azure service tags: `Internet`, `*`, `0.0.0.0/0` and `AzureCloud`
  (global or in the VM's region) cover them; `VirtualNetwork` and `AzureLoadBalancer` do not; the same
  tag, global or in the VM's region, covers it and the same tag in another region does not; anything
  else is undecidable. For an endpoint IP/CIDR, a containing CIDR covers and a disjoint one does not;
  `Internet` covers (and `VirtualNetwork` does not cover) a public IP; other tags are undecidable.
* The primary IP configuration (or the first one) carries outbound traffic: its subnet, public IP
  and load-balancer backend pools are what count.
* Routes for a service tag: the same tag in the VM's region, then the global tag, then `AzureCloud`,
  then `0.0.0.0/0`; other CIDR routes cannot be proven to cover a tag and are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_VNET_TYPE = "microsoft.network/virtualnetworks"
_SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
_EVERYTHING = frozenset({"*", "any", "0.0.0.0/0"})
_DEVICE_HOPS = frozenset({"virtualappliance", "virtualnetworkgateway"})
_PASS_HOPS = frozenset({"internet", "vnetlocal"})
# Tags whose address space is known not to hold public Azure service endpoints.
_PRIVATE_TAGS = frozenset({"virtualnetwork", "azureloadbalancer"})
# Raw rule fields a compiled rule depends on (its interning key).
_RULE_FIELDS = (
    "direction", "priority", "access", "protocol", "destinationPortRange", "destinationPortRanges",
    "destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups",
    "sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups",
)


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


@dataclass(frozen=True, slots=True)
class _Target:
    """An endpoint pre-parsed once per evaluation: tag (base, region) or network."""

    label: str
    destination: str
    port: int
    protocol: str
    tag: str
    tag_region: str
    net: _IpNetwork | None


@dataclass(frozen=True, slots=True)
class _Prefix:
    """An address prefix of a rule or route, parsed once: lowercase text, tag split, or network."""

    raw: str
    lower: str
    tag: str
    tag_region: str
    net: _IpNetwork | None


@dataclass(frozen=True, slots=True)
class _Rule:
    """One outbound NSG rule compiled for repeated matching."""

    name: str
    priority: int
    allow: bool
    origin: str  # "", "default rule" or "documented default rule"
    protocol: str  # lowercase; "" when missing
    ports: tuple[tuple[int, int], ...]
    bad_ports: tuple[str, ...]
    destinations: tuple[_Prefix, ...]
    destination_asgs: bool
    sources: tuple[_Prefix, ...]
    source_asgs: bool
    direction_known: bool

    def describe(self) -> str:
        extra = f", {self.origin}" if self.origin else ""
        return f"rule '{self.name}' (priority {self.priority}, {'Allow' if self.allow else 'Deny'}{extra})"


_Decision = tuple[bool | None, _Rule | None, _Rule | None, str]


@dataclass(frozen=True, slots=True, eq=False)
class _RuleSet:
    """Sorted outbound rules, shared by every NSG with the same rules (per-VM NSGs mostly are identical),
    so each distinct rule set is decided once per (subnet prefixes, endpoint)."""

    rules: tuple[_Rule, ...]
    decisions: dict[tuple[tuple[_IpNetwork, ...], _Target], _Decision] = field(default_factory=dict)

    def decide(self, target: _Target, prefixes: tuple[_IpNetwork, ...]) -> _Decision:
        """(value, deciding rule, undecidable rule that blocks a decision, its reason)."""
        key = (prefixes, target)
        decision = self.decisions.get(key)
        if decision is None:
            decision = self.decisions[key] = _decide(self.rules, target, prefixes)
        return decision


@dataclass(frozen=True, slots=True)
class _Nsg:
    name: str
    rules: _RuleSet
    problem: str  # non-empty when the NSG cannot be assessed at all


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


_Finding = tuple[bool | None, str]


class NetworkModel:
    """Outbound verdicts for NICs over one inventory of Resource Graph rows, with shared caches."""

    def __init__(self, rows_by_id: Mapping[str, dict]) -> None:
        """rows_by_id: lowercase ARM id -> ARG row, for all rows of the `resources` table (NICs, VNets, NSGs,
        route tables, public IPs, NAT gateways...). Builds a subnet index from VNet rows'
        properties.subnets[] (and from standalone microsoft.network/virtualnetworks/subnets rows if
        present)."""
        self._rows = rows_by_id
        self._subnets: dict[str, dict] = {}
        for row in rows_by_id.values():
            kind = row.get("type")
            if kind == _VNET_TYPE:
                for subnet in _props(row).get("subnets") or ():
                    sid = subnet.get("id") if isinstance(subnet, dict) else None
                    if isinstance(sid, str):
                        self._subnets[sid.lower()] = subnet  # embedded copy wins over a standalone row
            elif kind == _SUBNET_TYPE and isinstance(row.get("id"), str):
                self._subnets.setdefault(row["id"].lower(), row)
        self._nsgs: dict[str, _Nsg | None] = {}
        self._rule_sets: dict[tuple[_Rule, ...], _RuleSet] = {}
        self._rules: dict[tuple, _Rule | None] = {}
        self._route_tables: dict[str, _RouteTable | None] = {}
        self._nsg_findings: dict[tuple, tuple[_Finding, ...]] = {}
        self._verdicts: dict[tuple, Verdict] = {}

    def outbound(
        self,
        nic_ids: Sequence[str],
        region: str,
        endpoints: Sequence[Endpoint],
        *,
        egress_device_declared: bool = False,
    ) -> Verdict:
        """All NICs (each must reach every endpoint) → one three-valued verdict: False if any NIC/endpoint
        is blocked, else None if any is unknown, else True. Evidence lists the deciding items (for a
        pass: one short line per NIC is fine)."""
        if not nic_ids:
            return Verdict(None, ("the VM has no network interfaces to assess",))
        region_key = region.replace(" ", "").lower()
        eps = tuple(endpoints)
        if len(nic_ids) == 1:
            return self._nic_verdict(nic_ids[0], region_key, eps, egress_device_declared)
        per_nic = [
            (nic_id, self._nic_verdict(nic_id, region_key, eps, egress_device_declared)) for nic_id in nic_ids
        ]
        value = _and(v.value for _, v in per_nic)
        evidence = tuple(
            f"NIC '{_last_segment(nic_id)}': {line}"
            for nic_id, verdict in per_nic
            if verdict.value is value
            for line in verdict.evidence
        )
        return Verdict(value, evidence)

    def _nic_verdict(self, nic_id: str, region: str, eps: tuple[Endpoint, ...], declared: bool) -> Verdict:
        """Resolve the NIC to its cache key; the shared verdict for that key is computed at most once."""
        nic = self._rows.get(nic_id.lower())
        if nic is None:
            return Verdict(None, (f"NIC {nic_id} is referenced but not in the collected rows",))
        props = _props(nic)
        ipconfigs = [c for c in props.get("ipConfigurations") or () if isinstance(c, dict)]
        primary = next((c for c in ipconfigs if _props(c).get("primary") is True), None)
        ipconfig = _props(primary or (ipconfigs[0] if ipconfigs else {}))
        subnet_id = _ref(ipconfig, "subnet")
        if not subnet_id:
            name = nic.get("name") or _last_segment(nic_id)
            return Verdict(None, (f"NIC '{name}' has no IP configuration with a subnet; not assessed",))
        key = (
            _ref(props, "networkSecurityGroup").lower(),
            subnet_id.lower(),
            bool(_ref(ipconfig, "publicIPAddress")),
            bool(ipconfig.get("loadBalancerBackendAddressPools")),
            region,
            eps,
            declared,
        )
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._evaluate(*key)
        return verdict

    def _evaluate(
        self,
        nic_nsg_id: str,
        subnet_id: str,
        has_public_ip: bool,
        in_lb_pool: bool,
        region: str,
        eps: tuple[Endpoint, ...],
        declared: bool,
    ) -> Verdict:
        """Evaluate one (NIC NSG, subnet, NIC egress, region, endpoints, declared) combination."""
        targets = tuple(_target(ep, region) for ep in eps)
        subnet = self._subnets.get(subnet_id)
        per_target: list[list[_Finding]] = [[] for _ in targets]
        subnet_prefixes: tuple[_IpNetwork, ...] = ()
        if subnet is not None:
            sprops = _props(subnet)
            subnet_prefixes = _networks(sprops.get("addressPrefix"), sprops.get("addressPrefixes"))
        self._nsg_stage(nic_nsg_id, "on the NIC", subnet_prefixes, targets, per_target)
        if subnet is None:
            for findings in per_target:
                findings.append((None, f"subnet {subnet_id} is referenced but not in the collected rows"))
        else:
                self._subnet_stages(subnet, subnet_prefixes, has_public_ip, in_lb_pool, targets, declared, per_target)
        return _verdict(targets, per_target)

    def _subnet_stages(
        self,
        subnet: dict,
        prefixes: tuple[_IpNetwork, ...],
        has_public_ip: bool,
        in_lb_pool: bool,
        targets: tuple[_Target, ...],
        declared: bool,
        per_target: list[list[_Finding]],
    ) -> None:
        """Subnet NSG, then routing, then default outbound access, appended per endpoint."""
        sprops = _props(subnet)
        label = _subnet_label(subnet)
        nsg_id = _ref(sprops, "networkSecurityGroup").lower()
        self._nsg_stage(nsg_id, f"on subnet '{label}'", prefixes, targets, per_target)
        rt_id = _ref(sprops, "routeTable")
        table = self._route_table(rt_id.lower()) if rt_id else None
        private_subnet = sprops.get("defaultOutboundAccess") in (False, "false", "False")
        nat = _ref(sprops, "natGateway")
        endpoints = _service_endpoints(sprops)
        for target, findings in zip(targets, per_target, strict=True):
            via_device = False
            if not rt_id:
                findings.append((True, f"no route table on subnet '{label}' (system routes)"))
            elif table is None:
                findings.append((None, f"route table {rt_id} is referenced but not in the collected rows"))
            elif table.problem:
                findings.append((None, f"route table '{table.name}' cannot be assessed: {table.problem}"))
            else:
                found, via_device = _route_finding(table, target, declared)
                findings.append(found)
            if private_subnet and not via_device:
                if f"microsoft.{target.tag}" in endpoints:
                    findings.append((True, f"subnet '{label}' has no default outbound access; "
                                           f"{target.destination} is reached through its service endpoint"))
                else:
                    findings.append(_private_subnet_finding(label, nat, has_public_ip, in_lb_pool))

    def _nsg_stage(
        self,
        nsg_id: str,
        level: str,
        prefixes: tuple[_IpNetwork, ...],
        targets: tuple[_Target, ...],
        per_target: list[list[_Finding]],
    ) -> None:
        """Append one finding per endpoint for the NSG at one level (none there: allowed at that level).

        Findings are cached per (NSG, level, subnet prefixes, endpoints in this region), so an NSG shared by many
        subnets or NICs is matched once per distinct context.
        """
        if not nsg_id:
            for findings in per_target:
                findings.append((True, f"no NSG {level}"))
            return
        key = (nsg_id, level, prefixes, targets)
        cached = self._nsg_findings.get(key)
        if cached is None:
            nsg = self._nsg(nsg_id)
            if nsg is None:
                miss = (None, f"NSG {nsg_id} ({level}) is referenced but not in the collected rows")
                cached = tuple(miss for _ in targets)
            else:
                cached = tuple(_nsg_finding(nsg, level, target, prefixes) for target in targets)
            self._nsg_findings[key] = cached
        for findings, found in zip(per_target, cached, strict=True):
            findings.append(found)

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
        name = row.get("name") or _last_segment(nsg_id)
        props = row.get("properties")
        if not isinstance(props, dict):
            return _Nsg(name, _RuleSet(()), "the row has no properties, so its rules are unknown")
        rules: list[_Rule] = []
        problems: list[str] = []
        for raws, origin in ((props.get("securityRules"), ""), (props.get("defaultSecurityRules"), "default rule")):
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


def _verdict(targets: tuple[_Target, ...], per_target: list[list[_Finding]]) -> Verdict:
    """Fold per-endpoint findings into one verdict; evidence keeps only the findings of the deciding value.

    Blocking and unknown sentences are grouped by sentence with the endpoints they concern; a pass is
    one line per group of endpoints that were allowed through the same rules and routes.
    """
    value = _and(v for findings in per_target for v, _ in findings)
    groups: dict[object, list[str]] = {}
    for target, findings in zip(targets, per_target, strict=True):
        if value is True:
            groups.setdefault(tuple(text for _, text in findings), []).append(target.label)
        else:
            for v, text in findings:
                if v is value:
                    groups.setdefault(text, []).append(target.label)
    if value is True:
        lines = tuple(f"{', '.join(labels)}: allowed — {'; '.join(t)}" for t, labels in groups.items())
        return Verdict(True, lines or ("no endpoints to check",))
    return Verdict(value, tuple(f"{', '.join(labels)}: {text}" for text, labels in groups.items()))


# ---------------------------------------------------------------- NSG


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _compile_rule(raw: dict, props: dict, origin: str) -> _Rule | None:
    """Compile one outbound rule, or None when its priority/access is unusable."""
    name = str(raw.get("name") or "?")
    direction = str(props.get("direction") or "").lower()
    priority = props.get("priority")
    access = str(props.get("access") or "").lower()
    if isinstance(priority, str) and priority.isdigit():
        priority = int(priority)
    if not isinstance(priority, int) or isinstance(priority, bool) or access not in ("allow", "deny"):
        return None
    ports: list[tuple[int, int]] = []
    bad_ports: list[str] = []
    for value in _strings(props.get("destinationPortRange"), props.get("destinationPortRanges")):
        parsed = _port_range(value)
        if parsed is None:
            bad_ports.append(value)
        else:
            ports.append(parsed)
    return _Rule(
        name=name,
        priority=priority,
        allow=access == "allow",
        origin=origin,
        protocol=str(props.get("protocol") or "").lower(),
        ports=tuple(ports),
        bad_ports=tuple(bad_ports),
        destinations=_prefixes(props, "destinationAddressPrefix"),
        destination_asgs=bool(props.get("destinationApplicationSecurityGroups")),
        sources=_prefixes(props, "sourceAddressPrefix"),
        source_asgs=bool(props.get("sourceApplicationSecurityGroups")),
        direction_known=bool(direction),
    )


def _decide(rules: tuple[_Rule, ...], target: _Target, prefixes: tuple[_IpNetwork, ...]) -> _Decision:
    """First definite match wins unless an earlier undecidable rule with the opposite access may match."""
    maybe: list[tuple[_Rule, str]] = []
    for rule in rules:
        matched, why = _rule_matches(rule, target, prefixes)
        if matched is False:
            continue
        if matched is None:
            maybe.append((rule, why))
            continue
        flip = next(((r, w) for r, w in maybe if r.allow != rule.allow), None)
        if flip:
            return None, rule, flip[0], flip[1]
        return rule.allow, rule, None, ""
    if maybe:
        return None, None, maybe[0][0], maybe[0][1]
    return None, None, None, ""


def _nsg_finding(nsg: _Nsg, level: str, target: _Target, prefixes: tuple[_IpNetwork, ...]) -> _Finding:
    """The NSG's decision for one endpoint as an evidence sentence naming the NSG, level and rule."""
    where = f"NSG '{nsg.name}' {level}"
    if nsg.problem:
        return None, f"{where} cannot be assessed: {nsg.problem}"
    value, rule, doubt, reason = nsg.rules.decide(target, prefixes)
    if rule is None:
        if doubt is None:
            return None, f"{where}: no outbound rule matches"
        return None, f"{where}: no rule definitely matches; {doubt.describe()} may match ({reason})"
    if doubt is not None:
        return None, (
            f"{where}: {doubt.describe()} may match ({reason}), so {rule.describe()} cannot be proven to decide"
        )
    note = "; the row has no defaultSecurityRules, Azure's documented defaults applied" if (
        rule.origin == "documented default rule") else ""
    return value, f"{'' if value else 'blocked by '}{where} {rule.describe()}{note}"


def _rule_matches(rule: _Rule, target: _Target, prefixes: tuple[_IpNetwork, ...]) -> tuple[bool | None, str]:
    """Three-valued match of one rule against one endpoint, with the reason when undecidable."""
    unknown = ""
    if not rule.direction_known:
        unknown = "the rule has no direction"
    if rule.protocol not in ("*", "any", target.protocol):
        if rule.protocol:
            return False, ""
        unknown = unknown or "the rule has no protocol"
    if not any(lo <= target.port <= hi for lo, hi in rule.ports):
        if rule.ports and not rule.bad_ports:
            return False, ""
        bad = f"destination port '{rule.bad_ports[0]}' cannot be parsed" if rule.bad_ports else ""
        unknown = unknown or bad or "the rule has no destination port"
    dest, why = _any_covers(rule.destinations, target)
    if dest is False and rule.destinations and not rule.destination_asgs:
        return False, ""
    if dest is not True:
        unknown = unknown or why or (
            "destination application security groups cannot be resolved"
            if rule.destination_asgs else "the rule has no destination"
        )
    source, why = _source_matches(rule, prefixes)
    if source is False:
        return False, ""
    if source is None:
        unknown = unknown or why
    return (None, unknown) if unknown else (True, "")


def _any_covers(prefixes: tuple[_Prefix, ...], target: _Target) -> tuple[bool | None, str]:
    """Union of destination prefixes: True if one covers the endpoint, None if one is undecidable."""
    result: bool | None = False
    why = ""
    for prefix in prefixes:
        covered = _covers(prefix, target)
        if covered:
            return True, ""
        if covered is None and result is False:
            result = None
            why = f"destination '{prefix.raw}' cannot be proven to cover or exclude {target.destination}"
    if target.net is None and _union_is_everything(prefixes):
        return True, ""  # e.g. 0.0.0.0/1 + 128.0.0.0/1: together they are 0.0.0.0/0
    return result, why


def _union_is_everything(prefixes: tuple[_Prefix, ...]) -> bool:
    """Do the IPv4 prefixes of a plural destination together cover the whole address space?"""
    v4 = [p.net for p in prefixes if isinstance(p.net, ipaddress.IPv4Network)]
    return len(v4) > 1 and any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(v4))


def _covers(prefix: _Prefix, target: _Target) -> bool | None:
    """Does a rule/route destination prefix cover the endpoint destination? (see module docstring)."""
    if prefix.lower in ("*", "any") or (prefix.lower == "0.0.0.0/0" and target.net is None):
        return True
    if target.net is None:  # endpoint is a service tag
        if prefix.net is not None:
            return None
        if prefix.lower == "internet":
            return True
        if prefix.tag in _PRIVATE_TAGS:
            return False
        if prefix.tag in (target.tag, "azurecloud"):
            return not prefix.tag_region or prefix.tag_region == target.tag_region
        return None
    if prefix.net is not None:  # endpoint is an address range
        if prefix.net.version != target.net.version or not prefix.net.overlaps(target.net):
            return False
        return True if target.net.subnet_of(prefix.net) else None  # type: ignore[arg-type]
    if target.net.is_global and prefix.lower in ("internet", "virtualnetwork"):
        return prefix.lower == "internet"
    return None


def _source_matches(rule: _Rule, prefixes: tuple[_IpNetwork, ...]) -> tuple[bool | None, str]:
    """Does the rule's source include this VM? Judged against the subnet's address prefixes."""
    if not rule.sources and not rule.source_asgs:
        return None, "the rule has no source"
    result: bool | None = False
    why = ""
    for source in rule.sources:
        if source.lower in _EVERYTHING or source.lower == "virtualnetwork":
            return True, ""
        matched: bool | None = None
        if source.net is not None and prefixes:
            if all(p.version == source.net.version and p.subnet_of(source.net) for p in prefixes):  # type: ignore[arg-type]
                return True, ""
            if not any(p.version == source.net.version and p.overlaps(source.net) for p in prefixes):
                matched = False
        if matched is None and result is False:
            result, why = None, f"source '{source.raw}' cannot be proven to include or exclude this VM"
    if rule.source_asgs and result is False:
        result, why = None, "source application security groups cannot be resolved"
    return result, why


# ---------------------------------------------------------------- routes and default outbound


def _compile_route_table(row: dict, rt_id: str) -> _RouteTable:
    name = row.get("name") or _last_segment(rt_id)
    props = row.get("properties")
    if not isinstance(props, dict):
        return _RouteTable(name, (), "the row has no properties, so its routes are unknown")
    routes = []
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


# ---------------------------------------------------------------- small parsers


def _props(obj: dict) -> dict:
    props = obj.get("properties")
    return props if isinstance(props, dict) else {}


def _ref(props: dict, key: str) -> str:
    """The `.id` of a sub-resource reference, or ''."""
    ref = props.get(key)
    rid = ref.get("id") if isinstance(ref, dict) else None
    return rid if isinstance(rid, str) else ""


def _strings(single: object, plural: object) -> list[str]:
    """Union of a singular field and its plural list (ARM allows either or both)."""
    values = [single] if isinstance(single, str) and single else []
    if isinstance(plural, list):
        values.extend(v for v in plural if isinstance(v, str) and v)
    return values


def _prefixes(props: dict, singular: str) -> tuple[_Prefix, ...]:
    """Parsed union of `<singular>` and `<singular>es` (e.g. destinationAddressPrefix/-Prefixes)."""
    return tuple(map(_prefix, _strings(props.get(singular), props.get(singular + "es"))))


def _port_range(value: str) -> tuple[int, int] | None:
    text = value.strip()
    if text.lower() in ("*", "any"):
        return 0, 65535
    lo, _, hi = text.partition("-")
    if lo.strip().isdigit() and (not hi or hi.strip().isdigit()):
        return int(lo), int(hi or lo)
    return None


@cache
def _prefix(raw: str) -> _Prefix:
    """Parse a prefix once per distinct string: estates repeat a few thousand prefixes across all NSGs."""
    lower = raw.strip().lower()
    net: _IpNetwork | None = None
    if lower[:1].isdigit() or ":" in lower:  # tags never start with a digit nor contain ':'
        try:
            net = ipaddress.ip_network(lower, strict=False)
        except ValueError:
            net = None
    tag, _, tag_region = ("", "", "") if net is not None else lower.partition(".")
    return _Prefix(raw, lower, tag, tag_region.replace(" ", ""), net)


def _target(ep: Endpoint, region: str) -> _Target:
    """Parse an endpoint; a global tag (`Storage`) means that tag in the VM's region."""
    prefix = _prefix(ep.destination)
    region = prefix.tag_region or region
    return _Target(str(ep), ep.destination, ep.port, ep.protocol.lower(), prefix.tag, region, prefix.net)


def _networks(single: object, plural: object) -> tuple[_IpNetwork, ...]:
    nets = []
    for value in _strings(single, plural):
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue
    return tuple(nets)


def _last_segment(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _subnet_label(subnet: dict) -> str:
    """`vnet/subnet` from the subnet's own id, as Azure spells it."""
    parts = str(subnet.get("id") or "").split("/")
    lowered = [p.lower() for p in parts]
    if "virtualnetworks" in lowered:
        i = lowered.index("virtualnetworks")
        if i + 3 < len(parts):
            return f"{parts[i + 1]}/{parts[i + 3]}"
    return str(subnet.get("name") or "?")


# Azure's documented outbound default rules, used when a row carries no defaultSecurityRules.
_DOCUMENTED_RULES = tuple(
    _Rule(name, priority, allow, "documented default rule", "*", ((0, 65535),), (), (_prefix(dest),), False,
          (_prefix("*"),), False, True)
    for name, priority, allow, dest in (
        ("AllowVnetOutBound", 65000, True, "VirtualNetwork"),
        ("AllowInternetOutBound", 65001, True, "Internet"),
        ("DenyAllOutBound", 65500, False, "*"),
    )
)
