"""Deterministic synthetic Azure estate, in the row shapes Resource Graph and the Compute API return.

Why: the scanner needs a demo that exercises every cause without an Azure account, and benchmarks
need a 100,000-VM estate that looks like a real one: NSGs, VNets, route tables and backup policies
shared by many VMs, mixed-case ids that differ between sources, side tables that cover only some VMs.

Every VM follows one named `Scenario` from `SCENARIOS`; the scenario's `changes` are the only place a
failure mode is created, so a finding in a report traces back to one line of `scenarios.py`. The first
estate positions (spread evenly) carry every scenario once (`SHOWCASE`), the rest are drawn by weight.
Schedule spread is structural rather than per VM: see `LAYOUTS` (crowded, one instant under several
zones, one local time in several zones, hourly meeting daily, stopped items that must not count, weekly
policies on different days).

Layout: `scenarios` (what can happen) -> `plan` (what does happen, per VM) -> `tables` renders the plan
through `shared_rows`, `vm_rows` and `side_rows`, all on the row conventions of `arm`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.demo.arm import iso
from backup_preflight.demo.plan import plan_estate
from backup_preflight.demo.scenarios import LAYOUTS, SCENARIOS, SHOWCASE
from backup_preflight.demo.tables import render
from backup_preflight.gcpause import gc_paused

__all__ = ["LAYOUTS", "SCENARIOS", "SHOWCASE", "demo_document", "generate", "plan_estate", "write"]


def generate(vms: int, seed: int = 7, subscriptions: int | None = None,
             collected_at: datetime | None = None) -> dict[str, Any]:
    """Return a snapshot document for a synthetic estate; same arguments, same bytes.

    `collected_at` moves the collection (and so daylight saving) off the seed's November default.
    """
    with gc_paused():
        estate = plan_estate(vms, seed, subscriptions, collected_at)
        tables = render(estate)
    return {
        "schemaVersion": snapshot.SCHEMA_VERSION,
        "collectedAt": iso(estate.collected_at),
        "scope": {"subscriptions": estate.subscriptions},
        "tables": tables,
        "errors": [],
    }


def demo_document() -> dict[str, Any]:
    """The built-in demo: 60 VMs in 3 subscriptions, every scenario at least once and several healthy VMs."""
    return generate(60, seed=7, subscriptions=3)


def write(vms: int, seed: int, path: Path, collected_at: datetime | None = None) -> None:
    """Write a synthetic estate as a snapshot file (`.json` or `.json.gz`), validated on the way."""
    snapshot.save(snapshot.from_document(generate(vms, seed, collected_at=collected_at), str(path)), path)
