"""Tests read results.json through the reader the tool itself uses, so they hold for schema versions 1 and 2."""

from __future__ import annotations

from typing import Any

from backup_preflight.results_reader import iter_finding_documents


def findings_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (policy, VM) finding of a parsed results.json, expanded to full documents."""
    return list(iter_finding_documents(doc))


def as_version_1(doc: dict[str, Any]) -> dict[str, Any]:
    """The same results in schema version 1 (every finding in full), as scans wrote them until 2026-11-29."""
    v1 = {k: v for k, v in doc.items() if k not in ("vms", "verdicts")}
    v1["schemaVersion"], v1["findings"] = 1, findings_of(doc)
    return v1
