"""Three-valued logic, operators, count and parameters, on fact records."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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


# --- count decides as soon as the definite matches settle the comparison --------------------

#: Three extensions: one definitely failed, one definitely succeeded, one whose state is unknown.
MIXED = {"extensions": [
    {"type": "VMSnapshotLinux", "provisioningState": "Failed"},
    {"type": "AzureMonitorLinuxAgent", "provisioningState": "Succeeded"},
    {"type": "CustomScript"}]}
FAILED = {"field": "extensions[*].provisioningState", "equals": "Failed"}


def _count(op: str, operand: object) -> dict:
    return {"count": {"field": "extensions[*]", "where": FAILED}, op: operand}


@pytest.mark.parametrize(("op", "operand", "expected"), [
    # the count is 1 or 2: a comparison true (or false) for both is decided
    ("greater", 0, True), ("greaterOrEquals", 1, True), ("greater", 2, False),
    ("less", 1, False), ("less", 3, True), ("lessOrEquals", 2, True), ("lessOrEquals", 0, False),
    ("equals", 0, False), ("notEquals", 0, True), ("in", [1, 2], True), ("notIn", [1, 2], False),
    ("equals", 3, False), ("in", [0, 3], False),
    # ... and one the unknown element could change is unknown
    ("greater", 1, None), ("equals", 1, None), ("equals", 2, None), ("less", 2, None),
    ("lessOrEquals", 1, None), ("notEquals", 2, None), ("in", [1], None), ("in", [2, 5], None),
])
def test_count_decides_when_the_definite_matches_settle_it(op: str, operand: object, expected: bool | None) -> None:
    assert ev(_count(op, operand), MIXED) is expected


def test_count_agrees_with_trying_every_outcome_of_the_unknown_elements() -> None:
    """Oracle: fill each unknown state with both values; decided iff all fillings agree."""
    import itertools

    states = ["Failed", "Succeeded", None, None, "Failed", None]
    extensions = [{"type": f"e{i}"} | ({"provisioningState": s} if s else {}) for i, s in enumerate(states)]
    holes = [i for i, s in enumerate(states) if s is None]
    for op, operand in itertools.product(["equals", "notEquals", "greater", "greaterOrEquals", "less",
                                          "lessOrEquals"], range(7)):
        outcomes = set()
        for fill in itertools.product([True, False], repeat=len(holes)):
            definite = sum(s == "Failed" for s in states) + sum(fill)
            outcomes.add({"equals": definite == operand, "notEquals": definite != operand,
                          "greater": definite > operand, "greaterOrEquals": definite >= operand,
                          "less": definite < operand, "lessOrEquals": definite <= operand}[op])
        want = outcomes.pop() if len(outcomes) == 1 else None
        assert ev(_count(op, operand), {"extensions": extensions}) is want, (op, operand)


def test_count_without_unknown_elements_is_exact_and_a_null_array_counts_zero() -> None:
    assert ev(_count("equals", 1), FACTS) is True
    assert ev({"count": {"field": "extensions[*]"}, "equals": 3}, MIXED) is True
    assert ev({"count": {"field": "extensions[*]"}, "equals": 0}, {"extensions": None}) is True
    assert ev({"count": {"field": "extensions[*]"}, "exists": True}, {"extensions": []}) is True
    assert ev({"count": {"field": "extensions[*]"}, "exists": True}, {}) is False
    assert ev({"count": {"field": "extensions[*]"}, "exists": False}, {}) is True


def test_count_explanations_give_the_span_and_name_the_missing_element_fact() -> None:
    undecided = compile_json(_count("equals", 1)).explain(MIXED, Context())
    assert undecided == [
        "count of extensions matching the where condition is between 1 and 2 (1 element(s) could not "
        "be assessed): equals 1 is undecided",
        "extensions[*].provisioningState was not collected"]
    decided = compile_json(_count("equals", 0)).explain(MIXED, Context())
    assert decided == [("count of extensions matching the where condition is between 1 and 2 (1 element(s) "
                          "could not be assessed): equals 0 does not hold")]
    exact = compile_json(_count("greater", 1)).explain(FACTS, Context())
    assert exact == ["count of extensions matching the where condition is 1: greater 1 does not hold"]
    assert compile_json({"count": {"field": "machineConfiguration[*]"}, "equals": 0}).explain(FACTS, Context()) \
        == ["machineConfiguration was not collected"]


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("vm-?", "vm-1", False), ("vm-?", "vm-?", True),           # ? is a plain character
    ("vm-[12]", "vm-1", False), ("vm-[12]", "VM-[12]", True),  # so is [ … ]
    ("*-prod-*", "App-PROD-01", True), ("*-prod-*", "app-prod", False),
    ("prod", "production", False), ("*prod", "preprod", True),  # the whole value must match
    ("a.b*", "axb1", False), ("a.b*", "a.b1", True),           # regex characters are literal too
    ("*", "", True), ("", "", True), ("", "x", False),
    ("web*\n", "web1\n", True), ("line*end", "line\nend", True),
])
def test_like_follows_azure_policy(pattern: str, value: str, expected: bool) -> None:
    assert ev({"value": value, "like": pattern}, {}) is expected
    assert ev({"value": value, "notLike": pattern}, {}) is (not expected)


def _like_oracle(pattern: str, value: str) -> bool:
    """The definition, character by character: a star takes any run of characters (every length is tried)."""
    if not pattern:
        return not value
    if pattern[0] == "*":
        return any(_like_oracle(pattern[1:], value[i:]) for i in range(len(value) + 1))
    return bool(value) and value[0].casefold() == pattern[0].casefold() and _like_oracle(pattern[1:], value[1:])


@settings(max_examples=500, deadline=None)
@given(st.text("ab*A", max_size=7), st.text("abAB", max_size=9))
@example("*a*a", "a")  # the last piece may not overlap a middle one
@example("ab*ba", "aba")  # nor the first
@example("*ab*b", "abb")  # a middle piece's end moves the next search on
@example("a*A", "A")
@example("ab*b*", "ab")  # a middle piece is searched after the first one, not inside it (a surviving mutant)
def test_like_agrees_with_its_definition(pattern: str, value: str) -> None:
    assert ev({"value": value, "like": pattern}, {}) is _like_oracle(pattern, value)


def test_like_takes_linear_time_where_backtracking_would_not_end() -> None:
    """`re` needed 90 s for this pattern on 200 characters; 200,000 are instant now."""
    assert ev({"value": "a" * 200_000, "like": "*a*a*a*a*a*b"}, {}) is False
    assert ev({"value": "timeout snapshot " * 10_000 + "failed", "like": "*timeout*snapshot*failed*"}, {}) is True


def test_like_on_a_non_string_is_unknown() -> None:
    assert ev({"value": 5, "like": "5*"}, {}) is None
    assert ev({"value": 5, "notLike": "5*"}, {}) is None


@pytest.mark.parametrize(("op", "actual", "operand", "expected"), [
    ("greater", "b", "A", True), ("greater", "B", "a", True),       # case ignored both ways
    ("less", "Zulu", "alpha", False), ("less", "alpha", "ZULU", True),
    ("greaterOrEquals", "Standard_D2", "standard_d2", True), ("lessOrEquals", "ABC", "abc", True),
    ("greater", "abc", "ABC", False), ("less", "abc", "ABC", False),
])
def test_string_ordering_ignores_case(op: str, actual: str, operand: str, expected: bool) -> None:
    assert ev({"value": actual, op: operand}, {}) is expected


# --- conditions inside a count's `where`: element fields, VM facts and logic together ----------

#: Backup extensions that failed on a Linux VM; the where mixes the VM's own fact with element facts.
NESTED = {"count": {"field": "extensions[*]", "where": {"allOf": [
    {"field": "osType", "equals": "Linux"},
    {"anyOf": [{"field": "extensions[*].type", "equals": "VMSnapshotLinux"},
               {"field": "extensions[*].type", "equals": "VMSnapshot"}]},
    {"not": {"field": "extensions[*].provisioningState", "equals": "Succeeded"}}]}}, "greater": 0}


def test_where_reads_element_facts_and_the_vms_own_facts() -> None:
    linux = {"osType": "Linux", "extensions": [
        {"type": "VMSnapshotLinux", "provisioningState": "Failed"}, {"type": "Other", "provisioningState": "Failed"}]}
    assert ev(NESTED, linux) is True
    assert ev(NESTED, {**linux, "osType": "Windows"}) is False
    ok = {"osType": "Linux", "extensions": [{"type": "VMSnapshot", "provisioningState": "Succeeded"}]}
    assert ev(NESTED, ok) is False


def test_explaining_an_undecided_element_walks_the_where_logic() -> None:
    facts = {"osType": "Linux", "extensions": [
        {"type": "VMSnapshotLinux", "provisioningState": "Succeeded"}, {"type": "VMSnapshot"}]}
    node = compile_json(NESTED)
    assert node.eval(facts, Context()) is None
    assert node.explain(facts, Context()) == [
        "count of extensions matching the where condition is between 0 and 1 (1 element(s) could not be "
        "assessed): greater 0 is undecided",
        "extensions[*].provisioningState was not collected"]


def test_explain_of_logic_at_the_top_level() -> None:
    node = compile_json({"anyOf": [{"allOf": [{"field": "osType", "equals": "Windows"}, U]}, F,
                                   {"not": T}]})
    # the Windows-only branch does not apply to a Linux VM, so it does not explain the failure
    assert node.explain(FACTS, Context()) == ['osType is "Linux": equals "Windows" does not hold',
                                              'not (osType is "Linux": equals "Linux" holds)']
    assert compile_json({"not": U}).explain(FACTS, Context()) == ["agent.version was not collected"]
    assert compile_json({"allOf": [T, F, U]}).explain(FACTS, Context()) == [
        'osType is "Linux": equals "Windows" does not hold']
    assert compile_json({"value": [1, "a"], "equals": 2}).explain({}, Context()) == [
        'value [1, "a"] is [1, "a"]: equals 2 does not hold']
    assert compile_json({"value": 5, "like": "5*"}).explain({}, Context()) == [
        'value 5 is 5, which cannot be compared by like with "5*"']
    assert compile_json({"field": "tags.owner", "exists": True}).explain(FACTS, Context()) == [
        'tags.owner is absent: exists true does not hold']


@pytest.mark.parametrize(("cond", "pointer", "reason"), [
    ("osType", "", "a condition must be an object"),
    ({"allOf": [T], "not": F}, "", "'allOf' cannot be combined with ['not'] in one condition"),
    ({"not": T, "field": "osType", "equals": "x"}, "", "'not' cannot be combined with ['equals', 'field'] in one "
                                                       "condition"),
    ({"anyOf": {"field": "osType"}}, "/anyOf", "'anyOf' needs a non-empty array of conditions"),
    ({"not": {"field": "osType", "equalz": 1}}, "/not/equalz", "unknown operator 'equalz'; known: equals, "
     "notEquals, in, notIn, like, notLike, match, notMatch, contains, notContains, exists, greater, greaterOrEquals, "
     "less, lessOrEquals, versionEquals, versionGreater, versionGreaterOrEquals, versionLess, versionLessOrEquals, "
     "outboundAllowed"),
    ({"equals": 1}, "", "a condition needs exactly one of 'field', 'value' or 'count' (or 'allOf', 'anyOf', 'not')"),
    ({"field": "osType", "value": 1, "equals": 1}, "", "a condition needs exactly one of 'field', 'value' or "
                                                       "'count' (or 'allOf', 'anyOf', 'not')"),
    ({"field": "osType", "where": T, "equals": 1}, "/where", "'where' belongs inside 'count'"),
    ({"field": "", "equals": 1}, "/field", "'field' must be a non-empty string"),
    ({"field": 5, "equals": 1}, "/field", "'field' must be a non-empty string"),
    ({"count": "extensions[*]", "equals": 1}, "/count", "'count' needs an object with 'field' (and optional "
                                                        "'where')"),
    ({"count": {"where": T}, "equals": 1}, "/count", "'count' needs an object with 'field' (and optional 'where')"),
    ({"count": {"field": "extensions[*]", "filter": T, "select": 1}, "equals": 1}, "/count/filter",
     "unknown key 'filter' in 'count'"),
    ({"count": {"field": "extensions"}, "equals": 1}, "/count/field", "'count' field must end with [*], e.g. "
                                                                      "'extensions[*]'"),
    ({"count": {"field": 5}, "equals": 1}, "/count/field", "'count' field must end with [*], e.g. 'extensions[*]'"),
    ({"count": {"field": "extensionz[*]"}, "equals": 1}, "/count/field", "unknown field 'extensionz'; did you mean "
                                                                         "'extensions'?"),
    ({"count": {"field": "group.members[*]"}, "equals": 1}, "/count/field", "'group.members' is only available in "
                                                                            "policies with 'groupBy'"),
    ({"count": {"field": "extensions[*]", "where": {"field": "extensions[*].typ", "equals": 1}}, "equals": 1},
     "/count/where/field", "unknown field 'extensions[*].typ'; did you mean 'extensions[*].type'?"),
    ({"count": {"field": "extensions[*]", "where": {"field": "group.size", "equals": 1}}, "equals": 1},
     "/count/where/field", "'group.size' is only available in policies with 'groupBy'"),
    ({"value": {"parameter": "nope"}, "equals": 1}, "/value", "unknown parameter 'nope'"),
    ({"value": [1, {"parameter": "nope"}], "equals": 1}, "/value/1", "unknown parameter 'nope'"),
    ({"value": 1, "in": [{"a": {"parameter": "nope"}}]}, "/in/0/a", "unknown parameter 'nope'"),
    ({"not": {"value": {"parameter": "nope"}, "equals": 1}}, "/not/value", "unknown parameter 'nope'"),
    ({"value": 1, "outboundAllowed": {"destinations": ["Storage"], "ports": [443]}}, "/outboundAllowed",
     "'outboundAllowed' applies to the field 'network'"),
    ({"field": "osType", "outboundAllowed": {"destinations": ["Storage"], "ports": [443]}}, "/outboundAllowed",
     "'outboundAllowed' applies to the field 'network'"),
])
def test_every_compile_error_names_its_pointer_and_reason(cond: object, pointer: str, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_json(cond)
    assert (info.value.pointer, info.value.reason, str(info.value)) == (pointer, reason, reason)


def test_parameters_inside_a_count_and_a_group_policy_count() -> None:
    node = compile_json({"count": {"field": "extensions[*]", "where": {
        "field": "extensions[*].type", "equals": {"parameter": "kind"}}}, "equals": 1}, {"kind": "AMA"})
    assert node.eval({"extensions": [{"type": "ama"}, {"type": "x"}]}, Context()) is True
    group = compile_json({"count": {"field": "group.members[*]"}, "greater": 1}, allow_group=True)
    assert group.eval({"group": {"members": ["a", "b"]}}, Context()) is True


def test_count_without_where_is_labelled_as_a_plain_count() -> None:
    node = compile_json({"count": {"field": "extensions[*]"}, "equals": 5})
    assert node.explain(FACTS, Context()) == ["count of extensions is 2: equals 5 does not hold"]


def test_the_undecided_element_explained_is_the_first_undecided_one_not_the_first_one() -> None:
    facts = {"osType": "Linux", "extensions": [
        {"type": "VMSnapshotLinux", "provisioningState": "Failed"}, {"provisioningState": "Failed"}]}
    node = compile_json({**NESTED, "greater": 1})
    assert node.explain(facts, Context()) == [
        "count of extensions matching the where condition is between 1 and 2 (1 element(s) could not be "
        "assessed): greater 1 is undecided",
        "extensions[*].type was not collected", "extensions[*].type was not collected"]  # once per anyOf branch


def test_shared_verdicts_never_ignore_the_array_a_count_reads() -> None:
    count = {"count": {"field": "extensions[*]"}, "equals": 0}
    assert [p.text for p in compile_json(count).reads()] == ["extensions"]  # the array whole, all it counts
    assert compile_json({"value": 1, "equals": 1}).reads() == []
    assert [p.text for p in compile_json({"allOf": [T, U]}).reads()] == ["osType", "agent.version"]
    assert [p.text for p in compile_json({"anyOf": [T, {"not": count}]}).reads()] == ["osType", "extensions"]


def test_group_facts_are_readable_inside_a_count_of_a_grouped_policy() -> None:
    node = compile_json({"count": {"field": "extensions[*]", "where": {"allOf": [
        {"field": "group.size", "greater": 1}, {"field": "extensions[*].type", "equals": "AMA"}]}}, "equals": 1},
        allow_group=True)
    assert node.eval({"group": {"size": 2}, "extensions": [{"type": "AMA"}, {"type": "x"}]}, Context()) is True


def test_where_next_to_a_count_is_an_error_not_ignored() -> None:
    with pytest.raises(ConditionError) as info:
        compile_json({"count": {"field": "extensions[*]"}, "where": FAILED, "equals": 0})
    assert (info.value.pointer, info.value.reason) == ("/where", "'where' belongs inside 'count'")


def test_a_count_over_a_query_rows_array_checks_row_paths_in_its_where() -> None:
    from backup_preflight.policy.paths import check_row_path

    deny = {"field": "row.rules[*].access", "equals": "Deny"}
    node = compile_json({"count": {"field": "row.rules[*]", "where": deny}, "equals": 1}, paths=check_row_path)
    assert node.eval({"row": {"rules": [{"access": "deny"}, {"access": "Allow"}]}}, Context()) is True


class _Network:
    """A `network` fact whose verdict is given: value, and what a pass assumes."""

    def __init__(self, value: bool | None, assumed: tuple[str, ...] = ()) -> None:
        from backup_preflight.estate.network import Verdict

        self.verdict = Verdict(value, ("evidence",), assumed)

    def outbound(self, query: object) -> object:
        return self.verdict


NET = {"field": "network", "outboundAllowed": {"destinations": ["Storage"], "ports": [443]}}


@pytest.mark.parametrize(("cond", "value", "expected"), [
    (NET, True, ["no BGP default"]),
    ({"allOf": [T, NET]}, True, ["no BGP default"]),
    ({"anyOf": [F, NET]}, True, ["no BGP default"]),
    ({"anyOf": [T, NET]}, False, []),        # the pass does not rest on the network branch
    ({"anyOf": [NET, T]}, None, []),
    ({"allOf": [T, {"anyOf": [F, NET]}]}, True, ["no BGP default"]),
    (T, True, []),
])
def test_a_pass_names_the_assumptions_of_the_parts_that_made_it(cond: dict, value: bool | None,
                                                                   expected: list[str]) -> None:
    node = compile_json(cond)
    facts = {**FACTS, "network": _Network(value, ("no BGP default",) if value else ())}
    assert node.eval(facts, Context()) is True
    assert node.assumes is (cond is not T)
    assert node.assumptions(facts, Context()) == expected


def test_only_a_pass_of_outbound_allowed_assumes_anything() -> None:
    assert compile_json({"not": NET}).assumes is False
    assert compile_json({"allOf": [T, F]}).assumes is False
