"""Random policies drawn from policy.schema.json either load or fail with exit 2 and one line per
problem, never a traceback; match patterns run in linear time (RE2) or are refused at load."""

from __future__ import annotations

import json
import tempfile
import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from backup_preflight import cli, scan
from backup_preflight.errors import InputError
from backup_preflight.estate import build_estate
from backup_preflight.findings import STATUSES
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import load_policies
from backup_preflight.policy.paths import known_paths

GOOD: dict[str, Any] = {
    "id": "FUZZ-001", "title": "Name pattern", "cause": "vm-agent", "severity": "high",
    "assert": {"field": "name", "match": "^vm-"}, "message": "{name} is named oddly", "remediation": "Rename it.",
}


def flat_schema() -> dict[str, Any]:
    """policy.schema.json with conditions that do not nest (hypothesis-jsonschema cannot draw from
    recursive references, and unrolling them makes it take minutes to start); nesting is added below."""
    schema = json.loads(resources.files("backup_preflight.policies").joinpath("policy.schema.json").read_text())
    leaf = schema["$defs"]["condition"]
    for key in ("allOf", "anyOf", "not"):
        leaf["properties"][key] = False
    leaf["properties"]["count"]["properties"]["where"] = False
    return schema


SCHEMA = flat_schema()
FIELDS = st.sampled_from(known_paths())


def _known_field(condition: dict[str, Any], field: str, use: bool) -> dict[str, Any]:
    """Half the time a documented field, so drawn policies also get past the field check."""
    return {**condition, "field": field} if use and "field" in condition else condition


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12))
OPERANDS = {"equals": SCALARS, "notEquals": SCALARS, "in": st.lists(SCALARS, max_size=3), "exists": st.booleans(),
            "like": st.text(max_size=12), "match": st.text(max_size=12), "greater": st.integers(),
            "lessOrEquals": st.floats(allow_nan=False, allow_infinity=False), "contains": SCALARS,
            "versionGreaterOrEquals": st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,3}\Z")}
#: Plausible leaves (a documented field, an operator, an operand of roughly its type) and leaves drawn
#: from the schema, so the fuzz reaches evaluation-ready policies as well as every kind of load error.
LEAVES = st.one_of(
    st.builds(lambda field, op_operand: {"field": field, op_operand[0]: op_operand[1]}, FIELDS,
              st.sampled_from(sorted(OPERANDS)).flatmap(lambda op: st.tuples(st.just(op), OPERANDS[op]))),
    st.builds(_known_field, from_schema({"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["condition"]}),
              FIELDS, st.booleans()))
CONDITIONS = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda items: {"allOf": items}),
    st.lists(inner, min_size=1, max_size=3).map(lambda items: {"anyOf": items}),
    inner.map(lambda c: {"not": c}),
    st.tuples(FIELDS, inner).map(lambda fw: {"count": {"field": fw[0], "where": fw[1]}, "greater": 0})),
    max_leaves=8)
POLICIES = st.builds(lambda doc, cond: {**doc, "assert": cond}, st.one_of(st.just(GOOD), from_schema(SCHEMA)),
                     CONDITIONS)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@cache
def demo_vms() -> list[Any]:
    return build_estate(scan.demo_source().snapshot).vms


def _validate(doc: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of `validate` on the policy; a policy that loads is evaluated on the demo estate."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        path.write_text(json.dumps(doc))
        code = cli.main(["validate", str(path)])
        if code == 0:
            for finding in evaluate(load_policies([path]), demo_vms()):
                assert finding.status in STATUSES
    return code, capsys.readouterr().err


@FUZZ
@given(POLICIES)
def test_random_schema_valid_policies_load_or_exit_2(capsys: pytest.CaptureFixture[str], doc: Any) -> None:
    code, err = _validate(doc, capsys)
    assert code in (0, 2), err
    if code == 2:
        lines = err.splitlines()
        assert lines and all(line.startswith("backup-preflight: error: ") for line in lines), err


@FUZZ
@given(st.text(max_size=40))
def test_any_match_pattern_loads_or_exits_2(capsys: pytest.CaptureFixture[str], pattern: str) -> None:
    code, err = _validate({**GOOD, "assert": {"field": "name", "match": pattern}}, capsys)
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert "/assert/match" in err or "/assert" in err, err


def test_a_catastrophic_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    from backup_preflight.policy.operators import OPERATORS

    op = OPERATORS["match"]
    pattern = op.prepare("(a+)+$")
    started = time.monotonic()
    assert op.test("a" * 40 + "!", pattern) is False  # backtracking `re` takes hours here
    assert op.test("a" * 100_000, pattern) is True
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("pattern", "why"), [(r"(\w)\1", "invalid escape sequence"),
                                              ("(?=vm)", "invalid perl operator"),
                                              ("vm-[0-9", "missing ]")])
def test_patterns_re2_cannot_run_are_refused_at_load(tmp_path: Path, pattern: str, why: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**GOOD, "assert": {"field": "name", "notMatch": pattern}}))
    with pytest.raises(InputError) as raised:
        load_policies([path])
    (problem,) = raised.value.problems
    assert (problem.file, problem.place) == (str(path), "/assert/notMatch")
    assert "RE2" in problem.reason and why in problem.reason
