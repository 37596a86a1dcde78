"""Costs that must grow with the input, not with its square: exemptions, snapshot merge, what-if deletes.

    python benchmarks/linear_bench.py
    PYTHONPATH=/tmp/old/src python benchmarks/linear_bench.py    # the same against another checkout

Exemptions: 1,000 entries (mostly exact VM ids, some globs and scopes, by policy id and by cause)
applied to ~20,000 failing findings. Merge: 200 snapshot files of 1,000 rows each. Overlay: 1,000
VM deletions on 100,000 VM and extension rows. Best of three, in one interpreter.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from backup_preflight import snapshot
from backup_preflight.findings import FAIL, Finding
from backup_preflight.review import exemptions
from backup_preflight.whatif import overlay
from backup_preflight.whatif.parse import from_document

SUB = "00000000-0000-0000-0000-0000000000{:02d}"
POLICIES = [("VMBK-AGENT-001", "vm-agent"), ("VMBK-NET-001", "outbound-connectivity"),
            ("VMBK-PROT-001", "backup-protection"), ("VMBK-EXT-001", "backup-extension")]


def vm_id(n: int) -> str:
    return (f"/subscriptions/{SUB.format(n % 40)}/resourceGroups/RG-{n % 500:03d}"
            f"/providers/Microsoft.Compute/virtualMachines/vm-{n:06d}")


def best(work: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def exemptions_case(folder: Path) -> float:
    entries = []
    for i in range(1000):
        policy, cause = POLICIES[i % 4]
        selector = {"causes": [cause]} if i % 5 == 0 else {"policies": [policy.lower() if i % 2 else policy]}
        if i % 20 == 0:
            where = {"resources": [f"*/virtualmachines/vm-{i:04d}*"]}
        elif i % 50 == 1:
            where = {"scopes": [f"/subscriptions/{SUB.format(i % 40)}/resourceGroups/RG-{i % 500:03d}"]}
        else:
            where = {"resources": [vm_id(i * 17).upper()]}
        entries.append({"id": f"EX-{i}", "category": "waiver", "justification": "benchmark entry",
                        "owner": "team@contoso.example", "expiresOn": "2099-12-31", **selector, **where})
    path = folder / "exemptions.json"
    path.write_text(json.dumps({"schemaVersion": 1, "exemptions": entries}))
    loaded = exemptions.load(path)

    def findings() -> list[Finding]:
        return [Finding(policy_id=policy, resource_id=vm_id(n), resource_name=f"vm-{n:06d}", status=FAIL,
                        severity="high", cause=cause) for n in range(5000) for policy, cause in POLICIES]

    batches = [findings() for _ in range(3)]
    return best(lambda: exemptions.apply(batches.pop(), loaded, datetime.now(UTC)))


def merge_case(folder: Path) -> float:
    paths = []
    for f in range(200):
        rows = [{"id": vm_id(f * 1000 + n), "name": f"vm-{n}", "type": "microsoft.compute/virtualmachines",
                 "properties": {}} for n in range(1000)]
        path = folder / f"part-{f:03d}.json"
        path.write_text(json.dumps({"schemaVersion": 1, "collectedAt": "2026-11-29T06:00:00Z", "scope": {},
                                    "tables": {"resources": rows}, "errors": []}))
        paths.append(path)
    return best(lambda: snapshot.load_many(paths))


def overlay_case() -> float:
    rows = []
    for n in range(50_000):
        rows.append({"id": vm_id(n), "type": "microsoft.compute/virtualmachines", "properties": {}})
        rows.append({"id": f"{vm_id(n)}/extensions/VMSnapshot", "type": "microsoft.compute/virtualmachines/extensions",
                     "properties": {}})
    snap = snapshot.Snapshot(tables={"resources": rows})
    changes = [{"changeType": "Delete", "resourceId": vm_id(n * 37), "before": None, "after": None, "delta": None}
               for n in range(1000)]
    plan = from_document({"changes": changes, "status": "Succeeded"}, "whatif.json")
    return best(lambda: overlay(snap, plan))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        print(f"exemptions: 1,000 on 20,000 findings  {exemptions_case(Path(folder)):6.2f} s", flush=True)
        print(f"merge: 200 files x 1,000 rows         {merge_case(Path(folder)):6.2f} s", flush=True)
    print(f"overlay: 1,000 deletes, 100,000 rows  {overlay_case():6.2f} s", flush=True)


if __name__ == "__main__":
    main()
