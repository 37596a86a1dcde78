"""NSG rules, address prefixes, ports and service tags of the outbound path, compiled and matched.

Pure and I/O-free; used by `network.NetworkModel` for the NIC and subnet NSG stages, and by
`network_routes` for the prefixes of routes. Each match answers True, False or None (cannot be
proven either way), with the reason when undecidable.

Every match is decided per destination address: a rule's destination is an address set, and the
NSG's answer is a partition of the endpoint's addresses (see `addresses`) into allowed, blocked and
unknown parts, each with the sentence naming the rule that decided it.

Semantics (decided here, documented once):

* An endpoint service tag (`Storage`, meaning `Storage.<VM region>`) is the set of addresses the
  service-tag file lists for it; without a file, any public IPv4 address (the tag's prefixes are
  public and the backup extension reaches Storage over IPv4). A rule or route that treats part of
  that set differently from the rest leaves the verdict unknown, naming it.
* Destinations: `*`, `Any` and `0.0.0.0/0` cover everything; a CIDR covers its addresses;
  `Internet` covers every public address; `AzureLoadBalancer` and application security groups hold
  private addresses only (NIC addresses), so they never cover a service tag. `VirtualNetwork` holds
  private addresses (VNet space, peered and on-premises spaces) and, as Azure documents, "address
  prefixes used on user-defined routes. This tag might also contain default routes": it surely covers
  the prefixes of the subnet's routes to a virtual appliance (where the tag is seen to hold them), may
  cover those of its other routes, and may cover everything when the route table has a default route
  (0.0.0.0/0), cannot be read, or the VNet learns on-premises routes over BGP and no default route
  from there is assumed absent. The endpoint's own tag (global or in the VM's region) and `AzureCloud` (global or in
  the VM's region) cover it entirely, the same tag in another region not at all; any other tag
  covers exactly its prefixes in the service-tag file, and without the file may cover any address.
* Source fields: `*`, `Any`, `0.0.0.0/0` and `VirtualNetwork` match every VM. A CIDR source matches
  when it contains every address prefix of the VM's subnet, does not match when it is disjoint from all
  of them, and is undecidable otherwise; other source tags and source ASGs are undecidable.
* An undecidable rule is kept as "may match" for the addresses it may cover. The first rule that
  definitely matches an address decides it, unless an earlier "may match" rule of the opposite access
  covers that address too; then that address is unknown and the evidence names the undecidable rule.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from backup_preflight.estate.addresses import (
    ALL,
    EMPTY,
    NOT_PUBLIC,
    PUBLIC_V4,
    Span,
    intersect,
    network_span,
    subtract,
    union,
)

if TYPE_CHECKING:
    from backup_preflight.service_tags import ServiceTags

_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_EVERYTHING = frozenset({"*", "any", "0.0.0.0/0"})
# Tags whose address space is known not to hold public Azure service endpoints.
_VNET = "virtualnetwork"
_PRIVATE_TAGS = frozenset({_VNET, "azureloadbalancer"})
# Raw rule fields a compiled rule depends on (its interning key).
_RULE_FIELDS = (
    "direction", "priority", "access", "protocol", "destinationPortRange", "destinationPortRanges",
    "destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups",
    "sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups",
)


@dataclass(frozen=True, slots=True)
class _Target:
    """An endpoint pre-parsed once per model: tag (base, region) or network, and its address set.

    `universe` holds every address the endpoint may be; `scope` says in words where it came from,
    for evidence when its addresses are treated differently; `tags` are the model's service tags.
    All three follow from the other fields within one model, so they take no part in equality.
    """

    label: str
    destination: str
    port: int
    protocol: str
    tag: str
    tag_region: str
    net: _IpNetwork | None
    universe: Span = field(default=ALL, compare=False)
    scope: str = field(default="", compare=False)
    tags: ServiceTags | None = field(default=None, compare=False)


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


#: Part of an endpoint's addresses, its value (True allowed, False blocked, None unknown) and why.
_Piece = tuple[Span, bool | None, str]
_Finding = tuple[bool | None, str]
#: The first "may match" Allow and Deny rules seen so far for some addresses, with their reasons.
_Doubt = tuple[tuple[_Rule, str] | None, tuple[_Rule, str] | None]
_Outcome = tuple[Span, bool | None, _Rule | None, tuple[_Rule, str] | None]


@dataclass(frozen=True, slots=True)
class VnetTag:
    """What the `VirtualNetwork` tag holds on one subnet beyond private addresses (see module docstring)."""

    #: The prefixes of the subnet's routes to a virtual appliance: in the tag.
    sure: tuple[_Prefix, ...] = ()
    #: The prefixes of its other routes: Azure names "address prefixes used on user-defined routes", but only those
    #: of routes to an appliance are seen in the tag, so these may or may not be.
    maybe: tuple[_Prefix, ...] = ()
    #: Why any address may be in it ('' when none): a route table that cannot be read, on-premises routes.
    anything: str = ""
    #: The route table's name, for the evidence.
    table: str = ""


NO_ROUTES = VnetTag()


@dataclass(frozen=True, slots=True, eq=False)
class _RuleSet:
    """Sorted outbound rules, shared by every NSG with the same rules (per-VM NSGs mostly are identical),
    so each distinct rule set is decided once per (subnet prefixes, endpoint)."""

    rules: tuple[_Rule, ...]
    decisions: dict[tuple[tuple[_IpNetwork, ...], _Target, VnetTag], tuple[_Outcome, ...]] = field(
        default_factory=dict)

    def decide(self, target: _Target, prefixes: tuple[_IpNetwork, ...], vnet: VnetTag) -> tuple[_Outcome, ...]:
        """The endpoint's addresses partitioned by (value, deciding rule, undecidable rule that blocks it)."""
        key = (prefixes, target, vnet)
        decision = self.decisions.get(key)
        if decision is None:
            decision = self.decisions[key] = _decide(self.rules, target, prefixes, vnet)
        return decision


@dataclass(frozen=True, slots=True)
class _Nsg:
    name: str
    rules: _RuleSet
    problem: str  # non-empty when the NSG cannot be assessed at all


# ---------------------------------------------------------------- NSG


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _compile_rule(raw: dict, props: dict, origin: str) -> _Rule | None:
    """Compile one outbound rule, or None when its priority/access is unusable."""
    name = str(raw.get("name") or "?")
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
        direction_known=bool(props.get("direction")),
    )


def _decide(rules: tuple[_Rule, ...], target: _Target, prefixes: tuple[_IpNetwork, ...],
            vnet: VnetTag) -> tuple[_Outcome, ...]:
    """Walk the rules by priority over the endpoint's addresses still undecided (see module docstring)."""
    undecided: dict[_Doubt, Span] = {(None, None): target.universe}
    decided: list[_Outcome] = []
    for rule in rules:
        mode, why = _rule_mode(rule, target, prefixes)
        if mode is False:
            continue
        definite, maybe, dest_why = _destination_sets(rule, target, vnet)
        if mode is None:
            definite, maybe = EMPTY, union((definite, maybe))
        else:
            why = dest_why
        if not definite and not maybe:
            continue
        later: dict[_Doubt, Span] = {}
        for doubt, span in undecided.items():
            hit = intersect(span, definite)
            if hit:
                opposite = doubt[0] if not rule.allow else doubt[1]
                decided.append((hit, None if opposite else rule.allow, rule, opposite))
                span = subtract(span, hit)
            may = intersect(span, maybe)
            if may:
                span = subtract(span, may)
                grown = (doubt[0] or ((rule, why) if rule.allow else None),
                         doubt[1] or (None if rule.allow else (rule, why)))
                later[grown] = union((later.get(grown, EMPTY), may))
            if span:
                later[doubt] = union((later.get(doubt, EMPTY), span))
        undecided = later
        if not undecided:
            break
    decided.extend((span, None, None, doubt[0] or doubt[1]) for doubt, span in undecided.items())
    return tuple(decided)


def _nsg_pieces(nsg: _Nsg, level: str, target: _Target, prefixes: tuple[_IpNetwork, ...],
                vnet: VnetTag) -> tuple[_Piece, ...]:
    """The NSG's decision for one endpoint, per part of its addresses, as sentences naming NSG, level and rule."""
    where = f"NSG '{nsg.name}' {level}"
    if nsg.problem:
        return ((target.universe, None, f"{where} cannot be assessed: {nsg.problem}"),)
    grouped: dict[tuple[bool | None, str], list[Span]] = {}
    for span, value, rule, doubt in nsg.rules.decide(target, prefixes, vnet):
        grouped.setdefault((value, _sentence(where, value, rule, doubt)), []).append(span)
    return tuple((union(spans), value, text) for (value, text), spans in grouped.items())


def _sentence(where: str, value: bool | None, rule: _Rule | None, doubt: tuple[_Rule, str] | None) -> str:
    if rule is None:
        if doubt is None:
            return f"{where}: no outbound rule matches"
        return f"{where}: no rule definitely matches; {doubt[0].describe()} may match ({doubt[1]})"
    if doubt is not None:
        return (f"{where}: {doubt[0].describe()} may match ({doubt[1]}), "
                f"so {rule.describe()} cannot be proven to decide")
    note = "; the row has no defaultSecurityRules, Azure's documented defaults applied" if (
        rule.origin == "documented default rule") else ""
    return f"{'' if value else 'blocked by '}{where} {rule.describe()}{note}"


def _rule_mode(rule: _Rule, target: _Target, prefixes: tuple[_IpNetwork, ...]) -> tuple[bool | None, str]:
    """Does the rule apply to this VM, protocol and port (whatever the address)? With the reason when undecidable."""
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
    source, why = _source_matches(rule, prefixes)
    if source is False:
        return False, ""
    if source is None:
        unknown = unknown or why
    return (None, unknown) if unknown else (True, "")


def _destination_sets(rule: _Rule, target: _Target, vnet: VnetTag) -> tuple[Span, Span, str]:
    """(addresses the rule's destination surely covers, addresses it may cover, why it may)."""
    definite: list[Span] = []
    maybe: list[Span] = []
    why = ""
    for prefix in rule.destinations:
        sure, unsure = _prefix_sets(prefix, target, vnet)
        definite.append(sure)
        if intersect(unsure, target.universe) and not why:
            why = _maybe_why(prefix, unsure, target, vnet)
        maybe.append(unsure)
    if rule.destination_asgs:
        maybe.append(NOT_PUBLIC)  # an application security group holds NIC (private) addresses only
        why = why or "destination application security groups cannot be resolved"
    if not rule.destinations and not rule.destination_asgs:
        maybe.append(ALL)
        why = "the rule has no destination"
    sure_all = union(definite)
    return sure_all, subtract(union(maybe), sure_all), why


def _prefix_sets(prefix: _Prefix, target: _Target, vnet: VnetTag = NO_ROUTES) -> tuple[Span, Span]:
    """(surely covered, maybe covered) addresses of one destination prefix (see module docstring)."""
    if prefix.lower in _EVERYTHING:
        return ALL, EMPTY
    if prefix.net is not None:
        return network_span(prefix.net), EMPTY
    if prefix.lower == "internet":
        return PUBLIC_V4, NOT_PUBLIC
    if prefix.tag == _VNET and vnet != NO_ROUTES:
        return _vnet_sets(vnet, target)
    if prefix.tag in _PRIVATE_TAGS:
        return EMPTY, NOT_PUBLIC
    own = target.net is None and prefix.tag in (target.tag, "azurecloud")
    if own and (not prefix.tag_region or prefix.tag_region == target.tag_region):
        return ALL, EMPTY
    listed = target.tags.get(prefix.lower) if target.tags else None
    if listed is not None:
        return union(map(network_span, listed)), EMPTY
    if own:
        return EMPTY, EMPTY  # the same tag in another region: regional tags do not overlap
    return EMPTY, ALL


def _maybe_why(prefix: _Prefix, unsure: Span, target: _Target, vnet: VnetTag) -> str:
    """Why a destination may cover some of the endpoint's addresses: VirtualNetwork names the routes that put
    public addresses in it."""
    if prefix.tag == _VNET and intersect(subtract(unsure, NOT_PUBLIC), target.universe):
        if vnet.anything:
            return f"destination '{prefix.raw}' may hold any address: {vnet.anything}"
        if any(_is_default(route) for route in (*vnet.sure, *vnet.maybe)):
            return (f"destination '{prefix.raw}' may hold the default route of route table '{vnet.table}' (the tag "
                    "holds the prefixes of user-defined routes, and Azure says it might hold default routes)")
        return (f"destination '{prefix.raw}' may hold the prefixes of route table '{vnet.table}' (Azure names the "
                "prefixes of user-defined routes; only those of routes to a virtual appliance are seen in the tag)")
    return f"destination '{prefix.raw}' cannot be proven to cover or exclude {target.destination}"


def _is_default(route: _Prefix) -> bool:
    return route.lower in _EVERYTHING or (route.net is not None and route.net.prefixlen == 0)


def _vnet_sets(vnet: VnetTag, target: _Target) -> tuple[Span, Span]:
    """The `VirtualNetwork` tag on a subnet with routes: private addresses may be in it, the prefix of a route to
    an appliance is (a service tag's as `_prefix_sets` reads it), another route's may be, and everything may be
    for a default route or a reason in `anything`."""
    sure, maybe = [EMPTY], [NOT_PUBLIC, ALL if vnet.anything else EMPTY]
    for routes, certain in ((vnet.sure, True), (vnet.maybe, False)):
        for route in routes:
            if _is_default(route):
                maybe.append(ALL)
            elif route.tag not in _PRIVATE_TAGS:
                covered, unsure = _prefix_sets(route, target)
                (sure if certain else maybe).append(covered)
                maybe.append(unsure)
    surely = union(sure)
    return surely, subtract(union(maybe), surely)


def _source_matches(rule: _Rule, prefixes: tuple[_IpNetwork, ...]) -> tuple[bool | None, str]:
    """Does the rule's source include this VM? Judged against the subnet's address prefixes."""
    if not rule.sources and not rule.source_asgs:
        return None, "the rule has no source"
    result: bool | None = False
    why = ""
    for source in rule.sources:
        if source.lower in _EVERYTHING or source.lower == "virtualnetwork":
            return True, ""
        if source.net is not None and prefixes:
            if all(p.version == source.net.version and p.subnet_of(source.net) for p in prefixes):  # type: ignore[arg-type]
                return True, ""
            if not any(p.version == source.net.version and p.overlaps(source.net) for p in prefixes):
                continue  # disjoint from the subnet: this source does not match
        if result is False:
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
