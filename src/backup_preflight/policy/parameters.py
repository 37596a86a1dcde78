"""Typed policy parameters: defaults in the policy, overrides from --param and a parameters file.

An override named `name` sets that parameter in every policy that declares it; `POLICY-ID.name`
sets it in one policy. An override that no policy declares is an error, so a typo on the
command line cannot silently leave a default in force.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup_preflight.errors import InputError, Problem
from backup_preflight.policy.paths import PathError, check_path
from backup_preflight.policy.versions import parse_version
from backup_preflight.snapshot import parse_json, read_written_json


@dataclass(frozen=True, slots=True)
class Override:
    """A parameter value given by the user, and where it came from (for error messages)."""

    value: Any
    origin: str
    place: str
    from_text: bool


#: Type name → (check of a parsed JSON value, what the error says was expected).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "field": (lambda v: isinstance(v, str), "a string"),
    "version": (lambda v: parse_version(v) is not None, "a dotted-integer version like 2.2.53.1"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "array": (lambda v: isinstance(v, list), "an array"),
}


NON_FINITE = "NaN and infinities cannot be compared; give a finite number"


def non_finite(value: Any, pointer: str = "") -> str | None:
    """JSON pointer of the first NaN or infinity in `value` (Python's JSON reader accepts them), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return pointer or "/"
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        found = non_finite(item, f"{pointer}/{key}")
        if found is not None:
            return found
    return None


def coerce(ptype: str, value: Any, *, from_text: bool) -> Any:
    """Check `value` against a parameter type, converting command-line text where needed."""
    if from_text and isinstance(value, str):
        value = _from_text(ptype, value)
    check, expected = _CHECKS[ptype]
    if not check(value):
        raise ValueError(f"expected {expected}, found {json.dumps(value)}")
    if non_finite(value) is not None:
        raise ValueError(f"found {json.dumps(value)}: {NON_FINITE}")
    if ptype == "field":
        try:
            check_path(value)
        except PathError as exc:
            raise ValueError(str(exc)) from None
    return value


def _from_text(ptype: str, text: str) -> Any:
    if ptype == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        return text
    if ptype in ("integer", "number"):
        try:
            number = int(text) if ptype == "integer" else float(text)
        except ValueError:
            return text
        return number  # nan and inf parse, and coerce refuses them by name
    if ptype == "array":
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return parse_json(stripped.encode(), "--param")  # strict, as every JSON input: no NaN
            except InputError:
                return text
        return [_scalar(p.strip()) for p in stripped.split(",") if p.strip()]
    return text


def _scalar(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def parse_cli_params(items: list[str]) -> dict[str, Override]:
    """`--param NAME=VALUE` items; a malformed one is an input error."""
    out: dict[str, Override] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            problems.append(Problem("--param", item, "expected NAME=VALUE"))
            continue
        out[name.strip()] = Override(value, "--param", name.strip(), from_text=True)
    if problems:
        raise InputError(problems)
    return out


def load_params_file(path: Path) -> dict[str, Override]:
    """A JSON object of parameter values, e.g. {"minimumLinuxAgent": "2.2.60"}, or per policy in the
    shape results.json records them ({"VMBK-AGENT-003": {"minimumLinuxAgent": …}}), or a results.json."""
    label = str(path)
    doc, _ = read_written_json(path)
    prefix = ""
    if isinstance(doc, dict) and isinstance(doc.get("scan"), dict) and "schemaVersion" in doc:
        doc, prefix = doc["scan"].get("parameters", {}), "/scan/parameters"
    elif isinstance(doc, dict) and isinstance(doc.get("parameters"), dict):
        doc, prefix = doc["parameters"], "/parameters"
    if not isinstance(doc, dict):
        raise InputError.one(label, "/", "expected a JSON object of parameter names to values")
    if doc and all(isinstance(v, dict) for v in doc.values()):  # per policy, as results.json records them
        return {f"{pid}.{name}": Override(value, label, f"{prefix}/{pid}/{name}", from_text=False)
                for pid, values in doc.items() for name, value in values.items()}
    return {name: Override(value, label, f"{prefix}/{name}", from_text=False) for name, value in doc.items()}
