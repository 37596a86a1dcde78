"""Each operator on its own: operand checks at load time, and the three values at run time."""

from typing import Any

import pytest

from backup_preflight.policy.conditions import ConditionError

from policy_helpers import compile_json, ev


@pytest.mark.parametrize(("cond", "reason"), [
    ({"field": "osType", "in": "Linux"}, "in expects an array, found str"),
    ({"field": "osType", "notIn": {"a": 1}}, "notIn expects an array, found dict"),
    ({"field": "osType", "like": 5}, "like expects a string, found int"),
    ({"field": "osType", "notMatch": ["x"]}, "notMatch expects a string, found list"),
    ({"field": "osType", "exists": "yes"}, "exists expects true or false, found str"),
    ({"field": "osType", "greater": True}, "greater expects a number or a string, found bool"),
    ({"field": "osType", "lessOrEquals": [1]}, "lessOrEquals expects a number or a string, found list"),
    ({"field": "osType", "less": None}, "less expects a number or a string, found NoneType"),
    ({"field": "agent.version", "versionLess": 2}, "versionLess expects a dotted-integer version like '2.2.53.1', "
                                                    "found 2"),
    ({"field": "network", "outboundAllowed": {"destinations": [], "ports": [443]}},
     "outboundAllowed 'destinations' must be a non-empty array of service tags or CIDRs"),
    ({"field": "network", "outboundAllowed": "Storage"}, "outboundAllowed expects an object with 'destinations' "
                                                         "and 'ports'"),
])
def test_a_wrong_operand_is_a_load_error_that_says_what_was_expected(cond: dict, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_json(cond)
    assert info.value.reason == reason


@pytest.mark.parametrize(("actual", "operand", "expected"), [
    (["Storage", "AzureBackup"], "storage", True),     # an element equal ignoring case
    (["Storage", "AzureBackup"], "Stor", False),       # elements are compared whole
    ([1, 2], 2, True), ([1, 2], 3, False), ([True], 1, False), ([], "x", False),
    ("AzureBackup", "BACK", True), ("AzureBackup", "front", False),
    (5, 5, None), ("abc", 5, None), ({"a": 1}, "a", None),
])
def test_contains_and_not_contains(actual: Any, operand: Any, expected: bool | None) -> None:
    assert ev({"value": actual, "contains": operand}, {}) is expected
    assert ev({"value": actual, "notContains": operand}, {}) is (None if expected is None else not expected)


@pytest.mark.parametrize(("actual", "pattern", "expected"), [
    ("Windows", "^Win", True), ("windows", "^Win", False), ("Linux", "ux$", True), ("a\nb", "^b", False),
    (5, "5", None), (None, "x", None),
])
def test_match_and_not_match(actual: Any, pattern: str, expected: bool | None) -> None:
    assert ev({"value": actual, "match": pattern}, {}) is expected
    assert ev({"value": actual, "notMatch": pattern}, {}) is (None if expected is None else not expected)


@pytest.mark.parametrize(("actual", "operand", "equal"), [
    ("Linux", "LINUX", True), ("Linux", "Linu", False), (True, True, True), (True, 1, False), (1, True, False),
    (0, False, False), (1, 1.0, True), (None, None, True), ("1", 1, False), (1, "1", False),
    ([1, "a"], [1, "a"], True)
])
def test_equals_ignores_case_and_keeps_booleans_apart(actual: Any, operand: Any, equal: bool) -> None:
    assert ev({"value": actual, "equals": operand}, {}) is equal
    assert ev({"value": actual, "notEquals": operand}, {}) is (not equal)
    assert ev({"value": actual, "in": [operand]}, {}) is equal
    assert ev({"value": actual, "notIn": ["other", operand]}, {}) is (not equal)


@pytest.mark.parametrize(("op", "checks"), [
    ("greater", {1: False, 2: False, 3: True}),
    ("greaterOrEquals", {1: False, 2: True, 3: True}),
    ("less", {1: True, 2: False, 3: False}),
    ("lessOrEquals", {1: True, 2: True, 3: False}),
])
def test_ordering_at_and_around_the_operand(op: str, checks: dict[int, bool]) -> None:
    for actual, expected in checks.items():
        assert ev({"value": actual, op: 2}, {}) is expected, actual
        assert ev({"value": actual + 0.5, op: 2.5}, {}) is expected, actual
        assert ev({"value": "abc"[actual - 1].upper(), op: "b"}, {}) is expected, actual
    assert ev({"value": "2", op: 2}, {}) is None and ev({"value": 2, op: "2"}, {}) is None
    assert ev({"value": False, op: 2}, {}) is None and ev({"value": None, op: "a"}, {}) is None


@pytest.mark.parametrize(("op", "checks"), [
    ("versionEquals", {"2.2.9": False, "2.2.10": True, "2.2.10.0": True, "2.2.11": False}),
    ("versionGreater", {"2.2.9": False, "2.2.10": False, "2.2.11": True}),
    ("versionGreaterOrEquals", {"2.2.9": False, "2.2.10": True, "2.2.11": True}),
    ("versionLess", {"2.2.9": True, "2.2.10": False, "2.2.11": False}),
    ("versionLessOrEquals", {"2.2.9": True, "2.2.10.0": True, "2.2.11": False}),
])
def test_versions_at_and_around_the_operand(op: str, checks: dict[str, bool]) -> None:
    for actual, expected in checks.items():
        assert ev({"value": actual, op: "2.2.10"}, {}) is expected, actual
    assert ev({"value": "Unknown", op: "2.2.10"}, {}) is None
