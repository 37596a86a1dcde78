"""Random policies drawn from policy.schema.json either load or fail with exit 2 and one line per
problem, never a traceback; match patterns run in linear time (RE2) or are refused at load."""

from __future__ import annotations

import copy
import json
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from backup_preflight import cli
from backup_preflight.errors import InputError
from backup_preflight.policy.loader import load_policies

DEPTH = 3
GOOD: dict[str, Any] = {
    "id": "FUZZ-001", "title": "Name pattern", "cause": "vm-agent", "severity": "high",
    "assert": {"field": "name", "match": "^vm-"}, "message": "{name} is named oddly", "remediation": "Rename it.",
}


def unrolled_schema() -> dict[str, Any]:
    """policy.schema.json with its recursive `condition` unrolled DEPTH levels (hypothesis-jsonschema
    cannot draw from recursive references); the innermost level has no nested conditions."""
    schema = json.loads(resources.files("backup_preflight.policy").joinpath("policy.schema.json").read_text())
    condition = schema["$defs"].pop("condition")
    for level in range(DEPTH):
        c = copy.deepcopy(condition)
        inner = f"#/$defs/condition{level - 1}"
        for key in ("allOf", "anyOf"):
            c["properties"][key]["items"] = {"$ref": inner} if level else False
        c["properties"]["not"] = {"$ref": inner} if level else False
        c["properties"]["count"]["properties"]["where"] = {"$ref": inner} if level else False
        schema["$defs"][f"condition{level}"] = c
    text = json.dumps(schema).replace('"#/$defs/condition"', f'"#/$defs/condition{DEPTH - 1}"')
    return json.loads(text)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _validate(doc: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        path.write_text(json.dumps(doc))
        code = cli.main(["validate", str(path)])
    return code, capsys.readouterr().err


@FUZZ
@given(from_schema(unrolled_schema()))
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
