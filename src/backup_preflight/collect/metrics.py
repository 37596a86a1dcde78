"""Azure Monitor metrics: CPU and memory pressure of running VMs, for the backup-hour policies.

The metrics batch API (`POST /subscriptions/{sub}/metrics:getBatch`, azure-monitor-querymetrics'
`MetricsClient.query_resources`) answers up to 50 resources of one subscription, one region and
one type in one call, at the region's own endpoint (`https://<region>.metrics.monitor.azure.com`).
So running VMs are grouped by (subscription, region) and sent 50 at a time, each region to its
endpoint — or all to `--metrics-endpoint` (a proxy, a private link, the tests' fake). Retries and
backoff are Resource Graph's (`call_with_retries`, SDK retries off); every VM of a batch that
failed, and every VM a batch answered without (a partial batch), gets an error entry naming it.
Rows are stored as `{"id", "name", "data": [{"timeStamp", "maximum", "minimum", "average"}]}`,
the shape the estate reads, with the id as Resource Graph wrote it, and with only the points the
pressure policies can read: per UTC hour of the day, the worst one over the days asked (`_points`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from azure.core.exceptions import DecodeError

from backup_preflight.collect.auth import PUBLIC_ARM_ENDPOINT, CollectError
from backup_preflight.collect.instance_view import parse_vm_id
from backup_preflight.collect.progress import Progress
from backup_preflight.collect.resource_graph import PageFailed, Tuning, call_with_retries, error_entry
from backup_preflight.collect.throttle import Clock, QuotaPacer
from backup_preflight.snapshot import compact_row
from backup_preflight.timestamps import utc_hour

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.querymetrics import MetricsClient

TABLE = "metrics"
NAMESPACE = "Microsoft.Compute/virtualMachines"
#: The policies read the CPU maximum and the available-memory minimum; the average is the fallback.
METRIC_NAMES = ("Percentage CPU", "Available Memory Percentage")
AGGREGATIONS = ("Maximum", "Minimum", "Average")
POINT_KEYS = ("timeStamp", "maximum", "minimum", "average")
#: Per metric (lower case): the aggregate the pressure policies read, and +1 where higher is worse, -1 lower.
WORST = {"percentage cpu": ("maximum", 1), "available memory percentage": ("minimum", -1)}
BATCH_SIZE = 50  # resources per getBatch call: the API's limit
GRAIN = timedelta(hours=1)

#: ARM endpoint of a known cloud → (host suffix of its regional metrics endpoints, token audience).
CLOUDS = {
    PUBLIC_ARM_ENDPOINT: ("metrics.monitor.azure.com", "https://metrics.monitor.azure.com"),
    "https://management.usgovcloudapi.net": ("metrics.monitor.azure.us", "https://metrics.monitor.azure.us"),
    "https://management.chinacloudapi.cn": ("metrics.monitor.azure.cn", "https://metrics.monitor.azure.cn"),
}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where each region's batches go and which audience their tokens are for."""

    suffix: str | None  # regional endpoints `https://<region>.<suffix>`; None with a fixed endpoint
    fixed: str | None  # --metrics-endpoint: every batch goes there
    audience: str

    def url(self, region: str) -> str:
        return self.fixed or f"https://{region}.{self.suffix}"


def resolve_endpoints(arm_endpoint: str, metrics_endpoint: str | None) -> Endpoints:
    """Endpoints for the cloud of `arm_endpoint` (already resolved), or `--metrics-endpoint` for all.

    The audience follows the cloud; with an ARM endpoint of no known cloud it is the metrics
    endpoint's own origin, and without `--metrics-endpoint` there is nothing to guess: an error.
    """
    cloud = CLOUDS.get(arm_endpoint.lower())
    fixed = _check_url(metrics_endpoint) if metrics_endpoint else None
    if cloud is None and fixed is None:
        raise CollectError(f"no Azure Monitor endpoint is known for --arm-endpoint {arm_endpoint}; "
                           "give --metrics-endpoint URL, or --no-metrics")
    audience = cloud[1] if cloud else fixed
    assert audience is not None
    return Endpoints(suffix=cloud[0] if cloud else None, fixed=fixed, audience=audience)


def _check_url(text: str) -> str:
    endpoint = text.strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        raise CollectError(f"--metrics-endpoint must be an https URL with a host and no path, got {text!r}")
    return endpoint


@dataclass(frozen=True, slots=True)
class Batch:
    """Up to 50 running VMs of one subscription and region (ids as Resource Graph wrote them)."""

    subscription: str
    region: str
    vm_ids: tuple[str, ...]


def plan_batches(vms: list[tuple[str, str]], size: int = BATCH_SIZE) -> tuple[list[Batch], list[str]]:
    """(VM id, region) pairs → batches per subscription and region, and the ids that fit none
    (not a VM id, or no region): those cannot be asked for and are reported, not dropped."""
    groups: dict[tuple[str, str], list[str]] = {}
    unusable = []
    for vm_id, region in vms:
        parsed = parse_vm_id(vm_id)
        if parsed is None or not region:
            unusable.append(vm_id)
            continue
        groups.setdefault((parsed[0].lower(), region.lower().replace(" ", "")), []).append(vm_id)
    batches = [Batch(sub, region, tuple(ids[i:i + size]))
               for (sub, region), ids in groups.items() for i in range(0, len(ids), size)]
    return batches, unusable


def timespan(collected_at: datetime, days: int) -> tuple[datetime, datetime]:
    """The last `days` days of whole hours before `collected_at` (an hour still running is left out)."""
    end = collected_at.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


class MetricsCollector:
    """Sends the batches on a few threads: one client per endpoint, one 429 gate per subscription
    and region (Azure Monitor throttles there, not across them)."""

    def __init__(self, credential: TokenCredential, endpoints: Endpoints, clock: Clock, tuning: Tuning,
                 progress: Progress, compact_rows: bool = False) -> None:
        self._credential = credential
        self._compact_rows = compact_rows  # each batch's rows kept as their JSON text (snapshot.compact)
        self._endpoints = endpoints
        self._clock = clock
        self._tuning = tuning
        self._progress = progress
        self._lock = threading.Lock()
        self._clients: dict[str, MetricsClient] = {}
        self._gates: dict[tuple[str, str], QuotaPacer] = {}
        self.requests = 0

    def collect(self, vms: list[tuple[str, str]], span: tuple[datetime, datetime]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows for every metric of every answered VM, and one error entry per VM left without."""
        batches, unusable = plan_batches(vms)
        errors = [self._error(vm_id, None, "not a VM id with a region; its metrics cannot be asked for")
                  for vm_id in unusable]
        self._progress.start_metrics(len(batches), len(vms))
        try:
            with ThreadPoolExecutor(max_workers=self._tuning.metrics_workers,
                                    thread_name_prefix="metrics") as pool:
                outcomes = list(pool.map(lambda b: self._batch(b, span), batches))
        finally:
            for client in self._clients.values():
                client.close()
        rows = [row for batch_rows, _ in outcomes for row in batch_rows]
        errors += [error for _, batch_errors in outcomes for error in batch_errors]
        return rows, errors

    def _batch(self, batch: Batch, span: tuple[datetime, datetime]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        client, gate = self._client(batch)
        label = f"metrics of {len(batch.vm_ids)} VMs in {batch.region} ({batch.subscription})"
        try:
            body, _ = call_with_retries(lambda: self._query(client, batch, span), gate, self._clock,
                                        self._tuning, self._progress, label, self._count)
        except PageFailed as failed:
            return [], [self._error(vm_id, failed.status, failed.message) for vm_id in batch.vm_ids]
        finally:
            self._progress.metrics_done()
        return self._rows(batch, body)

    def _query(self, client: MetricsClient, batch: Batch,
               span: tuple[datetime, datetime]) -> tuple[Any, Mapping[str, str]]:
        """One getBatch call through the SDK, its body kept as Azure sent it. Streamed: the SDK's
        own models would take a second per batch to build (and leave out each value's `resourceid`
        and each metric's `errorCode`), so the `cls` hook decodes the bytes itself and hands
        `query_resources` an empty answer to convert."""
        kept: list[tuple[Any, Mapping[str, str]]] = []

        def keep(pipeline_response: Any, chunks: Any, _: Any) -> dict[str, list[Any]]:
            try:
                body = msgspec.json.decode(b"".join(chunks))
            except msgspec.DecodeError as exc:  # a cut-off or garbled answer: retried like a 5xx
                raise DecodeError(f"the metrics answer is not JSON: {exc}") from None
            kept.append((body, pipeline_response.http_response.headers))
            return {"values": []}

        client.query_resources(resource_ids=list(batch.vm_ids), metric_namespace=NAMESPACE,
                               metric_names=list(METRIC_NAMES), timespan=span, granularity=GRAIN,
                               aggregations=list(AGGREGATIONS), stream=True, cls=keep)
        return kept[0]

    def _rows(self, batch: Batch, body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows of the VMs the body answered for; an error entry for each VM it did not, or
        answered with a metric missing or failed."""
        ours = {vm_id.lower(): vm_id for vm_id in batch.vm_ids}
        found: dict[str, dict[str, dict[str, Any]]] = {}
        values = body.get("values") if isinstance(body, dict) else None
        for value in values if isinstance(values, list) else []:
            if not isinstance(value, dict):
                continue
            for metric in value.get("value") or []:
                vm_id = _resource_of(value, metric)
                label = metric.get("name") if isinstance(metric, dict) else None
                name = label.get("value") if isinstance(label, dict) else None
                if vm_id in ours and isinstance(name, str):
                    found.setdefault(vm_id, {})[name.lower()] = metric
        rows, errors = [], []
        for key, vm_id in ours.items():
            metrics = found.get(key, {})
            problems = []
            for name in METRIC_NAMES:
                metric = metrics.get(name.lower())
                code = metric.get("errorCode") if metric else None
                if metric is None:
                    problems.append(f"{name}: not in the answer")
                    continue
                if code not in (None, "Success"):
                    problems.append(f"{name}: {code}: {metric.get('errorMessage') or 'no message'}")
                    continue
                row = {"id": vm_id, "name": name, "data": _points(metric, name)}
                rows.append(compact_row(row) if self._compact_rows else row)
            if problems:
                errors.append(self._error(vm_id, 200, "partial batch answer: " + "; ".join(problems)))
        return rows, errors

    def _error(self, vm_id: str, status: int | None, message: str) -> dict[str, Any]:
        entry = error_entry(f"vm {vm_id}", TABLE, status, message)
        self._progress.error(entry)
        return entry

    def _client(self, batch: Batch) -> tuple[MetricsClient, QuotaPacer]:
        from azure.monitor.querymetrics import MetricsClient

        url = self._endpoints.url(batch.region)
        with self._lock:
            if url not in self._clients:
                self._clients[url] = MetricsClient(url, self._credential, audience=self._endpoints.audience,
                                                   retry_total=0, read_timeout=self._tuning.read_timeout)
            key = (batch.subscription, batch.region)
            if key not in self._gates:
                self._gates[key] = QuotaPacer(self._clock, on_wait=self._progress.throttle_wait)
            return self._clients[url], self._gates[key]

    def _count(self) -> None:
        with self._lock:
            self.requests += 1


def _resource_of(value: dict[str, Any], metric: Any) -> str | None:
    """The lower-cased VM id a metric belongs to: the value's `resourceid`, else its metric id's prefix."""
    rid = value.get("resourceid")
    if not isinstance(rid, str):
        metric_id = metric.get("id") if isinstance(metric, dict) else None
        cut = metric_id.lower().find("/providers/microsoft.insights/") if isinstance(metric_id, str) else -1
        rid = metric_id[:cut] if isinstance(metric_id, str) and cut > 0 else None
    return rid.lower().rstrip("/") if isinstance(rid, str) else None


def _points(metric: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The points of the metric's one time series (none when Azure has no data for it) that the
    pressure policies can read: for each UTC hour of the day, the one hourly point with the worst
    value over all the days asked (the highest CPU maximum, the lowest available-memory minimum; the
    average where a point lacks that aggregate, as the estate reads it), in time order. The peak in
    any set of backup hours is the one of the whole series, and a series keeps at most 24 points,
    not 24 per day: that is what 100,000 VMs' metrics cost in memory. A point the estate could not
    read (no hour in its time stamp, a value that is no number) is kept too, so that it says so.
    Time stamps are interned: every series of a run has the same hours."""
    key, sign = WORST[name.lower()]
    series = metric.get("timeseries") or []
    data = series[0].get("data") if series and isinstance(series[0], dict) else None
    data = data if isinstance(data, list) else []
    worst: dict[int, tuple[float, int]] = {}  # UTC hour → (signed value, index of its point)
    odd = []
    for i, point in enumerate(data):
        hour = utc_hour(point.get("timeStamp")) if isinstance(point, dict) else None
        value = point.get(key if key in point else "average") if isinstance(point, dict) else None
        if hour is None or not (value is None or (isinstance(value, int | float) and not isinstance(value, bool))):
            odd.append(i)
        elif value is not None and (hour not in worst or sign * value > worst[hour][0]):
            worst[hour] = (sign * value, i)
    out = []
    for i in sorted(odd + [i for _, i in worst.values()]):
        point = data[i]
        if isinstance(point, dict):
            point = {k: point[k] for k in POINT_KEYS if k in point}
            if isinstance(point.get("timeStamp"), str):
                point["timeStamp"] = sys.intern(point["timeStamp"])
        out.append(point)
    return out
