"""Small estates for report, review and gate tests: a snapshot file and a finished scan of it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from backup_preflight import row_lines, scan
from backup_preflight.policy.loader import PolicySet, bundled_policy_dir, load_policies
from backup_preflight.results import Gate, ScanResult
from backup_preflight.review import Review

from arg import instance_view, snapshot_doc, vm_row

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'


def estate(*, stopped: bool = True, no_agent: bool = True, extra: Sequence[str] = (),
           name_suffix: str = "") -> dict[str, Any]:
    """vm-ok (healthy agent), vm-stopped (shut down in the guest), vm-noagent (agent never provisioned)."""
    vms = [vm_row("vm-ok")]
    vms.append(vm_row("vm-stopped", power="PowerState/stopped" if stopped else "PowerState/running"))
    vms.append(vm_row("vm-noagent" + name_suffix, provision=not no_agent))
    vms += [vm_row(name, provision=False) for name in extra]
    views = [instance_view(vm["id"]) for vm in vms[:2]]
    return snapshot_doc(vms, instanceviews=views)


def write_snapshot(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def write_row_lines(doc: dict[str, Any], path: Path) -> Path:
    """The document one row per line, as written (types in the case given: `snapshot.save` would fold them)."""
    header = {k: v for k, v in doc.items() if k != "tables"}
    path.write_bytes(b"".join(row_lines.encode(header, doc["tables"])))
    return path


def policies() -> PolicySet:
    return load_policies([bundled_policy_dir()])


def run(path: Path, gate: Gate | None = None, review: Review | None = None) -> ScanResult:
    return scan.run_scan(scan.snapshot_source([path]), policies(), gate or Gate(), review)


def outcome(result: ScanResult) -> dict[str, Any]:
    """Everything a run gives but its own start and end times: what two ways of scanning one estate must agree on."""
    run = {k: v for k, v in result.run.items() if k not in ("startedAt", "finishedAt")}
    return msgspec.to_builtins({"run": run, "findings": list(result.findings), "coverage": result.coverage,
                                "summary": result.summary, "exit": result.exit_code, "diagnoses": result.diagnoses,
                                "tags": result.tags, "subscriptions": result.subscriptions})


def rehome(doc: dict[str, Any], resource_id: str, subscription: str) -> dict[str, Any]:
    """The estate with one resource (and everything under its id) moved to another subscription, and every
    reference to it following."""
    old = resource_id.split("/")[2]
    moved = resource_id.replace(f"/subscriptions/{old}/", f"/subscriptions/{subscription}/", 1)
    return json.loads(json.dumps(doc).replace(f'"{resource_id}', f'"{moved}'))
