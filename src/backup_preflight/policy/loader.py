"""Loading policies: validate every file against policy.schema.json, then compile it.

All problems in all files are collected and reported together, each with the file, the JSON
pointer and the reason, so one run of `validate` shows everything to fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from jsonschema import Draft202012Validator

from backup_preflight.errors import InputError, Problem, schema_problems
from backup_preflight.policy.conditions import ConditionError, Node, compile_condition
from backup_preflight.policy.parameters import Override, coerce
from backup_preflight.policy.paths import MISSING, FieldPath, PathChecker, PathError, check_path, check_row_path
from backup_preflight.snapshot import read_written_json

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: Files a policy folder may hold for editors (the catalog's own policy.schema.json): not policies.
SCHEMA_SUFFIX = ".schema.json"


@cache
def policy_schema() -> dict[str, Any]:
    """The policy file schema; it ships beside the catalog so that each file's `$schema` resolves,
    in a checkout and in an installed package alike."""
    text = resources.files("backup_preflight.policies").joinpath("policy.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(policy_schema())


def bundled_policy_dir() -> Path:
    """The catalog that ships inside the package."""
    return Path(str(resources.files("backup_preflight.policies")))


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A message with {fact.path} placeholders, checked at load time and filled per finding."""

    text: str
    fields: tuple[tuple[str, FieldPath], ...]

    def render(self, facts: dict[str, Any]) -> str:
        """Fill every placeholder in one pass: a value that itself reads `{name}` stays literal."""
        values = {placeholder: _shown(path.get(facts)) for placeholder, path in self.fields}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.text)


#: A message names at most this many items of a list (a group of 500 VMs, say); evidence has the count.
LIST_SHOWN = 20


def _shown(value: Any) -> str:
    """A fact as an operator reads it in a message: JSON words for booleans, lists comma-separated."""
    if value is MISSING:
        return "(not collected)"
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        shown = ", ".join(_shown(v) for v in value[:LIST_SHOWN])
        return shown + (f" and {len(value) - LIST_SHOWN} more" if len(value) > LIST_SHOWN else "")
    return str(value)


@dataclass(slots=True)
class Policy:
    """A validated, compiled policy with its effective parameter values."""

    id: str
    title: str
    cause: str
    severity: str
    assertion: Node
    message: MessageTemplate
    remediation: str
    file: str
    document: dict[str, Any]
    applies: Node | None = None
    description: str = ""
    group_by: tuple[FieldPath, ...] = ()
    #: KQL of a resourceGraphQuery policy (its targets are the query's rows), else None.
    query: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    references: list[dict[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "cause": self.cause, "severity": self.severity}


@dataclass(slots=True)
class PolicySet:
    policies: list[Policy]

    @property
    def sha256(self) -> str:
        """Hash of the exact policy documents and effective parameters: audit evidence."""
        canon = [{"policy": p.document, "parameters": p.parameters} for p in self.policies]
        return hashlib.sha256(msgspec.json.encode(canon, order="sorted")).hexdigest()

    def parameters(self) -> dict[str, dict[str, Any]]:
        return {p.id: p.parameters for p in self.policies if p.parameters}


def policy_files(sources: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Every *.json file under the given folders (or the files themselves), in a stable order; a
    folder's `*.schema.json` files are the editor's schema, not policies."""
    files: list[Path] = []
    problems: list[Problem] = []
    for src in sources:
        if src.is_dir():
            found = sorted(p for p in src.rglob("*.json") if p.is_file() and not p.name.endswith(SCHEMA_SUFFIX))
            if not found:
                problems.append(Problem(str(src), "", "folder holds no *.json policy files"))
            files.extend(found)
        elif src.is_file():
            files.append(src)
        else:
            problems.append(Problem(str(src), "", "no such file or folder"))
    return files, problems


def load_policies(sources: list[Path], overrides: dict[str, Override] | None = None) -> PolicySet:
    """Load, validate and compile policies; raise InputError listing every problem found."""
    overrides = overrides or {}
    files, problems = policy_files(sources)
    raw: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        doc = _read_policy(path, problems)
        if doc is not None:
            raw.append((path, doc))
    seen: dict[str, str] = {}
    for path, doc in raw:
        pid = doc["id"]
        if pid in seen:
            problems.append(Problem(str(path), "/id", f"duplicate policy id {pid!r}, also in {seen[pid]}"))
        else:
            seen[pid] = str(path)
    problems.extend(_unused_overrides(overrides, [d for _, d in raw]))
    policies = []
    for path, doc in raw:
        policy = _compile(path, doc, overrides, problems)
        if policy is not None:
            policies.append(policy)
    if problems:
        raise InputError(problems)
    policies.sort(key=lambda p: p.id)
    return PolicySet(policies)


def _read_policy(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    label = str(path)
    try:
        doc, _ = read_written_json(path)
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    found = schema_problems(_validator(), doc, label)  # read_written_json already refused NaN and infinities
    problems.extend(found)
    return None if found else doc


def _unused_overrides(overrides: dict[str, Override], docs: list[dict[str, Any]]) -> list[Problem]:
    declared = {name for d in docs for name in d.get("parameters", {})}
    qualified = {f"{d['id']}.{name}" for d in docs for name in d.get("parameters", {})}
    problems = []
    for name, ov in overrides.items():
        if name not in declared and name not in qualified:
            problems.append(Problem(ov.origin, ov.place, f"no policy declares a parameter {name!r}"))
    return problems


def _compile(path: Path, doc: dict[str, Any], overrides: dict[str, Override],
             problems: list[Problem]) -> Policy | None:
    label = str(path)
    before = len(problems)
    values = _parameter_values(label, doc, overrides, problems)
    if len(problems) > before:
        return None  # conditions would only repeat the parameter's problem as "unknown parameter"

    def lookup(name: str, pointer: str) -> Any:
        if name not in values:
            raise ConditionError(pointer, f"unknown parameter {name!r}; declared: "
                                          f"{', '.join(sorted(values)) or 'none'}")
        return values[name]

    query = doc.get("query")
    paths = check_row_path if query else check_path
    group_by = _group_by(label, doc, lookup, problems, paths)
    grouped = bool(doc.get("groupBy"))
    nodes: dict[str, Node] = {}
    for key in ("applies", "assert"):  # the schema requires "assert"
        if key in doc:
            try:
                nodes[key] = compile_condition(doc[key], f"/{key}", lookup, allow_group=grouped, paths=paths)
            except ConditionError as exc:
                problems.append(Problem(label, exc.pointer, exc.reason))
    message = _message(label, doc["message"], grouped, problems, paths)
    if len(problems) > before:
        return None
    return Policy(
        id=doc["id"], title=doc["title"], cause=doc["cause"], severity=doc["severity"],
        assertion=nodes["assert"], applies=nodes.get("applies"), message=message,
        remediation=doc["remediation"], file=label, document=doc,
        description=doc.get("description", ""), group_by=group_by, query=query, parameters=values,
        references=doc.get("references", []), tags=doc.get("tags", []),
    )


def _parameter_values(label: str, doc: dict[str, Any], overrides: dict[str, Override],
                      problems: list[Problem]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in doc.get("parameters", {}).items():
        ptype = spec["type"]
        override = overrides.get(f"{doc['id']}.{name}") or overrides.get(name)
        if override is not None:
            origin, place, raw, text = override.origin, override.place, override.value, override.from_text
        elif "default" in spec:
            origin, place, raw, text = label, f"/parameters/{name}/default", spec["default"], False
        else:
            problems.append(Problem(label, f"/parameters/{name}", "parameter has no default and no value "
                                                                  "was given with --param"))
            continue
        try:
            value = coerce(ptype, raw, from_text=text)
        except ValueError as exc:
            problems.append(Problem(origin, place, f"parameter {name!r} ({ptype}): {exc}"))
            continue
        allowed = spec.get("allowedValues")
        if allowed is not None and value not in allowed:
            problems.append(Problem(origin, place, f"parameter {name!r}: {json.dumps(value)} is not one of "
                                                   f"{json.dumps(allowed)}"))
            continue
        values[name] = value
    return values


def _group_by(label: str, doc: dict[str, Any], lookup: Any, problems: list[Problem],
              check: PathChecker) -> tuple[FieldPath, ...]:
    paths = []
    for i, item in enumerate(doc.get("groupBy", [])):
        pointer = f"/groupBy/{i}"
        try:
            text = lookup(item["parameter"], pointer) if isinstance(item, dict) else item
            paths.append(check(text))
        except ConditionError as exc:
            problems.append(Problem(label, exc.pointer, exc.reason))
        except PathError as exc:
            problems.append(Problem(label, pointer, str(exc)))
    return tuple(paths)


def _message(label: str, text: str, grouped: bool, problems: list[Problem],
             paths: PathChecker) -> MessageTemplate:
    fields = []
    for placeholder in dict.fromkeys(_PLACEHOLDER.findall(text)):
        if placeholder.startswith("group.") and not grouped:
            problems.append(Problem(label, "/message", f"{{{placeholder}}} needs 'groupBy'"))
            continue
        try:
            name = placeholder.strip()
            fields.append((placeholder, check_path(name) if name in ("id", "name") else paths(name)))
        except PathError as exc:
            problems.append(Problem(label, "/message", f"placeholder {{{placeholder}}}: {exc}"))
    return MessageTemplate(text, tuple(fields))
