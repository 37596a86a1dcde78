"""Dotted-integer version comparison (`2.2.9` < `2.2.53.1`, `1.0.91.0` < `1.0.9117.0`).

Agent and extension versions are compared part by part as integers, never as strings or
floats; missing trailing parts count as zero. Anything that is not dotted integers cannot
be compared, and the caller turns that into `unknown`.
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)\s*$")


def parse_version(text: object) -> tuple[int, ...] | None:
    """The integer parts of a dotted version, or None when `text` is not one."""
    if not isinstance(text, str):
        return None
    match = _VERSION.match(text)
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def compare_versions(left: object, right: object) -> int | None:
    """-1, 0 or 1 like cmp(), or None when either side is not a dotted-integer version."""
    a, b = parse_version(left), parse_version(right)
    if a is None or b is None:
        return None
    return (a > b) - (a < b)
