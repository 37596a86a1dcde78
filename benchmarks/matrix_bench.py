"""An estate too big for one job, as a CI matrix runs it: one generated estate per shard, scanned, merged.

    python benchmarks/matrix_bench.py --shards 10 --vms 100000      # 1,000,000 VMs

Each shard is its own demo estate (seed 1, 2, …; disjoint subscriptions and VMs, one collection
time), so no machine ever holds the whole estate: generated one at a time, each scanned with
`--shard-name` in a fresh interpreter, then all joined by `merge`. Prints wall time and peak memory of
every step (tree_memory.py: the larger of the largest process's peak RSS and the sampled peak of the summed
PSS of the step's process and its children, since a scan judges and a merge writes in child processes) and
the merged reports' sizes.
shard_bench.py checks that a merge equals one scan; this one measures the matrix at sizes one scan
cannot reach.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tree_memory import measure_both

COLLECTED_AT = "2026-11-24T06:00:00Z"


def step(*args: str | int | Path) -> tuple[float, float]:
    """(seconds, peak GiB) of one backup-preflight command in a fresh interpreter; exit 2 or more stops here."""
    got = measure_both([sys.executable, "-m", "backup_preflight", "-q", *map(str, args)])
    if int(got["exit"]) not in (0, 1, 3):
        raise SystemExit(f"{' '.join(map(str, args))}: exit {got['exit']}: {str(got['stderr']).strip()}")
    return float(got["seconds"]), float(got["peak"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--vms", type=int, default=100000, help="VMs per shard")
    parser.add_argument("--work", type=Path, help="folder for estates and reports (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bp-matrix-", dir=args.work) as tmp:
        folder = Path(tmp)
        results = []
        print(f"{args.shards} shards of {args.vms:,} VMs\n\n{'step':<26} {'seconds':>8} {'peak GB':>8}", flush=True)
        for i in range(args.shards):
            estate = folder / f"estate-{i}.json.gz"
            seconds, peak = step("demo-estate", "--vms", args.vms, "--seed", i + 1, "--collected-at", COLLECTED_AT,
                                 "--output", estate)
            print(f"{'demo-estate ' + str(i):<26} {seconds:8.1f} {peak:8.2f}", flush=True)
            out = folder / f"shard-{i}"
            seconds, peak = step("scan", "--snapshot", estate, "--shard-name", f"shard-{i}", "--output-dir", out,
                                 "--ci", "none", "--fail-on", "never")
            print(f"{'scan --shard-name ' + str(i):<26} {seconds:8.1f} {peak:8.2f}", flush=True)
            estate.unlink()
            results.append(out / "results.json")
        seconds, peak = step("merge", *results, "--output-dir", folder / "merged", "--ci", "none",
                             "--fail-on", "never")
        print(f"{'merge':<26} {seconds:8.1f} {peak:8.2f}\n", flush=True)
        for report in sorted((folder / "merged").iterdir()):
            print(f"{report.name:<18} {report.stat().st_size / 1e6:10.1f} MB")


if __name__ == "__main__":
    main()
