"""Read the JSON of an ARM/Bicep what-if, as the CLI prints it or as the REST API returns it.

Two shapes are accepted, at resource group, subscription, management group and tenant scope alike:

* `az deployment {group,sub,mg,tenant} what-if --no-pretty-print` (and PowerShell's
  `-WhatIfResultFormat FullResourcePayloads` JSON): `{"status", "changes": [...], "error"}`, the SDK's
  flattened `WhatIfOperationResult`;
* the REST response body: `{"status", "properties": {"changes": [...]}, "error"}`.

A what-if that failed is an input error, never an empty plan: a gate that read "no changes" from a
failed what-if would be green for the wrong reason. What Azure said is quoted in the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup_preflight.errors import InputError, Problem, gather
from backup_preflight.snapshot import SourceFile, json_kind, read_json

#: ChangeType values of the Resources API (2024-03-01), in their canonical spelling.
CHANGE_TYPES = ("Create", "Delete", "Deploy", "Ignore", "Modify", "NoChange", "Unsupported")
_CANONICAL = {name.lower(): name for name in CHANGE_TYPES}


@dataclass(frozen=True, slots=True)
class Change:
    """One predicted resource change (a `WhatIfChange`), with where it sits in its file."""

    resource_id: str
    change_type: str  # one of CHANGE_TYPES
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    delta: tuple[dict[str, Any], ...]
    unsupported_reason: str
    source: str  # "file: /changes/3", for notes that must point back at the input


@dataclass(slots=True)
class WhatIf:
    """Every change of one or more what-if files, in file order, plus what they could not predict."""

    changes: list[Change] = field(default_factory=list)
    #: Coverage notes raised while reading ({"scope", "table": "what-if", "message"}).
    notes: list[dict[str, str]] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)

    def describe(self) -> list[dict[str, str]]:
        """The files read and their SHA-256, for results.json."""
        return [{"path": s.path, "sha256": s.sha256} for s in self.sources]


def load_what_if(path: Path) -> WhatIf:
    """Read one what-if file (`.json`, or gzipped); raise InputError naming file, place and reason."""
    label = str(path)
    doc, digest = read_json(path)
    what_if = from_document(doc, label)
    what_if.sources = [SourceFile(label, digest, "what-if")]
    return what_if


def load_what_ifs(paths: Sequence[Path]) -> WhatIf:
    """Read several what-if files into one plan, applied in order; all files' problems are raised together."""
    merged = WhatIf()
    for one in gather(paths, load_what_if):
        merged.changes.extend(one.changes)
        merged.notes.extend(one.notes)
        merged.sources.extend(one.sources)
    return merged


def from_document(doc: Any, label: str) -> WhatIf:
    """Validate a parsed what-if result and turn its changes into `Change` records."""
    if not isinstance(doc, dict):
        raise InputError.one(label, "/", f"expected a what-if result object, found {json_kind(doc)}")
    _check_outcome(doc, label)
    changes, pointer = _changes(doc, label)
    what_if = WhatIf()
    problems: list[Problem] = []
    for i, raw in enumerate(changes):
        change = _change(raw, label, f"{pointer}/{i}", problems, what_if.notes)
        if change is not None:
            what_if.changes.append(change)
    if problems:
        raise InputError(problems)
    holder, at = (doc["properties"], "/properties") if isinstance(doc.get("properties"), dict) else (doc, "")
    _side_notes(holder, label, at, what_if.notes)
    return what_if


def _check_outcome(doc: dict[str, Any], label: str) -> None:
    """A non-null `error` or a status other than Succeeded means Azure could not predict the deployment."""
    error, status = doc.get("error"), doc.get("status")
    said = f": {error_text(error)}" if error is not None else ""
    if status is not None and str(status).lower() != "succeeded":
        raise InputError.one(label, "/status", f"the what-if operation did not succeed (status {status!r}){said}")
    if error is not None:
        raise InputError.one(label, "/error", f"the what-if operation reported an error{said}")


def error_text(error: Any) -> str:
    """`code: message` of an ARM ErrorResponse (or its `{"error": {...}}` envelope), with its details."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if not isinstance(error, dict):
        return str(error)
    text = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k)) or "no code or message"
    details = [error_text(d) for d in error.get("details") or () if isinstance(d, dict)]
    return f"{text} ({'; '.join(details)})" if details else text


def _changes(doc: dict[str, Any], label: str) -> tuple[list[Any], str]:
    props = doc.get("properties")
    if "changes" in doc:
        changes, pointer = doc["changes"], "/changes"
    elif isinstance(props, dict) and "changes" in props:
        changes, pointer = props["changes"], "/properties/changes"
    else:
        raise InputError.one(label, "/", "no 'changes': not the output of `az deployment … what-if --no-pretty-print` "
                                         "nor a what-if REST response ({status, properties: {changes}})")
    if not isinstance(changes, list):
        raise InputError.one(label, pointer, f"expected an array of changes, found {json_kind(changes)}")
    return changes, pointer


def _change(raw: Any, label: str, where: str, problems: list[Problem],
            notes: list[dict[str, str]]) -> Change | None:
    if not isinstance(raw, dict):
        problems.append(Problem(label, where, f"expected a change object, found {json_kind(raw)}"))
        return None
    rid, kind = raw.get("resourceId"), raw.get("changeType")
    if not isinstance(kind, str) or not kind:
        problems.append(Problem(label, where, "change has no 'changeType' string"))
        return None
    if not isinstance(rid, str) or not rid:
        if raw.get("identifiers") or raw.get("extension"):  # extensible (non-ARM) resource, e.g. Microsoft Graph
            notes.append(note(f"{label}: {where}", f"{kind} of an extensible resource without an ARM id "
                                                     "is outside the ARM estate and not applied"))
        else:
            problems.append(Problem(label, where, "change has no 'resourceId' string"))
        return None
    canonical = _CANONICAL.get(kind.lower())
    if canonical is None:
        notes.append(note(rid, f"unknown what-if changeType {kind!r} ({label}: {where}); the current state is kept"))
        return None
    parts: dict[str, Any] = {}
    for key in ("before", "after"):
        value = raw.get(key)
        if value is not None and not isinstance(value, dict):
            problems.append(Problem(label, f"{where}/{key}",
                                    f"'{key}' must be an object or null, found {json_kind(value)}"))
            return None
        parts[key] = value
    delta = raw.get("delta") or []
    if not isinstance(delta, list):
        problems.append(Problem(label, f"{where}/delta", f"'delta' must be an array, found {json_kind(delta)}"))
        return None
    reason = raw.get("unsupportedReason")
    return Change(rid, canonical, parts["before"], parts["after"], tuple(d for d in delta if isinstance(d, dict)),
                  reason if isinstance(reason, str) else "", f"{label}: {where}")


def _side_notes(holder: dict[str, Any], label: str, at: str, notes: list[dict[str, str]]) -> None:
    """Diagnostics (e.g. nested deployments what-if could not evaluate) and potential changes make the plan
    incomplete; say so rather than pretend the plan is whole. Diagnostics that are no array are an input error:
    a warning in them may be the plan's only sign of what it left out."""
    diagnostics = holder.get("diagnostics") or []
    if not isinstance(diagnostics, list):
        raise InputError.one(label, f"{at}/diagnostics",
                             f"'diagnostics' must be an array, found {json_kind(diagnostics)}")
    for diag in diagnostics:
        if isinstance(diag, dict) and str(diag.get("level", "")).lower() in ("warning", "error"):
            target = diag.get("target") if isinstance(diag.get("target"), str) and diag.get("target") else label
            notes.append(note(target, f"what-if {str(diag['level']).lower()}: {error_text(diag)}"))
    potential = holder.get("potentialChanges")
    if isinstance(potential, list) and potential:
        notes.append(note(label, f"{len(potential)} potential change(s) what-if could not confirm are not applied"))


def note(scope: str, message: str) -> dict[str, str]:
    """A coverage note in the shape of the snapshot's collection errors, so reports can list both."""
    return {"scope": scope, "table": "what-if", "message": message}

