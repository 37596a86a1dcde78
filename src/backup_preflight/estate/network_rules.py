"""NSG rules, address prefixes, ports and service tags of the outbound path, compiled and matched.

Pure and I/O-free; used by `network.NetworkModel` for the NIC and subnet NSG stages, and by
`network_routes` for the prefixes of routes. Each match answers True, False or None (cannot be
proven either way), with the reason when undecidable.

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
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cache

_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_EVERYTHING = frozenset({"*", "any", "0.0.0.0/0"})
# Tags whose address space is known not to hold public Azure service endpoints.
_PRIVATE_TAGS = frozenset({"virtualnetwork", "azureloadbalancer"})
# Raw rule fields a compiled rule depends on (its interning key).
_RULE_FIELDS = (
    "direction", "priority", "access", "protocol", "destinationPortRange", "destinationPortRanges",
    "destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups",
    "sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups",
)


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


_Finding = tuple[bool | None, str]


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


# ---------------------------------------------------------------- small parsers


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


def _networks(single: object, plural: object) -> tuple[_IpNetwork, ...]:
    nets = []
    for value in _strings(single, plural):
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue
    return tuple(nets)


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
