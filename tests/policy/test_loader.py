"""Policy loading: every problem reported with file, JSON pointer and reason."""

import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight.errors import InputError
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import Override, load_params_file, parse_cli_params

GOOD: dict[str, Any] = {
    "id": "TEST-AGENT-001", "title": "Agent version", "cause": "vm-agent", "severity": "high",
    "parameters": {"minimum": {"type": "version", "default": "2.2.53.1"}},
    "assert": {"field": "agent.version", "versionGreaterOrEquals": {"parameter": "minimum"}},
    "message": "Agent {agent.version} on {name} is old", "remediation": "Update it.",
}


def write(tmp: Path, name: str, doc: Any) -> Path:
    path = tmp / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def problems(tmp: Path, overrides: dict[str, Override] | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(InputError) as info:
        load_policies([tmp], overrides)
    return [(Path(p.file).name, p.place, p.reason) for p in info.value.problems]


def test_bundled_catalog_loads_and_covers_every_cause() -> None:
    policy_set = load_policies([bundled_policy_dir()])
    causes = {p.cause for p in policy_set.policies}
    assert causes == {"outbound-connectivity", "vm-agent", "backup-extension", "sql-vss-backup",
                      "guest-shutdown", "schedule-spread", "resource-pressure", "guest-dhcp",
                      "backup-protection"}
    assert len(policy_set.sha256) == 64


def test_good_policy_loads(tmp_path: Path) -> None:
    write(tmp_path, "p.json", GOOD)
    policy = load_policies([tmp_path]).policies[0]
    assert policy.parameters == {"minimum": "2.2.53.1"}


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "p.json", '{"id": "X-1",\n  "title": }')
    [(name, place, reason)] = problems(tmp_path)
    assert name == "p.json" and place == "line 2 column 12" and "not valid JSON" in reason


def test_a_key_given_twice_names_the_object_and_the_key(tmp_path: Path) -> None:
    """Parsers keep the last of two equal keys without a word: a second `assert` pasted below the first
    would silently replace it. Every hand-written file says so instead (policies, parameters, exemptions)."""
    twice = json.dumps(GOOD).replace('"assert": {"field": "agent.version",',
                                     '"assert": {"field": "agent.version", "exists": true, "field": "name",')
    write(tmp_path, "p.json", twice)
    [(name, place, reason)] = problems(tmp_path)
    assert (name, place) == ("p.json", "/assert")
    assert reason.startswith('the key "field" is given twice in this object')
    write(tmp_path, "p.json", '{"id": "A-1", "id": "A-1"}')
    assert problems(tmp_path)[0][1:] == ("/", 'the key "id" is given twice in this object; JSON keeps only the '
                                              "last, so the other would be lost without a word: keep one")
    params = write(tmp_path / "..", "params.json", '{"a": [{"x": 1}, {"y": 1, "y": 2}]}')
    with pytest.raises(InputError) as info:
        load_params_file(params)
    assert [(p.place, p.reason[:31]) for p in info.value.problems] == [("/a/1", 'the key "y" is given twice in t')]


def test_schema_problems_are_all_reported_with_pointers(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "cause": "cosmic-rays", "severity": "urgent", "colour": "red"})
    found = problems(tmp_path)
    places = {place for _, place, _ in found}
    assert {"/cause", "/severity", "/"} <= places
    assert any("cosmic-rays" in r and "vm-agent" in r for _, _, r in found)
    assert any("unknown key" in r and "colour" in r for _, _, r in found)


def test_unknown_field_suggests_the_nearest(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "assert": {"field": "agent.verion", "exists": True}})
    [(name, place, reason)] = problems(tmp_path)
    assert (name, place) == ("p.json", "/assert/field")
    assert "did you mean 'agent.version'" in reason


def test_bad_regex(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "assert": {"field": "name", "match": "vm-[0-9"}})
    [(_, place, reason)] = problems(tmp_path)
    assert place == "/assert/match" and "invalid regular expression" in reason


def test_unknown_parameter_reference(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "assert": {"field": "agent.version",
                                                  "versionGreaterOrEquals": {"parameter": "minimun"}}})
    [(_, place, reason)] = problems(tmp_path)
    assert place == "/assert/versionGreaterOrEquals" and "unknown parameter 'minimun'" in reason


def test_duplicate_policy_id(tmp_path: Path) -> None:
    write(tmp_path, "a.json", GOOD)
    write(tmp_path, "b.json", GOOD)
    [(name, place, reason)] = problems(tmp_path)
    assert (name, place) == ("b.json", "/id") and "duplicate policy id" in reason and "a.json" in reason


def test_message_placeholder_is_checked(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "message": "Agent {agent.versoin}"})
    [(_, place, reason)] = problems(tmp_path)
    assert place == "/message" and "agent.version" in reason


def test_problems_from_several_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "a.json", {**GOOD, "severity": "urgent"})
    write(tmp_path, "b.json", "not json")
    assert {name for name, _, _ in problems(tmp_path)} == {"a.json", "b.json"}


def test_param_override_is_typed_and_checked(tmp_path: Path) -> None:
    write(tmp_path, "p.json", GOOD)
    loaded = load_policies([tmp_path], parse_cli_params(["minimum=2.3"]))
    assert loaded.policies[0].parameters["minimum"] == "2.3"
    loaded = load_policies([tmp_path], parse_cli_params(["TEST-AGENT-001.minimum=2.4"]))
    assert loaded.policies[0].parameters["minimum"] == "2.4"
    [(name, place, reason)] = problems(tmp_path, parse_cli_params(["minimum=latest"]))
    assert (name, place) == ("--param", "minimum") and "dotted-integer version" in reason


def test_override_that_no_policy_declares_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "p.json", GOOD)
    [(name, place, reason)] = problems(tmp_path, parse_cli_params(["minimumm=2.3"]))
    assert (name, place) == ("--param", "minimumm") and "no policy declares" in reason


def test_malformed_param_flag() -> None:
    with pytest.raises(InputError) as info:
        parse_cli_params(["novalue"])
    assert "NAME=VALUE" in str(info.value)


def test_parameters_file(tmp_path: Path) -> None:
    write(tmp_path / ".." , "params.json", {"minimum": 3})
    write(tmp_path, "p.json", GOOD)
    overrides = load_params_file(tmp_path / ".." / "params.json")
    [(name, place, reason)] = problems(tmp_path, overrides)
    assert name == "params.json" and place == "/minimum" and "version" in reason


def test_typed_parameters_from_text() -> None:
    from backup_preflight.policy.parameters import coerce

    assert coerce("array", "443,8443", from_text=True) == [443, 8443]
    assert coerce("array", '["Storage", "AzureBackup"]', from_text=True) == ["Storage", "AzureBackup"]
    assert coerce("boolean", "yes", from_text=True) is True
    assert coerce("integer", "12", from_text=True) == 12
    assert coerce("field", "tags.app", from_text=True) == "tags.app"
    with pytest.raises(ValueError, match="unknown field"):
        coerce("field", "tagz.app", from_text=True)
    with pytest.raises(ValueError, match="integer"):
        coerce("integer", "twelve", from_text=True)


NUMERIC: dict[str, Any] = {
    **GOOD, "id": "TEST-CPU-001",
    "parameters": {"limit": {"type": "number", "default": 90}, "sizes": {"type": "array", "default": [1]}},
    "assert": {"field": "metrics.cpuPercent.p95", "less": {"parameter": "limit"}},
    "message": "CPU on {name}",
}


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite_param_from_the_command_line_is_rejected(tmp_path: Path, text: str) -> None:
    write(tmp_path, "p.json", NUMERIC)
    [(name, place, reason)] = problems(tmp_path, parse_cli_params([f"limit={text}"]))
    assert (name, place) == ("--param", "limit") and "finite number" in reason


def test_non_finite_values_in_a_parameters_file_are_rejected(tmp_path: Path) -> None:
    params = tmp_path.parent / "nan-params.json"
    params.write_text('{"limit": NaN, "sizes": [1, -Infinity]}')
    write(tmp_path, "p.json", NUMERIC)
    with pytest.raises(InputError) as info:  # strict JSON: refused where it is read, by line and column
        load_params_file(params)
    [problem] = info.value.problems
    assert (Path(problem.file).name, problem.place) == ("nan-params.json", "line 1 column 11")
    assert "NaN is not a JSON number" in problem.reason


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_non_finite_literals_in_a_policy_are_load_errors(tmp_path: Path, literal: str) -> None:
    doc = json.dumps(NUMERIC).replace('"default": 90', f'"default": {literal}')
    write(tmp_path, "p.json", doc)
    [(name, place, reason)] = problems(tmp_path)
    column = doc.index(literal) + 1
    assert (name, place) == ("p.json", f"line 1 column {column}") and f"{literal} is not a JSON number" in reason


def test_non_finite_operand_in_a_condition_is_a_load_error(tmp_path: Path) -> None:
    doc = json.dumps({**NUMERIC, "assert": {"field": "metrics.cpuPercent.p95", "less": 1.5}})
    doc = doc.replace("1.5", "-Infinity")
    write(tmp_path, "p.json", doc)
    [(name, place, reason)] = problems(tmp_path)
    column = doc.index("-Infinity") + 1
    assert (name, place) == ("p.json", f"line 1 column {column}") and "Infinity is not a JSON number" in reason


def test_a_value_put_into_a_message_is_never_expanded_again(tmp_path: Path) -> None:
    write(tmp_path, "p.json", {**GOOD, "message": "{tags.owner} owns {name} ({agent.version})"})
    message = load_policies([tmp_path]).policies[0].message
    facts = {"name": "vm1", "tags": {"owner": "{name} {agent.version}"}, "agent": {"version": "{tags.owner}"}}
    assert message.render(facts) == "{name} {agent.version} owns vm1 ({tags.owner})"


@pytest.mark.parametrize(("facts", "shown"), [
    ({"agent": {"version": True}}, "true"), ({"agent": {"version": False}}, "false"),
    ({"agent": {"version": None}}, "(none)"), ({"agent": {}}, "(not collected)"),
    ({"agent": {"version": 3}}, "3"), ({"agent": {"version": [True, None, "a"]}}, "true, (none), a"),
    ({"agent": {"version": list(range(20))}}, ", ".join(map(str, range(20)))),
    ({"agent": {"version": list(range(23))}}, ", ".join(map(str, range(20))) + " and 3 more"),
])
def test_message_shows_facts_as_an_operator_reads_them(tmp_path: Path, facts: dict, shown: str) -> None:
    write(tmp_path, "p.json", {**GOOD, "message": "[{agent.version}]"})
    assert load_policies([tmp_path]).policies[0].message.render(facts) == f"[{shown}]"


def test_policy_summary_and_parameters(tmp_path: Path) -> None:
    write(tmp_path, "p.json", GOOD)
    policies = load_policies([tmp_path])
    assert policies.policies[0].summary() == {"id": "TEST-AGENT-001", "title": "Agent version",
                                              "cause": "vm-agent", "severity": "high"}
    assert policies.parameters() == {"TEST-AGENT-001": {"minimum": "2.2.53.1"}}


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("TRUE", True), (" Yes ", True), ("1", True),
    ("false", False), ("False", False), ("no", False), ("NO", False), ("0", False),
])
def test_boolean_parameters_from_text(text: str, value: bool) -> None:
    from backup_preflight.policy.parameters import coerce

    assert coerce("boolean", text, from_text=True) is value


def test_boolean_text_that_is_neither_is_an_error() -> None:
    from backup_preflight.policy.parameters import coerce

    with pytest.raises(ValueError, match='expected true or false, found "maybe"'):
        coerce("boolean", "maybe", from_text=True)
    with pytest.raises(ValueError, match='expected an integer, found "12"'):
        coerce("integer", "12", from_text=False)   # a JSON file's string is not converted
    assert coerce("number", "2.5", from_text=True) == 2.5
    assert coerce("array", " 443 , x ,, ", from_text=True) == [443, "x"]
    with pytest.raises(ValueError, match='expected an array, found "\\[1, 2"'):
        coerce("array", "[1, 2", from_text=True)   # looks like JSON but is not: an error, not a guess


def test_cli_params_split_at_the_first_equals_and_report_every_malformed_item() -> None:
    assert parse_cli_params(["tag=a=b"])["tag"].value == "a=b"
    assert parse_cli_params([" name =v"])["name"] == Override("v", "--param", "name", from_text=True)
    with pytest.raises(InputError) as info:
        parse_cli_params(["novalue", "=x", "ok=1"])
    assert [(p.file, p.place, p.reason) for p in info.value.problems] == [
        ("--param", "novalue", "expected NAME=VALUE"), ("--param", "=x", "expected NAME=VALUE")]


def test_parameters_file_with_a_parameters_wrapper_and_a_bad_shape(tmp_path: Path) -> None:
    wrapped = write(tmp_path, "wrapped.json", {"parameters": {"minimum": "2.3"}})
    assert load_params_file(wrapped) == {"minimum": Override("2.3", str(wrapped), "/parameters/minimum",
                                                             from_text=False)}
    flat = write(tmp_path, "flat.json", {"minimum": "2.3", "parameters": 5})
    assert load_params_file(flat)["minimum"] == Override("2.3", str(flat), "/minimum", from_text=False)
    listed = write(tmp_path, "list.json", [1])
    with pytest.raises(InputError) as info:
        load_params_file(listed)
    assert [(p.file, p.place, p.reason) for p in info.value.problems] == [
        (str(listed), "/", "expected a JSON object of parameter names to values")]


def test_non_finite_names_the_first_place_and_coerce_shows_the_value() -> None:
    from backup_preflight.policy.parameters import coerce, non_finite

    assert non_finite(float("nan")) == "/"
    assert non_finite({"a": [1, {"b": float("-inf")}], "c": float("nan")}) == "/a/1/b"
    assert non_finite({"a": [1.5, "nan"], "b": None}) is None
    with pytest.raises(ValueError) as info:
        coerce("array", [1, float("inf")], from_text=False)
    assert str(info.value) == "found [1, Infinity]: NaN and infinities cannot be compared; give a finite number"


FULL: dict[str, Any] = {
    **GOOD, "id": "TEST-FULL-001", "description": "Why it matters.", "tags": ["agent"],
    "references": [{"title": "Docs", "url": "https://learn.microsoft.com/azure/backup/"}],
    "applies": {"field": "powerState", "equals": "running"},
    "parameters": {"minimum": {"type": "version", "default": "2.2.53.1"},
                   "mode": {"type": "string", "default": "strict", "allowedValues": ["strict", "lenient"]}},
}


def test_a_policy_keeps_every_field_of_its_document(tmp_path: Path) -> None:
    path = write(tmp_path, "full.json", FULL)
    policy = load_policies([path]).policies[0]
    assert (policy.remediation, policy.file, policy.document, policy.description, policy.tags,
            policy.references) == ("Update it.", str(path), FULL, "Why it matters.", ["agent"], FULL["references"])
    assert policy.applies is not None and policy.query is None and policy.group_by == ()
    assert policy.parameters == {"minimum": "2.2.53.1", "mode": "strict"}
    bare = load_policies([write(tmp_path, "bare.json", GOOD)]).policies
    assert [(p.description, p.tags, p.references, p.applies) for p in bare if p.id == GOOD["id"]] == [
        ("", [], [], None)]


@pytest.mark.parametrize(("doc", "expected"), [
    ({**FULL, "parameters": {"mode": {"type": "string"}, "other": {"type": "integer"}}},
     [("p.json", "/parameters/mode", "parameter has no default and no value was given with --param"),
      ("p.json", "/parameters/other", "parameter has no default and no value was given with --param")]),
    ({**FULL, "parameters": {"n": {"type": "integer", "default": "5"}}},
     [("p.json", "/parameters/n/default", "parameter 'n' (integer): expected an integer, found \"5\"")]),
    ({**FULL, "parameters": {"a": {"type": "string", "default": "x", "allowedValues": ["y"]},
                             "b": {"type": "integer", "default": 3, "allowedValues": [1, 2]}}},
     [("p.json", "/parameters/a/default", 'parameter \'a\': "x" is not one of ["y"]'),
      ("p.json", "/parameters/b/default", "parameter 'b': 3 is not one of [1, 2]")]),
    ({**GOOD, "assert": {"field": "osType", "equals": {"parameter": "nope"}}},
     [("p.json", "/assert/equals", "unknown parameter 'nope'; declared: minimum")]),
    ({**GOOD, "parameters": {}, "assert": {"field": "osType", "equals": {"parameter": "nope"}}},
     [("p.json", "/assert/equals", "unknown parameter 'nope'; declared: none")]),
    ({**GOOD, "parameters": {"b": {"type": "string", "default": "x"}, "a": {"type": "string", "default": "y"}},
      "assert": {"field": "osType", "equals": {"parameter": "c"}}},
     [("p.json", "/assert/equals", "unknown parameter 'c'; declared: a, b")]),
    ({**GOOD, "groupBy": [{"parameter": "nope"}, "zone.name"], "assert": {"field": "group.size", "less": 3}},
     [("p.json", "/groupBy/0", "unknown parameter 'nope'; declared: minimum"),
      ("p.json", "/groupBy/1", "unknown field 'zone.name'; did you mean 'name'?")]),
    ({**GOOD, "message": "{group.size} of {group.key} on {name}"},
     [("p.json", "/message", "{group.size} needs 'groupBy'"), ("p.json", "/message", "{group.key} needs 'groupBy'")]),
])
def test_compile_problems_name_file_place_and_reason(tmp_path: Path, doc: dict, expected: list) -> None:
    write(tmp_path, "p.json", doc)
    assert problems(tmp_path) == expected


def test_an_allowed_value_and_a_mode_override_load(tmp_path: Path) -> None:
    write(tmp_path, "p.json", FULL)
    assert load_policies([tmp_path], parse_cli_params(["mode=lenient"])).policies[0].parameters["mode"] == "lenient"


def test_query_policies_may_name_id_and_name_in_messages(tmp_path: Path) -> None:
    doc = {**GOOD, "target": "resourceGraphQuery", "query": "resources | project id, name, x",
           "assert": {"field": "row.x", "equals": 1}, "message": "{name} ({id}) has x={row.x}"}
    policy = load_policies([write(tmp_path, "q.json", doc)]).policies[0]
    assert policy.message.render({"id": "/r/1", "name": "one", "row": {"x": 2}}) == "one (/r/1) has x=2"


def test_policy_sources_that_hold_nothing_are_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as info:
        load_policies([tmp_path / "empty", tmp_path / "absent.json"])
    assert [(p.file, p.place, p.reason) for p in info.value.problems] == [
        (str(tmp_path / "empty"), "", "folder holds no *.json policy files"),
        (str(tmp_path / "absent.json"), "", "no such file or folder")]


def test_a_param_refused_by_every_policy_that_declares_it_is_one_problem() -> None:
    """egressDeviceDeclared is declared by VMBK-NET-001 and -002: the same line was printed once per policy."""
    with pytest.raises(InputError) as info:
        load_policies([bundled_policy_dir()], parse_cli_params(["egressDeviceDeclared=maybe"]))
    assert [str(p) for p in info.value.problems] == [
        "--param: egressDeviceDeclared: parameter 'egressDeviceDeclared' (boolean): expected true or false, "
        'found "maybe"']
