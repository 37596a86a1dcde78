"""The `network` fact: a VM's NICs bound to the shared network model.

Policies reach it only through the `outboundAllowed` operator, whose operand names the
destinations and ports. The verdict for an NSG/subnet/route combination is computed once
by the model and shared by every VM behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_preflight.estate.network import Endpoint, NetworkModel, Verdict

__all__ = ["NetworkFacts", "NetworkModel", "OutboundQuery", "parse_outbound_operand"]


@dataclass(frozen=True, slots=True)
class OutboundQuery:
    """What `outboundAllowed` asks: every endpoint must be reachable from every NIC."""

    endpoints: tuple[Endpoint, ...]
    egress_device_declared: bool
    assume_no_bgp_default: bool = True


def parse_outbound_operand(value: Any) -> OutboundQuery:
    """Check and convert the operand {destinations, ports, protocol?, egressDeviceDeclared?,
    assumeNoOnPremisesDefaultRoute?}."""
    if not isinstance(value, dict):
        raise ValueError("expects an object with 'destinations' and 'ports'")
    destinations, ports = value.get("destinations"), value.get("ports")
    if not isinstance(destinations, list) or not destinations or not all(
            isinstance(d, str) and d for d in destinations):
        raise ValueError("'destinations' must be a non-empty array of service tags or CIDRs")
    if not isinstance(ports, list) or not ports or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
        raise ValueError("'ports' must be a non-empty array of port numbers")
    protocol = value.get("protocol", "Tcp")
    if protocol not in ("Tcp", "Udp"):
        raise ValueError("'protocol' must be Tcp or Udp")
    declared = value.get("egressDeviceDeclared", False)
    if not isinstance(declared, bool):
        raise ValueError("'egressDeviceDeclared' must be true or false")
    assume = value.get("assumeNoOnPremisesDefaultRoute", True)
    if not isinstance(assume, bool):
        raise ValueError("'assumeNoOnPremisesDefaultRoute' must be true or false")
    endpoints = tuple(Endpoint(d, p, protocol) for d in destinations for p in ports)
    return OutboundQuery(endpoints, declared, assume)


@dataclass(frozen=True, slots=True, eq=False)
class NetworkFacts:
    """A VM's NIC ids and region, with the model that judges them.

    Two are equal when the model would give them the same verdict for every query (the same NIC
    placement and region), so the engine judges the VMs behind one NSG/subnet combination once."""

    model: NetworkModel
    nic_ids: tuple[str, ...]
    region: str
    _key: tuple[Any, ...] | None = field(default=None, init=False, repr=False)

    @property
    def sharing_key(self) -> tuple[Any, ...]:
        """The model's sharing key, asked once: each policy that reads the fact hashes and compares it."""
        key = self._key
        if key is None:
            key = self.model.sharing_key(self.nic_ids, self.region)
            object.__setattr__(self, "_key", key)
        return key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetworkFacts) and other.model is self.model and other.sharing_key == self.sharing_key

    def __hash__(self) -> int:
        return hash(self.sharing_key)

    def outbound(self, query: OutboundQuery) -> Verdict:
        return self.model.outbound(self.nic_ids, self.region, query.endpoints,
                                   egress_device_declared=query.egress_device_declared,
                                   assume_no_bgp_default=query.assume_no_bgp_default)

    def __repr__(self) -> str:
        return f"NetworkFacts(nics={list(self.nic_ids)})"
