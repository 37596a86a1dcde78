"""Benchmark Azure Monitor metrics collection against the fake Azure, throttled like ARM reads.

The fake server runs in its own process with `--vms` VMs (every second one running) over
`--subscriptions` subscriptions and `--regions` regions, and answers `metrics:getBatch` with an
hourly series per VM and metric for the days asked. Azure Monitor publishes no request quota for
the batch API (only "up to 50 resources of one subscription, region and type per call" and "back
off on 429 / 529"), so the server throttles each subscription with ARM's documented read bucket
(250 requests, 25 refilled per second) by default. The unchanged collector runs through the real
azure-monitor-querymetrics client. We print the requests (minimum: one per 50 running VMs of a
subscription and region), the throttled answers, the seconds and the collector's peak memory.

    .venv/bin/python benchmarks/metrics_bench.py --vms 100000
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from backup_preflight.collect import Tuning  # noqa: E402
from backup_preflight.collect.metrics import Endpoints, MetricsCollector, timespan  # noqa: E402
from backup_preflight.collect.progress import Progress  # noqa: E402
from backup_preflight.collect.throttle import RealClock  # noqa: E402
from collect.fakeazure import FakeAzure, FakeCredential, make_estate, subscription_ids  # noqa: E402

REGIONS = ("westeurope", "northeurope", "eastus", "westus2", "southeastasia", "japaneast")


def running_vms(vms: int, subscriptions: int, regions: int) -> list[tuple[str, str]]:
    """(id, region) of make_estate's running VMs (every second one), the regions taken in turn."""
    subs = subscription_ids(subscriptions)
    return [(f"/subscriptions/{subs[i % subscriptions]}/resourceGroups/RG-{i % 7}/providers/Microsoft.Compute"
             f"/virtualMachines/vm{i:06d}", REGIONS[i // 2 % regions]) for i in range(0, vms, 2)]


def serve(conn: Connection, vms: int, subscriptions: int, regions: int, rate: tuple[int, float]) -> None:
    """Child process: build the estate, serve it, report the server's counts when told to stop."""
    estate = make_estate(vms, subscription_ids(subscriptions), running_every=2)
    located = dict(running_vms(vms, subscriptions, regions))
    for row in estate.tables["resources"]:
        if row["id"] in located:
            row["location"] = located[row["id"]]
    estate.synthetic_metrics = True
    fake = FakeAzure(estate, metrics_rate=rate).start()
    conn.send((fake.url, fake.ca_path))
    conn.recv()
    conn.send(Counter(r.status for r in fake.metrics_requests()))
    fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--regions", type=int, default=3, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--burst", type=int, default=250, help="requests a subscription may send at once (ARM: 250)")
    parser.add_argument("--refill", type=float, default=25.0, help="requests refilled per second (ARM: 25)")
    parser.add_argument("--workers", type=int, default=Tuning().metrics_workers)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, daemon=True, args=(
        child, args.vms, args.subscriptions, args.regions, (args.burst, args.refill)))
    server.start()
    url, ca_path = parent.recv()
    os.environ["REQUESTS_CA_BUNDLE"] = ca_path
    vms = running_vms(args.vms, args.subscriptions, args.regions)
    groups = Counter((vm_id.split("/")[2], region) for vm_id, region in vms)
    minimum = sum(math.ceil(n / 50) for n in groups.values())
    print(f"fake Azure at {url}: {args.vms:,} VMs, {len(vms):,} running in {len(groups)} (subscription, region) "
          f"pairs; {args.days} days hourly; throttle {args.burst} + {args.refill:g}/s per subscription", flush=True)

    collector = MetricsCollector(FakeCredential(), Endpoints(None, url, url), RealClock(),
                                 Tuning(metrics_workers=args.workers), Progress())
    started = time.perf_counter()
    rows, errors = collector.collect(vms, timespan(datetime.now(UTC), args.days))
    seconds = time.perf_counter() - started
    parent.send("stop")
    statuses = parent.recv()
    server.join(10)

    points = sum(len(r["data"]) for r in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"rows                     {len(rows):,} series, {points:,} points ({len(errors)} errors)")
    print(f"requests                 {collector.requests:,} (minimum {minimum:,}: one per 50 running VMs of a "
          f"subscription and region); server answered {dict(sorted(statuses.items()))}")
    print(f"metrics phase            {seconds:.1f} s, {collector.requests / seconds:.1f} requests/s, "
          f"{len(vms) / seconds:,.0f} VMs/s")
    print(f"collector peak RSS       {peak:.2f} GB")


if __name__ == "__main__":
    main()
