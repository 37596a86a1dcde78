"""Field paths: parsed and checked against facts.schema.json once, at load time.

A path such as `agent.version`, `tags.env` or `extensions[*].type` becomes a small getter.
A typo is a load error that names the nearest valid field, never a policy that silently
never fires.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import repeat
from typing import Any


class _Missing:
    """The value of a fact that was not collected (distinct from a collected null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

_SEGMENT = re.compile(r"""([A-Za-z_][A-Za-z0-9_\-]*)|\['([^']+)'\]|\[\*\]|\.""")


class PathError(ValueError):
    """A field path that is malformed or names no documented fact."""


@cache
def facts_schema() -> dict[str, Any]:
    text = resources.files("backup_preflight.estate").joinpath("facts.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def known_paths() -> tuple[str, ...]:
    """Every documented field path, for suggestions and the catalog documentation."""
    out: list[str] = []

    def walk(schema: dict[str, Any], prefix: str) -> None:
        for name, sub in schema.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            out.append(path)
            if sub.get("type") == "array" and "items" in sub:
                out.append(f"{path}[*]")
                walk(sub["items"], f"{path}[*]")
            else:
                walk(sub, path)

    walk(facts_schema(), "")
    return tuple(out)


def split_path(path: str) -> list[str]:
    """Split `a.b[*].c` or `tags['cost center']` into segments; `[*]` is its own segment."""
    segments: list[str] = []
    pos = 0
    expect_name = True
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if not match:
            raise PathError(f"cannot parse field path {path!r} at character {pos + 1}")
        token = match.group(0)
        if token == ".":
            if expect_name:
                raise PathError(f"empty segment in field path {path!r}")
            expect_name = True
        elif token == "[*]":
            if expect_name:
                raise PathError(f"field path {path!r} cannot start with [*]" if not segments
                                else f"empty segment in field path {path!r}")
            segments.append("[*]")
            expect_name = False
        else:
            if not expect_name and not token.startswith("["):
                raise PathError(f"missing '.' in field path {path!r} at character {pos + 1}")
            segments.append(match.group(1) or match.group(2))
            expect_name = False
        pos = match.end()
    if expect_name:
        raise PathError(f"field path {path!r} is empty or ends with '.'")
    return segments


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A checked path: its text, segments, and whether its last step is a key of a map (tags)."""

    text: str
    segments: tuple[str, ...]
    map_leaf: bool
    opaque: bool
    get: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # get(root) is the hot path of every scan: one closure per path, no per-call loops over flags.
        object.__setattr__(self, "get", _getter(self.segments, self.map_leaf))

    def column(self, roots: list[Any]) -> list[Any] | None:
        """`get` of every root, read a step at a time in C but for one comprehension (a part's engine reads each
        path over 12,000 VMs: half the time of `get` on each); None where that would not give what `get` gives:
        a map key read ignoring case, or a value on the way of a type other than JSON's (a dict subclass reads
        by its own rules)."""
        if self.map_leaf:
            return None
        values = roots
        for segment in self.segments:
            kinds = set(map(type, values))
            if not kinds <= _JSON_KINDS:
                return None
            if kinds != _DICT:  # anything but a dict, indexed by a name, is a step that is missing
                values = [v if v.__class__ is dict else _NO_MAP for v in values]
            values = list(map(dict.get, values, repeat(segment), repeat(MISSING)))
        return values


#: The types of parsed JSON (and MISSING): `get` indexes a dict by its keys, and any other of these by a name
#: raises TypeError, which makes the step missing.
_JSON_KINDS = frozenset({dict, list, str, int, float, bool, type(None), _Missing})
_DICT = {dict}
_NO_MAP: dict[str, Any] = {}


def _getter(segments: tuple[str, ...], map_leaf: bool) -> Callable[[Any], Any]:
    """The value at `segments`, or MISSING when a step is absent (a map key: None)."""
    *init, last = segments

    def get(root: Any) -> Any:
        value = root
        try:
            for seg in init:
                value = value[seg]
        except (KeyError, TypeError, IndexError):
            return MISSING
        try:
            return value[last]
        except KeyError:
            return _casefold_lookup(value, last) if map_leaf else MISSING
        except (TypeError, IndexError):
            return MISSING

    return get


def _casefold_lookup(mapping: dict[str, Any], key: str) -> Any:
    lowered = key.lower()
    for k, v in mapping.items():
        if k.lower() == lowered:
            return v
    return None


def check_path(text: str, *, allow_star: bool = False) -> FieldPath:
    """Parse `text` and check it against the facts schema; raise PathError with a suggestion."""
    segments = split_path(text)
    if "[*]" in segments and not allow_star:
        raise PathError(f"field {text!r} has [*]: iterate arrays with a `count` condition")
    schema: dict[str, Any] = facts_schema()
    for i, seg in enumerate(segments):
        map_leaf = False
        if schema.get("x-opaque"):
            raise PathError(f"field {'.'.join(segments[:i])!r} is evaluated only through its operator")
        if seg == "[*]":
            if schema.get("type") != "array":
                raise PathError(f"field {text!r}: {_join(segments[:i])!r} is not an array")
            schema = schema.get("items", {})
            continue
        props = schema.get("properties", {})
        if seg in props:
            schema = props[seg]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
            map_leaf = True
        else:
            raise PathError(_unknown_field_message(text))
    opaque = bool(schema.get("x-opaque"))
    return FieldPath(text, tuple(segments), map_leaf, opaque)


def check_row_path(text: str, *, allow_star: bool = False) -> FieldPath:
    """A path into a custom query's row, `row.<column>[.key…]`: the columns are the query's own,
    so only the shape is checked; a column a row lacks is unknown, like any fact not collected."""
    segments = split_path(text)
    if segments[0] != "row" or len(segments) < 2:
        raise PathError(f"field {text!r}: a resourceGraphQuery policy names its query's columns as row.<column>")
    if "[*]" in segments and not allow_star:
        raise PathError(f"field {text!r} has [*]: iterate arrays with a `count` condition")
    return FieldPath(text, tuple(segments), False, False)


PathChecker = Callable[..., FieldPath]


def _join(segments: list[str]) -> str:
    return ".".join(segments).replace(".[*]", "[*]")


def _unknown_field_message(text: str) -> str:
    close = difflib.get_close_matches(text, known_paths(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown field {text!r}{hint}"
