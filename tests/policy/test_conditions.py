"""Three-valued logic, operators, count and parameters, on fact records."""

import pytest

from backup_preflight.policy.conditions import ConditionError, Context

from policy_helpers import compile_json, ev

T = {"field": "osType", "equals": "Linux"}          # true on FACTS
F = {"field": "osType", "equals": "Windows"}        # false on FACTS
U = {"field": "agent.version", "equals": "2.2.53.1"}  # unknown: agent.version not collected
FACTS = {"osType": "Linux", "agent": {}, "tags": {"Env": "prod"}, "extensions": [
    {"name": "VMSnapshotLinux", "type": "VMSnapshotLinux", "provisioningState": "Failed"},
    {"name": "AMA", "type": "AzureMonitorLinuxAgent", "provisioningState": "Succeeded"}]}


@pytest.mark.parametrize(("parts", "expected"), [
    ([T, T], True), ([T, F], False), ([T, U], None), ([F, U], False), ([U, F], False), ([U, U], None),
])
def test_all_of(parts: list, expected: bool | None) -> None:
    assert ev({"allOf": parts}, FACTS) is expected


@pytest.mark.parametrize(("parts", "expected"), [
    ([F, F], False), ([F, T], True), ([F, U], None), ([T, U], True), ([U, T], True), ([U, U], None),
])
def test_any_of(parts: list, expected: bool | None) -> None:
    assert ev({"anyOf": parts}, FACTS) is expected


def test_not_keeps_unknown() -> None:
    assert ev({"not": T}, FACTS) is False
    assert ev({"not": F}, FACTS) is True
    assert ev({"not": U}, FACTS) is None


def test_exists_is_always_definite() -> None:
    assert ev({"field": "agent.version", "exists": True}, FACTS) is False
    assert ev({"field": "agent.version", "exists": False}, FACTS) is True
    assert ev({"field": "osType", "exists": True}, FACTS) is True


def test_missing_fact_is_unknown_for_every_comparison() -> None:
    for op, operand in [("equals", "x"), ("notEquals", "x"), ("in", ["x"]), ("notIn", ["x"]),
                        ("like", "x*"), ("match", "x"), ("greater", 1), ("versionLess", "1.0")]:
        assert ev({"field": "agent.version", op: operand}, FACTS) is None, op


def test_absent_tag_is_null_not_unknown_and_tag_names_fold_case() -> None:
    assert ev({"field": "tags.env", "equals": "prod"}, FACTS) is True
    assert ev({"field": "tags.owner", "equals": "x"}, FACTS) is False
    assert ev({"field": "tags.owner", "exists": True}, FACTS) is False


@pytest.mark.parametrize(("cond", "expected"), [
    ({"field": "osType", "equals": "linux"}, True),            # case-insensitive, as Azure Policy
    ({"field": "osType", "notEquals": "LINUX"}, False),
    ({"field": "osType", "in": ["windows", "linux"]}, True),
    ({"field": "osType", "notIn": ["windows"]}, True),
    ({"field": "osType", "like": "Lin*"}, True),
    ({"field": "osType", "notLike": "*dows"}, True),
    ({"field": "osType", "match": "^L[a-z]+x$"}, True),
    ({"field": "osType", "match": "^l"}, False),               # regex is case-sensitive
    ({"field": "osType", "contains": "NU"}, True),
    ({"field": "osType", "notContains": "win"}, True),
    ({"value": 5, "greater": 4}, True), ({"value": 5, "greaterOrEquals": 5}, True),
    ({"value": 5, "less": 5}, False), ({"value": 5, "lessOrEquals": 5}, True),
    ({"value": "2.2.9", "versionGreaterOrEquals": "2.2.53.1"}, False),
    ({"value": "2.2.53.1", "versionGreaterOrEquals": "2.2.9"}, True),
    ({"value": "1.0.9117.0", "versionGreater": "1.0.91.0"}, True),
    ({"value": "1.0.91.0", "versionLess": "1.0.9117.0"}, True),
    ({"value": "1.0", "versionEquals": "1.0.0"}, True),
    ({"value": "2.2.53.1", "versionLessOrEquals": "2.2.53.1"}, True),
])
def test_operators(cond: dict, expected: bool) -> None:
    assert ev(cond, FACTS) is expected


def test_incomparable_values_are_unknown_not_false() -> None:
    # Cloud Custodian's wart: a TypeError quietly becomes False. Here it is unknown.
    assert ev({"value": "abc", "greater": 5}, FACTS) is None
    assert ev({"value": "Unknown", "versionGreaterOrEquals": "2.2.53.1"}, FACTS) is None
    assert ev({"value": True, "greater": 0}, FACTS) is None


def test_count_with_where_over_elements() -> None:
    failed = {"count": {"field": "extensions[*]", "where": {
        "field": "extensions[*].provisioningState", "equals": "Failed"}}, "equals": 1}
    assert ev(failed, FACTS) is True
    assert ev({"count": {"field": "extensions[*]"}, "greater": 1}, FACTS) is True
    # unknown element fact → count unknown
    unknown = {"count": {"field": "extensions[*]", "where": {
        "field": "extensions[*].typeHandlerVersion", "equals": "1.0"}}, "equals": 0}
    assert ev(unknown, FACTS) is None
    # the array itself not collected → unknown
    assert ev({"count": {"field": "machineConfiguration[*]"}, "equals": 0}, FACTS) is None


def test_parameters_are_substituted_at_compile_time() -> None:
    node = {"field": "agent.version", "versionGreaterOrEquals": {"parameter": "minimum"}}
    assert ev(node, {"agent": {"version": "2.2.60"}}, {"minimum": "2.2.53.1"}) is True
    assert ev(node, {"agent": {"version": "2.2.60"}}, {"minimum": "2.3"}) is False


def test_explain_names_the_missing_fact_and_the_deciding_value() -> None:
    node = compile_json({"allOf": [T, U]})
    assert node.explain(FACTS, Context()) == ["agent.version was not collected"]
    node = compile_json({"field": "osType", "equals": "Windows"})
    assert node.explain(FACTS, Context()) == ['osType is "Linux": equals "Windows" does not hold']


@pytest.mark.parametrize(("cond", "pointer", "fragment"), [
    ({"field": "agent.verison", "equals": "x"}, "/field", "did you mean 'agent.version'"),
    ({"field": "osType", "match": "("}, "/match", "invalid regular expression"),
    ({"field": "osType", "equalz": "x"}, "/equalz", "unknown operator"),
    ({"field": "osType", "equals": "x", "in": ["x"]}, "", "exactly one operator"),
    ({"field": "osType"}, "", "exactly one operator"),
    ({"allOf": []}, "/allOf", "non-empty array"),
    ({"field": "extensions[*].type", "equals": "x"}, "/field", "count"),
    ({"field": "osType", "versionLess": "latest"}, "/versionLess", "dotted-integer"),
    ({"field": "osType", "equals": {"parameter": "nope"}}, "/equals", "unknown parameter 'nope'"),
    ({"field": "group.size", "less": 3}, "/field", "groupBy"),
    ({"field": "network", "equals": 1}, "/equals", "outboundAllowed"),
    ({"anyOf": [T, {"field": "osTipe", "equals": 1}]}, "/anyOf/1/field", "did you mean 'osType'"),
])
def test_compile_errors_carry_pointer_and_reason(cond: dict, pointer: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_json(cond)
    assert info.value.pointer == pointer
    assert fragment in info.value.reason
