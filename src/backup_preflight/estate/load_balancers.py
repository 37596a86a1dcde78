"""What a NIC's load balancer backend pools do to its outbound access.

Azure documents the outbound methods: a NIC in the backend pool of a Standard load balancer has no default
outbound access; it reaches the Internet only through a NAT gateway, a public IP of its own, or the load
balancer itself, by an outbound rule or a load-balancing rule that programs outbound SNAT
(`disableOutboundSnat` false) on a public frontend, for that rule's protocol. A Standard load balancer with
internal frontends only gives none ("when only an internal Load Balancer serves a VM, outbound connections
over default SNAT aren't available"). A Basic load balancer leaves default outbound access as it is, and on a
public frontend its load-balancing rules egress too. A frontend egresses to Storage only with an IPv4 public IP
(or prefix), read from its row. Pure and I/O-free; used by `network.NetworkModel` when
it places a NIC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backup_preflight.estate.index import props as _props
from backup_preflight.estate.index import ref_id
from backup_preflight.estate.index import row_name as _row_name

_POOLS = "/backendaddresspools/"
_ANY = frozenset({"tcp", "udp"})
_PROTOCOLS = {"tcp": frozenset({"tcp"}), "udp": frozenset({"udp"}), "all": _ANY}


@dataclass(frozen=True, slots=True)
class LbEgress:
    """The NIC's load balancers, as outbound access sees them (hashable: part of where a NIC is)."""

    #: Lowercase protocols that leave through a load balancer's public frontend, and the sentence naming it.
    protocols: frozenset[str] = frozenset()
    via: str = ""
    #: Names the Standard load balancer that takes default outbound access away; '' when none does.
    closes: str = ""
    #: Why what the pools do cannot be told (a load balancer not collected, an unknown SKU); '' when it can.
    unknown: str = ""
    #: (protocols, why) of rules that may give egress for those protocols: on a frontend whose public IP is not
    #: known to be IPv4, or with a protocol or SNAT setting that cannot be read.
    unsure: tuple[tuple[frozenset[str], str], ...] = ()

    def doubt(self, protocol: str) -> str:
        """Why whether the pools give egress for `protocol` (lowercase) is unknown; '' when it is known."""
        return self.unknown or "; ".join(why for protocols, why in self.unsure if protocol in protocols)


NO_POOLS = LbEgress()


def lb_egress(pools: Any, rows: Mapping[str, dict]) -> LbEgress:
    """What the NIC IP configuration's `loadBalancerBackendAddressPools` do, read from the load balancers' rows."""
    if pools is None:
        return NO_POOLS
    if not isinstance(pools, list):
        return LbEgress(unknown="the NIC's loadBalancerBackendAddressPools is not an array")
    refs = [p.get("id") if isinstance(p, dict) else None for p in pools]
    ids = [r for r in refs if isinstance(r, str) and r]
    protocols: set[str] = set()
    via, closes, unsure = [], [], []
    unknown = ["a backend pool the NIC names has no id"] if len(ids) < len(refs) else []
    for pool_id in dict.fromkeys(ids):
        lb_id, _, pool = pool_id.lower().partition(_POOLS)
        row = rows.get(lb_id) if pool else None
        if row is None:
            unknown.append(f"load balancer {pool_id[:len(lb_id)] if pool else pool_id} of the NIC's backend pool "
                           "is referenced but not in the collected rows")
            continue
        name = _row_name(row)
        sku = row.get("sku")
        sku_name = str(sku.get("name") or "") if isinstance(sku, dict) else ""
        if sku_name.lower() not in ("basic", "standard"):
            unknown.append(f"load balancer '{name}' has SKU '{sku_name or '?'}', whose outbound access is not assessed")
            continue
        egress, doubts = _egress(_props(row), pool_id.lower(), rows)
        if egress:
            protocols.update(*(p for p, _ in egress))
            via.append(f"load balancer '{name}' {' and '.join(text for _, text in egress)}")
        unsure += [(p, f"load balancer '{name}': {why}") for p, why in doubts]
        if sku_name.lower() == "standard":
            closes.append(f"load balancer '{name}' (Standard)")
    return LbEgress(frozenset(protocols), "; ".join(via), ", ".join(closes), "; ".join(unknown), tuple(unsure))


_Rules = list[tuple[frozenset[str], str]]


def _egress(props: dict, pool_id: str, rows: Mapping[str, dict]) -> tuple[_Rules, _Rules]:
    """(protocols, the rule named) of each rule that gives the pool outbound access on an IPv4 public frontend,
    and (protocols, why) of each rule that may: its frontend's address is not known to be IPv4, or its protocol
    or SNAT setting cannot be read (then for any protocol)."""
    public = _ipv4_frontends(props, rows)
    rules = []
    for rule in _list(props, "outboundRules"):
        rprops = _props(rule)
        if _ref(rprops, "backendAddressPool") == pool_id:
            fronts = [str(f.get("id") or "").lower() for f in _list(rprops, "frontendIPConfigurations")]
            rules.append((rprops, fronts, f"outbound rule '{rule.get('name') or '?'}'", ""))
    for rule in _list(props, "loadBalancingRules"):
        rprops = _props(rule)
        pools = {_ref(rprops, "backendAddressPool")} | {str(p.get("id") or "").lower()
                                                        for p in _list(rprops, "backendAddressPools")}
        snat_off = rprops.get("disableOutboundSnat")
        if pool_id in pools and snat_off is not True:
            odd = ("" if snat_off is None or snat_off is False
                   else f" has disableOutboundSnat {snat_off!r}, not true or false")
            rules.append((rprops, [_ref(rprops, "frontendIPConfiguration")],
                          f"load-balancing rule '{rule.get('name') or '?'}' (outbound SNAT)", odd))
    found, doubts = [], []
    for rprops, fronts, text, odd in rules:
        known = [public[f] for f in fronts if f in public]
        if not known:  # no public frontend: nothing to egress by
            continue
        protocols = _PROTOCOLS.get(str(rprops.get("protocol") or "").lower())
        if protocols is None:
            doubts.append((_ANY, f"{text} has protocol {rprops.get('protocol')!r}, not Tcp, Udp or All"))
        elif odd:
            doubts.append((protocols, f"{text}{odd}"))
        elif "" in known:
            found.append((protocols, text))
        else:
            doubts.append((protocols, known[0]))
    return found, doubts


def _ipv4_frontends(props: dict, rows: Mapping[str, dict]) -> dict[str, str]:
    """Each public frontend's lowercase id: '' when its public IP (or prefix) is IPv4, else why that is not known.
    Private frontends and IPv6 ones are left out: they give no egress to an IPv4 address."""
    found = {}
    for front in _list(props, "frontendIPConfigurations"):
        fid = str(front.get("id") or "").lower()
        if not fid:  # a rule names its frontend by id: one without an id is never named
            continue
        fprops = _props(front)
        for key in ("publicIPAddress", "publicIPPrefix"):
            ref = ref_id(fprops, key)
            if not ref:
                continue
            row = rows.get(ref.lower())
            if row is None:
                found[fid] = (f"public IP {ref} of frontend '{front.get('name') or '?'}' is not in the collected rows, "
                              "so whether it gives IPv4 egress is unknown")
            elif str(_props(row).get("publicIPAddressVersion") or "IPv4").lower() == "ipv4":  # the API's default
                found[fid] = ""
    return found


def _list(props: dict, key: str) -> list[dict]:
    value = props.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _ref(props: dict, key: str) -> str:
    return ref_id(props, key).lower()
