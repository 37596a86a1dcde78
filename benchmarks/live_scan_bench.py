"""Peak memory and time of a live `scan` against a fake Azure: the estate held whole, then in parts.

A fake Azure in its own process (the generated estate of `collect_bench.py`, `--vms` VMs, or the Resource
Graph tables of a snapshot file, `--snapshot`, such as `demo-estate` writes) answers the installed
`backup-preflight scan --subscription …`, signed in through a fake `az` on PATH, as a user's CI
job would run it. Each scan's memory is taken by `tree_memory.py` (the largest process's peak RSS, and the
peak of the summed PSS of the scan and its children). The quota is lifted (`--quota`, per second) so that
the run measures the scanner, not Resource Graph's pacing (collect_bench.py measures that); instance views
(the snapshot's, or one per running VM of the generated estate) and metrics (an hourly series for every
running VM) are left out unless asked for.

    .venv/bin/python benchmarks/live_scan_bench.py --vms 100000
    .venv/bin/python benchmarks/live_scan_bench.py --snapshot /tmp/bp-100k.json   # big_estate.py --blocks 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from tree_memory import measure_both  # noqa: E402

from backup_preflight import snapshot  # noqa: E402
from backup_preflight.snapshot import GRAPH_TABLES  # noqa: E402
from collect.fakeazure import TOKEN, Estate, FakeAzure, make_estate, subscription_ids  # noqa: E402
from collect.test_collect_auth import fake_az  # noqa: E402

SCRIPT = Path(sys.executable).with_name("backup-preflight")


def serve(conn: Connection, path: str | None, vms: int, subscriptions: int, quota: int) -> None:
    """Child process: hold the estate, serve it until told to stop."""
    started = time.perf_counter()
    if path:
        snap = snapshot.load(Path(path))
        estate = Estate(tables={name: rows for name, rows in snap.tables.items() if name in GRAPH_TABLES},
                        instance_views={str(row["id"]).lower(): row.get("instanceView") or {}
                                        for row in snap.tables.get("instanceviews", [])})
        scope = snap.scope["subscriptions"]
    else:
        scope = subscription_ids(subscriptions)
        estate = make_estate(vms, scope, running_every=2)
    estate.synthetic_metrics = True  # served only to a scan that asks (--metrics)
    fake = FakeAzure(estate, quota=(quota, 1.0), record_bodies=False).start()
    rows = sum(len(t) for t in estate.tables.values())
    conn.send((fake.url, fake.ca_path, rows, scope, time.perf_counter() - started))
    conn.recv()
    fake.stop()
    conn.send("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--snapshot", help="serve this snapshot file's Resource Graph tables instead")
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--quota", type=int, default=1000, help="Resource Graph queries per second allowed")
    parser.add_argument("--instance-views", action="store_true", help="also read every running VM's instance view")
    parser.add_argument("--metrics", action="store_true", help="also read every running VM's CPU and memory metrics")
    parser.add_argument("--runs", default="0,default", help="--part-size of each scan, comma-separated "
                                                             "(`default`: the scan's own)")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child, args.snapshot, args.vms, args.subscriptions,
                                                         args.quota), daemon=True)
    server.start()
    url, ca_path, rows, scope, seconds = parent.recv()
    print(f"fake Azure at {url}: {args.snapshot or f'{args.vms:,} VMs'}, {rows:,} rows in {len(scope)} "
          f"subscriptions, ready in {seconds:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        fake_az(folder, TOKEN)
        env = {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}",
               "REQUESTS_CA_BUNDLE": ca_path}
        flags = [arg for sub in scope for arg in ("--subscription", sub)]
        flags += ["--arm-endpoint", url, "--auth", "cli", "-q"]
        flags += ["--metrics-endpoint", url] if args.metrics else ["--no-metrics"]
        flags += [] if args.instance_views else ["--no-instance-view"]
        print(f"{'--part-size':>12} {'exit':>4} {'seconds':>8} {'largest GiB':>11} {'summed PSS GiB':>14}")
        for size in args.runs.split(","):
            extra = [] if size == "default" else ["--part-size", size]
            got = measure_both([str(SCRIPT), "scan", *flags, *extra, "--output-dir", str(folder / f"out-{size}")],
                               env=env)
            print(f"{size:>12} {got['exit']:>4} {got['seconds']:>8.1f} {got['largest']:>11.2f} {got['pss']:>14.2f}",
                  flush=True)
    parent.send("stop")
    parent.recv()
    server.join(10)


if __name__ == "__main__":
    main()
