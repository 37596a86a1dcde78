"""Scan speed and memory on a generated estate, phase by phase, against the JSON-parsing floor.

    python benchmarks/scan_bench.py --vms 100000            # generates /tmp/bp-bench-100000.json once
    python benchmarks/scan_bench.py --snapshot FILE             # uncompressed (the floor phases parse it)
    python benchmarks/scan_bench.py --snapshot FILE --full-only --part-size 0   # one whole scan, held whole

Each measurement runs in a fresh interpreter so that peak RSS belongs to that phase alone.
Figures go into docs/performance.md by hand, with the command and the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tree_memory import measure_both

PHASES = {
    "json.load, gc paused (floor)": """
import json; json.load(open(PATH, 'rb'))""",
    "msgspec decode, gc paused (floor)": """
import msgspec; msgspec.json.decode(open(PATH, 'rb').read())""",
    "load snapshot": """
from backup_preflight import snapshot; snapshot.load(Path(PATH))""",
    "load + estate": """
from backup_preflight import snapshot; from backup_preflight.estate import build_estate
build_estate(snapshot.load(Path(PATH)))""",
    "load + estate + evaluate": """
from backup_preflight import snapshot; from backup_preflight.estate import build_estate
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
evaluate(load_policies([bundled_policy_dir()]), build_estate(snapshot.load(Path(PATH))).vms)""",
    "read + judge in parts (the default)": """
from datetime import UTC, datetime; from backup_preflight import scan
from backup_preflight.estate.parts import part_vms
from backup_preflight.judging import judge_in_parts
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.workers import auto_jobs
jobs = auto_jobs()
source = scan.snapshot_source([Path(PATH)], part_vms(jobs), jobs)
if source.split is None:  # a file of no more VMs than a part, or not one row a line: judged whole
    print("whole"); raise SystemExit(0)
judge_in_parts(source.split, load_policies([bundled_policy_dir()]), datetime.now(UTC), None, source.part_vms, jobs)""",
}

# The collector is paused as in the pipeline (scan.run_scan, snapshot.parse_json, report writers).
RUNNER = """
import gc, sys, time
from pathlib import Path
gc.disable()
PATH = sys.argv[1]
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
"""


def measure(body: str, path: Path) -> tuple[float, float] | None:
    """Seconds from inside; memory, GB: the peak RSS from `/usr/bin/time` (a child's own getrusage can report
    the peak of the process that started it: Linux carries the parent's high-water mark over exec), or the
    peak summed PSS of the process and its children where that is more (parts judged in child processes).
    None when the phase does not apply to the file (judging in parts a file that the scan judges whole)."""
    got = measure_both([sys.executable, "-c", RUNNER.format(body=body.strip()), str(path)])
    if got["exit"]:
        raise SystemExit(f"the phase failed: {got['stderr']}")
    said = str(got["stdout"]).split()[0]
    return None if said == "whole" else (float(said), float(got["peak"]))


def full_scan(path: Path, *flags: str) -> tuple[float, float]:
    """The whole CLI run, reports included, timed from outside, memory as `measure` takes it."""
    script = Path(sys.executable).with_name("backup-preflight")
    got = measure_both([str(script), "scan", "--snapshot", str(path), "--output-dir", "/tmp/bp-bench-out",
                        "--fail-on", "never", "-q", *flags])
    if got["exit"]:
        raise SystemExit(f"the scan failed: {got['stderr']}")
    return float(got["seconds"]), float(got["peak"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--snapshot", type=Path)
    parser.add_argument("--full-only", action="store_true",
                        help="only the whole `scan`: for an estate too large for the phases to parse whole")
    parser.add_argument("--part-size", type=int, help="passed to the whole `scan` (default: the scan's own)")
    parser.add_argument("--jobs", help="passed to the whole `scan` (default: the scan's own, auto)")
    args = parser.parse_args()
    path = args.snapshot or Path(f"/tmp/bp-bench-{args.vms}.json")
    if not path.exists():
        script = Path(sys.executable).with_name("backup-preflight")
        subprocess.run([str(script), "demo-estate", "--vms", str(args.vms), "--output", str(path)], check=True)
    print(f"snapshot {path}: {path.stat().st_size / 1e6:.0f} MB")
    print(f"{'phase':34} {'seconds':>8} {'peak GB':>8}")
    for name, body in {} if args.full_only else PHASES.items():
        measured = measure(body, path)
        if measured is None:
            print(f"{name:34} skipped: the scan judges this file whole (no more VMs than a part)", flush=True)
            continue
        print(f"{name:34} {measured[0]:8.1f} {measured[1]:8.2f}", flush=True)
    flags = [*(["--part-size", str(args.part_size)] if args.part_size is not None else []),
             *(["--jobs", args.jobs] if args.jobs is not None else [])]
    seconds, peak = full_scan(path, *flags)
    print(f"{'full `scan` incl. all reports':34} {seconds:8.1f} {peak:8.2f}")
    for output in sorted(Path("/tmp/bp-bench-out").iterdir()):
        print(f"  {output.name:32} {output.stat().st_size / 1e6:8.1f} MB")


if __name__ == "__main__":
    main()
