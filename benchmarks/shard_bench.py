"""A generated estate split into shards by subscription: scanned per shard, merged, compared with one scan.

    python benchmarks/shard_bench.py --vms 10000 --shards 4 --subscriptions 8

Writes the estate and its shards under a temporary folder, then in fresh processes: one scan of
all the shard files (the oracle), one `scan --shard-name` per shard, and `merge` of their
results.json. Every output of the merge is compared with the scan's after masking only the run's
times, the junit duration and the shard lines (tests/shard_helpers.py, as the tests do). Prints
the equality per output, wall time and peak RSS of each step, and the output sizes. The shards
run one after another here; in a CI matrix they run side by side, so the slowest shard plus the
merge is the wall time a matrix would see.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backup_preflight import demo
from shard_helpers import OUTPUTS, masked, write_shards


def step(*args: str | Path) -> tuple[int, float, float]:
    """(exit code, seconds, peak RSS in MB) of one backup-preflight command in a fresh interpreter.

    The peak comes from `/usr/bin/time`, not from the child's own getrusage: a child started by this
    process reports at least this process's high-water mark, and this process has just generated
    the whole estate (see scan_bench.measure).
    """
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "backup_preflight", "-q",
                           *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(map(str, args))}: exit {done.returncode}: {done.stderr.strip()}")
    return done.returncode, seconds, int(done.stderr.strip().rsplit("\n", 1)[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--subscriptions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bp-shards-") as tmp:
        folder = Path(tmp)
        paths = write_shards(demo.generate(args.vms, args.seed, args.subscriptions), args.shards, folder)
        rows = []
        code, seconds, peak = step("scan", *(a for p in paths for a in ("--snapshot", p)),
                                   "--output-dir", folder / "single", "--ci", "none")
        rows.append(("one scan of all shard files", code, seconds, peak))
        results = []
        for i, path in enumerate(paths):
            out = folder / f"out-{i}"
            got = step("scan", "--snapshot", path, "--shard-name", f"shard-{i}", "--output-dir", out,
                       "--ci", "none", "--fail-on", "never")
            rows.append((f"scan --shard-name shard-{i}", *got))
            results.append(out / "results.json")
        merged = step("merge", *results, "--output-dir", folder / "merged", "--ci", "none")
        rows.append(("merge", *merged))
        same = {name: masked(folder / "merged", name) == masked(folder / "single", name) for name in OUTPUTS}
        vms = json.loads((folder / "merged" / "results.json").read_text())["coverage"]["vms"]
        print(f"{args.vms} VMs in {args.subscriptions} subscriptions, {args.shards} shards ({vms} VMs merged)\n")
        print(f"{'step':<34} {'exit':>4} {'seconds':>8} {'peak MB':>8}")
        for name, code, seconds, peak in rows:
            print(f"{name:<34} {code:>4} {seconds:>8.2f} {peak:>8.0f}")
        slowest = max(r[2] for r in rows[1:-1])
        print(f"\nmatrix wall time (slowest shard + merge): {slowest + merged[1]:.2f} s; one scan: {rows[0][2]:.2f} s")
        print(f"exit codes equal: {rows[0][1] == merged[0]}")
        print("\noutput              equal  one scan (bytes)  merge (bytes)")
        for name in OUTPUTS:
            a, b = (folder / "single" / name).stat().st_size, (folder / "merged" / name).stat().st_size
            print(f"{name:<18} {'yes' if same[name] else 'NO':>6} {a:>17,} {b:>14,}")
        for name in (n for n, ok in same.items() if not ok):
            one, union = masked(folder / "single", name).splitlines(), masked(folder / "merged", name).splitlines()
            line = next((i for i, pair in enumerate(zip(one, union, strict=False))
                         if pair[0] != pair[1]), min(len(one), len(union)))
            print(f"{name} line {line + 1}:\n  one scan: {one[line:line + 1]}\n  merge:    {union[line:line + 1]}")
        if not all(same.values()) or rows[0][1] != merged[0]:
            raise SystemExit("the merge differs from one scan of the union")


if __name__ == "__main__":
    main()
