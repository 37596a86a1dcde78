"""Outbound reachability of Azure Backup endpoints from a VM's NICs, decided from Resource Graph rows.

Pure and I/O-free. For every NIC the path is: the NIC's NSG, then its subnet's NSG (both must allow),
then the subnet's route table, then the subnet's default outbound access. Each stage answers True
(allowed), False (blocked) or None (cannot be proven either way), with a sentence naming exactly what
decided. Results are three-valued so that anything the scanner cannot see (specific CIDRs against a
service tag, application security groups, appliances behind a UDR, missing rows) surfaces as unknown,
never as a guessed pass or a false failure.

This module holds the public `Endpoint`, `Verdict` and `NetworkModel` with its caches; NSG rules,
prefixes, ports and service tags are compiled and matched in `network_rules`, routes and default
outbound access in `network_routes` (each documents its own conservative choices).

Scale: 100,000 VMs share a few hundred NSGs and subnets, so each NSG and route table is compiled once
into sorted tuples (NSGs with identical rules, such as per-VM portal NSGs, share one decided rule set),
NSG verdicts are cached per (NSG, level, subnet prefixes, endpoints in the region), and
the whole per-NIC verdict is cached per (NIC NSG, subnet, NIC egress, region, endpoints, declared) and
shared, as the same `Verdict` object, by every NIC behind that combination.

Conservative choices (decided here, documented once):

* The primary IP configuration (or the first one) carries outbound traffic: its subnet, public IP
  and load-balancer backend pools are what count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from backup_preflight.estate.index import last_segment as _last_segment
from backup_preflight.estate.index import props as _props
from backup_preflight.estate.network_routes import (
    _compile_route_table,
    _private_subnet_finding,
    _route_finding,
    _RouteTable,
    _service_endpoints,
)
from backup_preflight.estate.network_rules import (
    _DOCUMENTED_RULES,
    _RULE_FIELDS,
    _compile_rule,
    _Finding,
    _hashable,
    _IpNetwork,
    _networks,
    _Nsg,
    _nsg_finding,
    _prefix,
    _Rule,
    _RuleSet,
    _Target,
)

_VNET_TYPE = "microsoft.network/virtualnetworks"
_SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"


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
                subnets = _props(row).get("subnets")
                for subnet in subnets if isinstance(subnets, list) else ():  # else unresolved: unknown
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
        raw_configs = props.get("ipConfigurations")
        if raw_configs is not None and not isinstance(raw_configs, list):
            return Verdict(None, (f"NIC {nic_id}: ipConfigurations is not an array; not assessed",))
        ipconfigs = [c for c in raw_configs or () if isinstance(c, dict)]
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


# ---------------------------------------------------------------- small parsers


def _ref(props: dict, key: str) -> str:
    """The `.id` of a sub-resource reference, or ''."""
    ref = props.get(key)
    rid = ref.get("id") if isinstance(ref, dict) else None
    return rid if isinstance(rid, str) else ""


def _target(ep: Endpoint, region: str) -> _Target:
    """Parse an endpoint; a global tag (`Storage`) means that tag in the VM's region."""
    prefix = _prefix(ep.destination)
    region = prefix.tag_region or region
    return _Target(str(ep), ep.destination, ep.port, ep.protocol.lower(), prefix.tag, region, prefix.net)


def _subnet_label(subnet: dict) -> str:
    """`vnet/subnet` from the subnet's own id, as Azure spells it."""
    parts = str(subnet.get("id") or "").split("/")
    lowered = [p.lower() for p in parts]
    if "virtualnetworks" in lowered:
        i = lowered.index("virtualnetworks")
        if i + 3 < len(parts):
            return f"{parts[i + 1]}/{parts[i + 3]}"
    return str(subnet.get("name") or "?")
