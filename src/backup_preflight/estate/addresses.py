"""Address sets as sorted, disjoint integer intervals, so rules and routes are decided per address.

A destination such as the Storage service tag is a set of addresses; an NSG rule or a route
covers part of it. Deciding "for every address Storage may use" needs set operations that are
exact and fast on a few thousand prefixes: intervals `[lo, hi)` over integers do that. IPv4
addresses are their own integer; IPv6 addresses are offset by 2**32 so the two families never
overlap and one set type holds both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Span = tuple[tuple[int, int], ...]

_V6_BASE = 1 << 32
EMPTY: Span = ()
ALL: Span = ((0, _V6_BASE + (1 << 128)),)
IPV4: Span = ((0, _V6_BASE),)

#: Ranges that never hold a public Azure service address: RFC 1918, shared (100.64/10), link-local,
#: loopback, "this network" (0/8), multicast and reserved (224/3).
NOT_PUBLIC_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                 "192.168.0.0/16", "224.0.0.0/3")


def network_span(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Span:
    lo = int(net.network_address) + (_V6_BASE if net.version == 6 else 0)
    return ((lo, lo + net.num_addresses),)


def union(spans: Iterable[Span]) -> Span:
    """Union of several sets, merged into sorted disjoint intervals."""
    pieces = sorted(p for span in spans for p in span)
    out: list[tuple[int, int]] = []
    for lo, hi in pieces:
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def intersect(a: Span, b: Span) -> Span:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Span, b: Span) -> Span:
    out = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] <= lo:
            j += 1
        k = j
        while k < len(b) and b[k][0] < hi:
            if b[k][0] > lo:
                out.append((lo, b[k][0]))
            lo = max(lo, b[k][1])
            k += 1
        if lo < hi:
            out.append((lo, hi))
    return tuple(out)


def describe(span: Span) -> str:
    """The first interval in words, e.g. `20.60.0.0–20.60.255.255` (and how many more there are)."""
    if not span:
        return "no addresses"
    lo, hi = span[0]
    text = f"{_address(lo)}–{_address(hi - 1)}"
    return text if len(span) == 1 else f"{text} and {len(span) - 1} more ranges"


def _address(value: int) -> str:
    if value < _V6_BASE:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value - _V6_BASE))


PUBLIC_V4: Span = subtract(IPV4, union(network_span(ipaddress.ip_network(p)) for p in NOT_PUBLIC_V4))
NOT_PUBLIC: Span = subtract(ALL, PUBLIC_V4)
