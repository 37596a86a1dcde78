"""Interval address sets (estate/addresses.py) against Python sets of integers, and the public space."""

from __future__ import annotations

import ipaddress
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from backup_preflight.estate.addresses import (
    ALL,
    NOT_PUBLIC,
    PUBLIC_V4,
    Span,
    describe,
    intersect,
    network_span,
    subtract,
    union,
)

PAIRS = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 8)).map(lambda t: (t[0], t[0] + t[1])), max_size=6)


def as_span(pairs: list[tuple[int, int]]) -> Span:
    return union([tuple(sorted(pairs))])


def members(span: Span) -> set[int]:
    return {x for lo, hi in span for x in range(lo, hi)}


def well_formed(span: Span) -> bool:
    return all(lo < hi for lo, hi in span) and all(a[1] < b[0] for a, b in pairwise(span))


@given(PAIRS, PAIRS)
def test_operations_match_set_algebra(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    sa, sb = as_span(a), as_span(b)
    assert members(sa) == {x for lo, hi in a for x in range(lo, hi)}
    cases = ((union((sa, sb)), members(sa) | members(sb)), (intersect(sa, sb), members(sa) & members(sb)),
             (subtract(sa, sb), members(sa) - members(sb)))
    for result, expected in cases:
        assert members(result) == expected
        assert well_formed(result)


def test_public_space_excludes_exactly_the_private_and_special_ranges() -> None:
    def public(address: str) -> bool:
        value = int(ipaddress.IPv4Address(address))
        return any(lo <= value < hi for lo, hi in PUBLIC_V4)

    for address in ("10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255",
                    "169.254.169.254", "127.0.0.1", "0.1.2.3", "224.0.0.1", "255.255.255.255"):
        assert not public(address), address
    for address in ("20.60.0.10", "52.239.140.1", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0",
                    "9.255.255.255", "11.0.0.0", "1.0.0.0", "223.255.255.255", "168.63.129.16"):
        assert public(address), address
    assert union((PUBLIC_V4, NOT_PUBLIC)) == ALL and not intersect(PUBLIC_V4, NOT_PUBLIC)


def test_ipv6_never_overlaps_ipv4_and_ranges_are_described() -> None:
    v4, v6 = network_span(ipaddress.ip_network("0.0.0.0/0")), network_span(ipaddress.ip_network("::/0"))
    assert not intersect(v4, v6) and union((v4, v6)) == ALL
    assert describe(network_span(ipaddress.ip_network("20.60.0.0/16"))) == "20.60.0.0–20.60.255.255"
    assert describe(network_span(ipaddress.ip_network("2603:1020::/64"))) == \
        "2603:1020::–2603:1020::ffff:ffff:ffff:ffff"
    two = union((network_span(ipaddress.ip_network("10.0.0.0/8")), network_span(ipaddress.ip_network("12.0.0.0/8"))))
    assert describe(two) == "10.0.0.0–10.255.255.255 and 1 more ranges"
    assert describe(()) == "no addresses"
    # The first IPv6 address follows the last IPv4 one: both ends of the family boundary are named right.
    assert describe(network_span(ipaddress.ip_network("::/127"))) == "::–::1"
    assert describe(network_span(ipaddress.ip_network("255.255.255.254/31"))) == "255.255.255.254–255.255.255.255"
