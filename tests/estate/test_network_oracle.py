"""The outbound verdict against an independent reference evaluator, on generated configurations.

The oracle here shares no code with `backup_preflight.estate`: for one destination address at a
time it walks the NSG rules by priority and the routes by prefix length with plain loops over
`ipaddress` objects. Which addresses Storage uses is a set of "worlds":

* with the service-tag file: every address of Storage.<region> in the pinned excerpt, with the
  file's prefixes (and lengths) for every tag;
* without it: those same real addresses, plus every public address with hypothetical Storage and
  AzureCloud prefixes of length /9 or /32 (AzureCloud's no longer than Storage's), since the scanner
  then knows only that Storage's prefixes are public and not shorter than /9.

A tag the file does not list (AzureMonitor; without the file also AzureActiveDirectory and
Sql.WestEurope) may or may not hold the address, at /9 or /32; the generator uses such a tag at most
once per configuration (the scanner does not correlate two rules naming the same unknown tag).
The verdict must be True when every world allows, False when every world blocks, and unknown
otherwise: exactly what the scanner must say.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from network_helpers import FIXTURES, NAT_ID, STORAGE, Estate, load, rule, service_tags

IPv4 = ipaddress.IPv4Network
_RAW = json.loads((FIXTURES / "service-tags.json").read_text())
FILE: dict[str, list[IPv4]] = {
    v["name"].lower(): [ipaddress.IPv4Network(p) for p in v["properties"]["addressPrefixes"] if ":" not in p]
    for v in _RAW["values"]
}
PAIRS = {"westeurope": "northeurope", "eastus": "westus"}
PRIVATE = [IPv4(p) for p in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                             "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3")]
NEVER_LISTED = "azuremonitor"
MAYBE_LISTED = ("azureactivedirectory", "sql.westeurope")
CIDRS = ["0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/2", "20.0.0.0/8", "20.60.0.0/16", "52.239.0.0/16",
         "20.38.108.0/24", "52.239.140.0/22", "52.239.152.0/23", "13.69.0.0/17", "40.0.0.0/6", "20.150.8.5/32",
         "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "20.47.0.0/19", "20.60.26.0/23"]
REGION_SPELLING = {"westeurope": ["westeurope", "West Europe", "WESTEUROPE"], "eastus": ["eastus", "East US"]}


# ---------------------------------------------------------------- configurations


@dataclass
class Rule:
    priority: int
    allow: bool
    dests: list[str]  # symbolic: "{vm}" / "{pair}" stand for the VM's region and its pair
    port: str | list[str]
    protocol: str
    source: str


@dataclass
class Config:
    region: str
    spelling: str
    nic_rules: list[Rule] | None  # None: no NSG on the NIC
    subnet_rules: list[Rule] | None
    routes: list[tuple[str, str]] | None  # (prefix, next hop); None: no route table
    endpoints: list[tuple[str, list[str] | None]] = field(default_factory=list)
    private: bool = False
    nat: bool = False
    public_ip: bool = True
    declared: bool = False
    upper_types: bool = False
    #: The NIC's load balancer pool: None (none), "outbound" (Standard, an outbound rule on a public frontend),
    #: "snat" (Standard, a load-balancing rule with outbound SNAT), "internal" (Standard, internal frontends
    #: only), "basic" (Basic, no rule that egresses), "missing" (a pool whose load balancer was not collected), or
    #: "tcp-unread"/"udp-unread" (Standard, an outbound rule for that protocol on a frontend whose public IP was
    #: not collected: it may give egress for its protocol only).
    lb: str | None = None

    def resolve(self, name: str) -> str:
        return name.replace("{vm}", self.region).replace("{pair}", PAIRS[self.region])


def _cidrs() -> st.SearchStrategy[str]:
    storage = sorted({str(n) for key, nets in FILE.items() if key.startswith("storage.") for n in nets})
    near = st.tuples(st.sampled_from(storage), st.integers(-6, 4)).map(
        lambda t: str(IPv4(t[0]).supernet(-t[1]) if t[1] < 0 else next(IPv4(t[0]).subnets(t[1]))))
    return st.one_of(st.sampled_from(CIDRS), st.sampled_from(storage), near)


@st.composite
def virtual_network_configs(draw: st.DrawFn) -> Config:
    """A path whose subnet NSG has a rule on VirtualNetwork and whose subnet has routes: the tag then holds the
    routes' prefixes, and may hold a default route."""
    cfg = draw(configs())
    vnet_rule = draw(RULES)
    vnet_rule.dests = ["VirtualNetwork"]
    cfg.subnet_rules = [r for r in cfg.subnet_rules or [] if r.priority != vnet_rule.priority] + [vnet_rule]
    for r in [*(cfg.nic_rules or []), *cfg.subnet_rules[:-1]]:  # this rule is the one on VirtualNetwork
        r.dests = ["Internet" if d == "VirtualNetwork" else d for d in r.dests]
    cfg.routes = cfg.routes or [(draw(ROUTE_PREFIXES), draw(st.sampled_from(["None", "Internet", "VirtualAppliance"])))]
    _one_unknown_tag(cfg)
    return cfg


_FORCED = [("0.0.0.0/0", "VirtualAppliance")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(virtual_network_configs(), st.booleans())
# Hub and spoke: VirtualNetwork allowed, Internet denied, everything to a firewall. Whether the tag holds the
# default route Azure leaves open ("might"), so whether the firewall or the deny decides is unknown.
@example(Config(region="eastus", spelling="eastus", nic_rules=None, routes=_FORCED, declared=True,
                subnet_rules=[Rule(100, True, ["VirtualNetwork"], "*", "*", "*"),
                              Rule(4000, False, ["Internet"], "*", "*", "*")]), False)
# The prefix of a route to an appliance is in the tag: denying VirtualNetwork blocks Storage behind that route.
@example(Config(region="eastus", spelling="eastus", nic_rules=None, routes=[("20.0.0.0/8", "VirtualAppliance")],
                declared=True, subnet_rules=[Rule(100, False, ["VirtualNetwork"], "*", "*", "*")]), False)
# Two halves of the address space to an appliance are no default route: both are in the tag.
@example(Config(region="eastus", spelling="eastus", nic_rules=None, declared=True,
                routes=[("0.0.0.0/1", "VirtualAppliance"), ("128.0.0.0/1", "VirtualAppliance")],
                subnet_rules=[Rule(100, False, ["VirtualNetwork"], "*", "*", "*")]), False)
# Another route's prefix may or may not be (azure-docs#94454 saw a service-tag route's in neither tag).
@example(Config(region="eastus", spelling="eastus", nic_rules=None, routes=[("Storage", "Internet")],
                subnet_rules=[Rule(100, True, ["VirtualNetwork"], "*", "*", "*"),
                              Rule(4000, False, ["Internet"], "*", "*", "*")]), True)
def test_the_virtual_network_tag_agrees_with_the_oracle(cfg: Config, with_file: bool) -> None:
    _agrees(cfg, with_file)


TAGS = ["Storage", "Storage.{vm}", "Storage.{pair}", "AzureCloud", "AzureCloud.{vm}", "AzureCloud.{pair}",
        "AzureActiveDirectory", "Sql.WestEurope", "AzureMonitor"]
NSG_DESTS = st.one_of(
    st.sampled_from(["*", "Internet", "VirtualNetwork", "AzureLoadBalancer", "ASG", *TAGS]), _cidrs())
ROUTE_PREFIXES = st.one_of(
    st.sampled_from(["Storage", "Storage.{vm}", "Storage.{pair}", "AzureCloud", "AzureCloud.{vm}",
                     "AzureActiveDirectory", "AzureMonitor"]),
    st.sampled_from(["0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "20.0.0.0/8", "40.0.0.0/6", "0.0.0.0/2",  # tunnels
                     "20.0.0.0/9", "20.60.0.0/16", "52.239.0.0/16", "20.150.8.5/32", "52.239.152.1/32"]),
    _cidrs())

RULES = st.builds(
    Rule,
    priority=st.integers(100, 4096),
    allow=st.booleans(),
    dests=st.lists(NSG_DESTS, min_size=1, max_size=2),
    port=st.sampled_from(["*", "443", "80", "440-450", ["80", "443"], ["80", "8443"]]),
    protocol=st.sampled_from(["*", "Tcp", "Udp"]),
    source=st.sampled_from(["*", "VirtualNetwork", "172.20.0.0/16", "10.99.0.0/16"]),
)
ENDPOINTS = st.sampled_from([
    ("Microsoft.Storage", ["{vm}", "{pair}"]), ("microsoft.storage", ["{pair}"]), ("Microsoft.Storage", None),
    ("MICROSOFT.STORAGE.GLOBAL", ["*"]), ("Microsoft.Storage", ["*"]), ("Microsoft.KeyVault", ["{vm}"]),
])


@st.composite
def configs(draw: st.DrawFn, nsgs: bool = True, routes: bool = True) -> Config:
    """A NIC's path; `nsgs`/`routes` False leave that part out, so each part is explored densely too."""
    region = draw(st.sampled_from(sorted(PAIRS)))
    unique = st.lists(RULES, max_size=5, unique_by=lambda r: r.priority)
    no_nsg = st.none()
    cfg = Config(
        region=region,
        spelling=draw(st.sampled_from(REGION_SPELLING[region])),
        nic_rules=draw(no_nsg | unique if nsgs else no_nsg),
        subnet_rules=draw(no_nsg | unique if nsgs else no_nsg),
        routes=draw(st.none() | st.lists(st.tuples(ROUTE_PREFIXES, st.sampled_from(
            ["None", "Internet", "VirtualAppliance", "VirtualNetworkGateway", "VnetLocal"])), min_size=1, max_size=4,
            unique_by=lambda r: r[0])) if routes else None,
        endpoints=draw(st.lists(ENDPOINTS, max_size=2)) if routes else [],
        private=draw(st.booleans()),
        nat=draw(st.booleans()),
        public_ip=draw(st.booleans()),
        declared=draw(st.booleans()),
        upper_types=draw(st.booleans()),
        lb=draw(st.sampled_from([None, None, "outbound", "snat", "internal", "basic", "missing", "tcp-unread",
                                   "udp-unread"])),
    )
    _one_unknown_tag(cfg)
    return cfg


def _one_unknown_tag(cfg: Config) -> None:
    """Keep the first use of a tag that may be unlisted; later ones become Internet (see module docstring). A rule
    on VirtualNetwork uses the routes' tags too (the tag holds their prefixes), so it leaves none for a route; and
    what VirtualNetwork may hold is one doubt however many rules name it, which the scanner does not correlate
    either: only the first rule on VirtualNetwork keeps it."""
    rules = [r for rules in (cfg.nic_rules or [], cfg.subnet_rules or []) for r in rules]
    seen = vnet = False
    for r in rules:
        for i, dest in enumerate(r.dests):
            if dest.lower() in (NEVER_LISTED, *MAYBE_LISTED):
                r.dests[i] = dest if not seen else "Internet"
                seen = True
            elif dest == "VirtualNetwork":
                r.dests[i] = dest if not vnet else "Internet"
                vnet = True
    seen = seen or vnet
    for i, (prefix, hop) in enumerate(cfg.routes or []):
        if prefix.lower() in (NEVER_LISTED, *MAYBE_LISTED):
            cfg.routes[i] = (prefix if not seen else "0.0.0.0/2", hop)  # type: ignore[index]
            seen = True


# ---------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class World:
    """One possible truth: an address and, per tag, the length of its prefix holding it (None: not held)."""

    address: ipaddress.IPv4Address
    lengths: dict[str, int | None]
    #: Whether the VirtualNetwork tag holds the route table's default route: Azure says it "might".
    vnet_default: bool = False
    #: Whether it holds the prefixes of routes not to an appliance: Azure's text says so, what is seen does not.
    vnet_other: bool = False

    def length(self, tag: str) -> int | None:
        return self.lengths.get(tag.lower())


def oracle(cfg: Config, with_file: bool) -> bool | None:
    outcomes = {evaluate(cfg, world) for world in worlds(cfg, with_file)}
    if outcomes == {True}:
        return True
    if outcomes == {False}:
        return False
    return None


def worlds(cfg: Config, with_file: bool) -> list[World]:
    tags = {cfg.resolve(t).lower() for t in TAGS} | {f"storage.{r}" for pair in PAIRS.items() for r in pair}
    unknown = [NEVER_LISTED] + ([] if with_file else list(MAYBE_LISTED))
    variants: list[dict[str, int | None]] = [{t: None for t in unknown}] + [{t: n for t in unknown} for n in (9, 32)]
    out = []
    universe = FILE[f"storage.{cfg.region}"]
    for address in _points(cfg, universe, [n for nets in FILE.values() for n in nets]):
        known = {t: _longest(address, FILE[t]) for t in tags if t in FILE and t not in unknown}
        out += [World(address, known | variant) for variant in variants]
    if not with_file:
        for address in _points(cfg, [IPv4("0.0.0.0/0")], []):
            for storage, cloud in ((9, 9), (32, 9), (32, 32)):
                lengths: dict[str, int | None] = dict.fromkeys(tags)
                lengths |= {"storage": storage, f"storage.{cfg.region}": storage, "azurecloud": cloud,
                            f"azurecloud.{cfg.region}": cloud}
                out += [World(address, lengths | variant) for variant in variants]
    if any(prefix == "0.0.0.0/0" for prefix, _ in cfg.routes or []):
        out += [World(w.address, w.lengths, vnet_default=True) for w in out]
    if any(prefix != "0.0.0.0/0" and hop != "VirtualAppliance" for prefix, hop in cfg.routes or []):
        out += [World(w.address, w.lengths, w.vnet_default, vnet_other=True) for w in out]
    return out


def _points(cfg: Config, universe: list[IPv4], more: list[IPv4]) -> list[ipaddress.IPv4Address]:
    """One public address of `universe` per stretch that every prefix in play treats alike."""
    nets = [IPv4(d) for d in _all_cidrs(cfg)] + PRIVATE + more + universe
    bounds = {int(n.network_address) for n in nets} | {int(n.broadcast_address) + 1 for n in nets}
    points = []
    for b in sorted(bounds):
        if b >= 2**32:
            continue
        address = ipaddress.IPv4Address(b)
        if any(address in n for n in universe) and not any(address in n for n in PRIVATE):
            points.append(address)
    return points


def _all_cidrs(cfg: Config) -> list[str]:
    dests = [d for rules in (cfg.nic_rules or [], cfg.subnet_rules or []) for r in rules for d in r.dests]
    dests += [p for p, _ in cfg.routes or []]
    return [d for d in dests if d[0].isdigit()]


def _longest(address: ipaddress.IPv4Address, nets: list[IPv4]) -> int | None:
    lengths = [n.prefixlen for n in nets if address in n]
    return max(lengths) if lengths else None


def evaluate(cfg: Config, world: World) -> bool | None:
    stages = [nsg_allows(cfg, rules, world) for rules in (cfg.nic_rules, cfg.subnet_rules)]
    stages.append(route_outcome(cfg, world))
    if False in stages:
        return False
    return None if None in stages else True


DEFAULT_RULES = [Rule(65000, True, ["VirtualNetwork"], "*", "*", "*"), Rule(65001, True, ["Internet"], "*", "*", "*"),
                 Rule(65500, False, ["*"], "*", "*", "*")]


def nsg_allows(cfg: Config, rules: list[Rule] | None, world: World) -> bool:
    if rules is None:
        return True
    for r in sorted(rules + DEFAULT_RULES, key=lambda r: r.priority):
        ports = r.port if isinstance(r.port, list) else [r.port]
        port_ok = any(p == "*" or p == "443" or p == "440-450" for p in ports)
        if r.protocol in ("*", "Tcp") and port_ok and r.source != "10.99.0.0/16" and any(
                dest_holds(cfg, d, world) for d in r.dests):
            return r.allow
    raise AssertionError("DenyAllOutBound always matches")


def dest_holds(cfg: Config, dest: str, world: World) -> bool:
    if dest in ("*", "Internet"):
        return True  # every world's address is public
    if dest == "VirtualNetwork":  # private spaces, and "address prefixes used on user-defined routes"
        return any(world.vnet_default if prefix == "0.0.0.0/0" else
                   (hop == "VirtualAppliance" or world.vnet_other) and dest_holds(cfg, prefix, world)
                   for prefix, hop in cfg.routes or [])
    if dest in ("AzureLoadBalancer", "ASG"):
        return False
    if dest[0].isdigit():
        return world.address in IPv4(dest)
    return world.length(cfg.resolve(dest)) is not None


def route_outcome(cfg: Config, world: World) -> bool | None:
    """The longest match's next hop; routes that match alike (one prefix twice, which Azure refuses) and
    disagree leave it unknown."""
    matches = [((0, 0), "Internet")]  # the system route 0.0.0.0/0
    for prefix, hop in cfg.routes or []:
        if prefix[0].isdigit():
            if world.address in IPv4(prefix):
                matches.append(((IPv4(prefix).prefixlen, 10), hop))
            continue
        length = world.length(cfg.resolve(prefix))
        if length is not None:
            regional, cloud = "." in prefix, prefix.lower().startswith("azurecloud")
            matches.append(((length, {(False, True): 5, (False, False): 4, (True, True): 3, (True, False): 2}[
                (cloud, regional)]), hop))
    for service, locations in cfg.endpoints:
        if service.lower() not in ("microsoft.storage", "microsoft.storage.global"):
            continue
        if service.lower().endswith("global") or (locations and "*" in locations):
            names = ["storage"]
        else:
            names = [f"storage.{cfg.resolve(x)}" for x in locations or ["{vm}"]]
        for name in names:
            length = world.length(name)
            if length is not None:
                matches.append(((length, 1), "Endpoint"))
    best = max(key for key, _ in matches)
    outcomes = {hop_outcome(cfg, hop) for key, hop in matches if key == best}
    return outcomes.pop() if len(outcomes) == 1 else None


def hop_outcome(cfg: Config, hop: str) -> bool | None:
    if hop == "None":
        return False
    if hop in ("VirtualAppliance", "VirtualNetworkGateway"):
        return True if cfg.declared else None
    if hop == "Endpoint":
        return True
    if hop == "VnetLocal":  # kept inside the VNet; what becomes of a public address there is not documented
        return None
    # a Standard pool takes default outbound access away
    standard = cfg.lb in ("outbound", "snat", "internal", "tcp-unread", "udp-unread")
    if not (cfg.private or standard or cfg.lb == "missing"):
        return True
    if cfg.nat or cfg.public_ip or cfg.lb in ("outbound", "snat"):
        return True
    return None if cfg.lb in ("missing", "tcp-unread") else False


# ---------------------------------------------------------------- the scanner, on ARG-shaped rows


def production(cfg: Config, with_file: bool) -> tuple[bool | None, str]:
    estate = Estate()
    nic_rows = [_rule_row(cfg, r, i) for i, r in enumerate(cfg.nic_rules or [])]
    if cfg.nic_rules is None:
        del estate.nic["properties"]["networkSecurityGroup"]
    else:
        estate.nic_rules(*nic_rows)
    if cfg.subnet_rules is not None:
        estate.subnet_rules(*(_rule_row(cfg, r, i) for i, r in enumerate(cfg.subnet_rules)))
    if cfg.routes is not None:
        estate.routes(*((f"r{i}", cfg.resolve(p), hop) for i, (p, hop) in enumerate(cfg.routes)))
    if cfg.endpoints:
        estate.subnet["serviceEndpoints"] = [
            {"service": s} | ({"locations": [cfg.resolve(x) for x in locs]} if locs is not None else {})
            for s, locs in cfg.endpoints]
    if cfg.private:
        estate.subnet["defaultOutboundAccess"] = False
    if cfg.nat:
        estate.subnet["natGateway"] = {"id": NAT_ID}
    if not cfg.public_ip:
        del estate.ipconfig["publicIPAddress"]
    if cfg.lb is not None:
        _load_balancer(estate, cfg.lb)
    if cfg.upper_types:
        for row in estate.rows:
            row["type"] = {"microsoft.network/virtualnetworks": "Microsoft.Network/virtualNetworks"}.get(
                row["type"], row["type"].upper())
    verdict = estate.verdict(STORAGE, region=cfg.spelling, declared=cfg.declared,
                             tags=service_tags() if with_file else None)
    return verdict.value, "\n".join(verdict.evidence)


def _load_balancer(estate: Estate, kind: str) -> None:
    """Put the NIC in the fixture load balancer's pool, changed to be of `kind` (see Config.lb)."""
    row = load("loadbalancer.json")
    estate.ipconfig["loadBalancerBackendAddressPools"] = [{"id": row["properties"]["backendAddressPools"][0]["id"]}]
    props = row["properties"]
    if kind.endswith("-unread"):
        props["outboundRules"][0]["properties"]["protocol"] = kind.removesuffix("-unread").title()
    elif kind != "outbound":
        props["outboundRules"] = []
    if kind == "snat":
        props["loadBalancingRules"][0]["properties"]["disableOutboundSnat"] = False
    if kind == "internal":
        del props["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]
    if kind == "basic":
        row["sku"] = {"name": "Basic", "tier": "Regional"}
    if kind != "missing":
        estate.rows += [row] if kind.endswith("-unread") else [row, load("publicip.json")]


def _rule_row(cfg: Config, r: Rule, i: int) -> dict:
    dests = [cfg.resolve(d) for d in r.dests if d != "ASG"]
    row = rule(f"rule{i}", r.priority, "Allow" if r.allow else "Deny", dest=dests if len(dests) > 1 else (
        dests[0] if dests else ""), port=r.port, protocol=r.protocol, source=r.source)
    if "ASG" in r.dests:
        row["properties"]["destinationApplicationSecurityGroups"] = [{"id": "/subscriptions/s/asg/a"}]
        if not dests:
            del row["properties"]["destinationAddressPrefix"]
    return row


def _agrees(cfg: Config, with_file: bool) -> None:
    expected = oracle(cfg, with_file)
    value, evidence = production(cfg, with_file)
    assert value is expected, f"scanner {value}, oracle {expected}:\n{evidence}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(nsgs=False), st.booleans())
# Found by CI on 2026-11-30: one prefix twice with different next hops (which Azure refuses) was judged by the
# first route, and by the oracle by the next hop's name.
@example(Config(region="eastus", spelling="eastus", nic_rules=None, subnet_rules=None,
                routes=[("AzureActiveDirectory", "None"), ("0.0.0.0/2", "Internet"), ("0.0.0.0/2", "None")],
                endpoints=[], private=False, nat=False, public_ip=False, declared=False, upper_types=False), True)
def test_routes_and_endpoints_agree_with_the_oracle(cfg: Config, with_file: bool) -> None:
    _agrees(cfg, with_file)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(routes=False), st.booleans())
def test_nsg_rules_agree_with_the_oracle(cfg: Config, with_file: bool) -> None:
    _agrees(cfg, with_file)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.booleans())
def test_whole_path_agrees_with_the_oracle(cfg: Config, with_file: bool) -> None:
    _agrees(cfg, with_file)
