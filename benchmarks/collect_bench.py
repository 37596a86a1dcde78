"""Benchmark the live collector against a fake Azure that enforces Resource Graph's real quota.

The fake server runs in its own process (so its JSON work does not share our GIL), holds a
generated estate of `--vms` VMs (VM, backup extension, NIC and an unrelated disk per VM in
`resources`; a protected item per VM and a policy per subscription; a guest configuration
assignment per VM) and allows 15 queries per 5-second window like Resource Graph. The collector
runs unchanged through the real SDK. We print the requests made, the wall time, and how much of
the quota-allowed request rate the paced collector achieved (goal: at least 90 %).

    .venv/bin/python benchmarks/collect_bench.py --vms 100000
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from backup_preflight.collect import CollectOptions, Collector, Tuning  # noqa: E402
from backup_preflight.collect.progress import Progress  # noqa: E402
from collect.fakeazure import FakeAzure, FakeCredential, make_estate, subscription_ids  # noqa: E402


def serve(conn: Connection, vms: int, subscriptions: int, quota: int, window: float) -> None:
    """Child process: build the estate, serve it, report the server's counts when told to stop."""
    started = time.perf_counter()
    estate = make_estate(vms, subscription_ids(subscriptions), running_every=2)
    fake = FakeAzure(estate, quota=(quota, window), record_bodies=False).start()
    rows = sum(len(t) for t in estate.tables.values())
    conn.send((fake.url, fake.ca_path, rows, time.perf_counter() - started))
    conn.recv()
    graph = fake.graph_requests()
    conn.send({"graph": len(graph), "throttled": sum(1 for r in graph if r.status == 429),
               "views": len(fake.view_requests())})
    fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--quota", type=int, default=15, help="queries per window (Resource Graph: 15)")
    parser.add_argument("--window", type=float, default=5.0, help="quota window in seconds (Resource Graph: 5)")
    parser.add_argument("--instance-views", action="store_true",
                        help="also read the instance view of every running VM (half of them)")
    parser.add_argument("--workers", type=int, default=Tuning().graph_workers)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child, args.vms, args.subscriptions, args.quota,
                                                         args.window), daemon=True)
    server.start()
    url, ca_path, server_rows, build_seconds = parent.recv()
    os.environ["REQUESTS_CA_BUNDLE"] = ca_path
    print(f"fake Azure at {url}: {args.vms:,} VMs, {server_rows:,} rows generated in {build_seconds:.1f} s, "
          f"quota {args.quota} queries / {args.window:g} s", flush=True)

    options = CollectOptions(subscriptions=subscription_ids(args.subscriptions), arm_endpoint=url,
                             instance_view=args.instance_views, metrics=False)  # metrics: metrics_bench.py
    collector = Collector(options, FakeCredential(), tuning=Tuning(graph_workers=args.workers),
                          progress=Progress())
    started = time.perf_counter()
    snap = collector.run()
    wall = time.perf_counter() - started
    parent.send("stop")
    counts = parent.recv()
    server.join(10)

    stats = collector.stats
    rows = sum(len(t) for name, t in snap.tables.items() if name != "instanceviews")
    allowed_rate = args.quota / args.window
    achieved_rate = stats.graph_requests / stats.graph_seconds
    windows = math.ceil(stats.graph_seconds / args.window)
    ideal = (math.ceil(stats.graph_requests / args.quota) - 1) * args.window
    print(f"rows collected           {rows:,} ({len(snap.errors)} errors)")
    print(f"graph requests           {stats.graph_requests:,} (server saw {counts['graph']:,}, "
          f"{counts['throttled']} answered 429); minimum for these rows: {stats.pages:,} pages")
    print(f"graph phase              {stats.graph_seconds:.1f} s, {stats.quota_waits} quota waits "
          f"({stats.quota_waited:.1f} s)")
    print(f"request rate             {achieved_rate:.2f}/s of {allowed_rate:.2f}/s allowed "
          f"= {achieved_rate / allowed_rate:.1%}")
    print(f"quota windows used       {stats.graph_requests / (windows * args.quota):.1%} of {windows} windows; "
          f"ideal paced time {ideal:.1f} s = {ideal / stats.graph_seconds:.1%} of the measured time")
    if args.instance_views:
        print(f"instance views           {len(snap.tables.get('instanceviews', [])):,} in {stats.view_seconds:.1f} s "
              f"({stats.view_requests / max(stats.view_seconds, 1e-9):.0f} requests/s)")
    print(f"wall time                {wall:.1f} s")


if __name__ == "__main__":
    main()
