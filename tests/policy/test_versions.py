"""Dotted-integer version comparison: never string or float comparison."""

import pytest

from backup_preflight.policy.versions import compare_versions, parse_version


@pytest.mark.parametrize(("left", "right", "order"), [
    ("2.2.9", "2.2.53.1", -1),          # string comparison would say 2.2.9 > 2.2.53.1
    ("1.0.91.0", "1.0.9117.0", -1),      # float-ish comparison of "91" vs "9117" goes wrong too
    ("2.7.41491.1010", "2.7.41491.949", 1),
    ("2.2.53.1", "2.2.53.1", 0),
    ("1.0", "1.0.0.0", 0),               # missing trailing parts count as zero
    ("10.0", "9.9", 1),
    ("v2.11.1.4", "2.11.1.4", 0),
])
def test_compare(left: str, right: str, order: int) -> None:
    assert compare_versions(left, right) == order
    assert compare_versions(right, left) == -order


@pytest.mark.parametrize("bad", ["Unknown", "", "2.2.x", "2..2", None, 2.2, "2.2.53.1-beta"])
def test_not_a_version_is_incomparable(bad: object) -> None:
    assert parse_version(bad) is None
    assert compare_versions(bad, "2.2.53.1") is None


@pytest.mark.parametrize(("text", "parts"), [
    ("1.0.0", (1,)), ("0", (0,)), ("0.0", (0,)), ("1.0.2.0", (1, 0, 2)), (" v2.11 ", (2, 11)), ("007.10", (7, 10)),
])
def test_parse_drops_trailing_zeros_but_keeps_one_part(text: str, parts: tuple[int, ...]) -> None:
    assert parse_version(text) == parts
    assert compare_versions("1", "1.0") == 0 and compare_versions("1.0.1", "1.0") == 1
