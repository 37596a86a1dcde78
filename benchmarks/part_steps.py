"""Time each step of judging in parts, part after part, as a scan's child process takes them.

    python benchmarks/part_steps.py --snapshot /tmp/bp-bench-100000.json --part-vms 12500
    python benchmarks/part_steps.py --snapshot /tmp/bp-bench-1000000.json --part-vms 12500 --keep nothing --parts 30

The snapshot must be saved one row per line (`big_estate.py`, `demo-estate`). The parts are judged as
`judging.judge_in_parts` judges them (the bundled policies, the collector paused), one after another in this
process, and each part's steps are printed: reading its rows back, building its estate, evaluating, packing
its findings as a child sends them (`packed.pack`). `--keep findings` keeps every part's findings (as held,
plain passes as numbers) as the scan's process does; `nothing` keeps none. Each part's line also gives the
process's user and system seconds and its page faults, to tell the interpreter's work from the kernel's.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.estate.parts import Lookups, Split
from backup_preflight.judging import _pack, judge
from backup_preflight.packed import pack
from backup_preflight.policy.loader import bundled_policy_dir, load_policies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--part-vms", type=int, default=12500)
    parser.add_argument("--keep", choices=("findings", "nothing"), default="findings")
    parser.add_argument("--parts", type=int, default=None, help="stop after this many parts")
    args = parser.parse_args()
    gc.disable()  # as during a scan (gcpause.py)
    policies = load_policies([bundled_policy_dir()])
    split = Split(snapshot.RowReader(args.snapshot))
    clock = datetime(2026, 11, 24, 6, tzinfo=UTC)
    kept: list[Any] = []
    started = time.perf_counter()
    for i, units in enumerate(_pack(split.classes(), split.vms, args.part_vms)[:args.parts]):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        snap = split.snapshot(units)
        t1 = time.perf_counter()
        estate = build_estate(snap, clock, None, Lookups(units))
        t2 = time.perf_counter()
        judged = judge(estate, policies, {}, groups=True)
        t3 = time.perf_counter()
        packed = pack(judged.findings)
        t4 = time.perf_counter()
        if args.keep == "findings":
            kept.append(judged.findings)
        del estate, snap, judged, packed
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        vms = sum(split.vms.get(u, 0) for u in units)
        print(f"part {i:3d}: {vms:,} VMs, read {t1 - t0:.2f} s, build {t2 - t1:.2f} s, "
              f"evaluate {t3 - t2:.2f} s, pack {t4 - t3:.2f} s; user {r1.ru_utime - r0.ru_utime:.2f} s, system "
              f"{r1.ru_stime - r0.ru_stime:.2f} s, {r1.ru_minflt - r0.ru_minflt:,} page faults", flush=True)
    print(f"all parts: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
