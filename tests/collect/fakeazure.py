"""A fake Azure on 127.0.0.1 for the real azure-mgmt-resourcegraph, Compute, Monitor and Backup clients.

It speaks `POST /providers/Microsoft.ResourceGraph/resources` (objectArray, `$top`,
`$skipToken`, subscription and management-group scopes, the per-user quota with its
`x-ms-user-quota-*` headers and 429s), `GET .../virtualMachines/{vm}/instanceView`, Azure
Monitor's `POST /subscriptions/{sub}/metrics:getBatch` (at most 50 VMs of that subscription, one
region, hourly points between `starttime` and `endtime`) and the Run
Command action (`POST .../virtualMachines/{vm}/runCommand`: 202 with `Azure-AsyncOperation` and
`Location`, the operation polled until it ends, the result in Azure's per-OS message format) and a
vault's jobs list (`GET .../vaults/{vault}/backupJobs` with `$filter` and `nextLink` paging), over
TLS with a `trustme` certificate. Faults (status codes, dropped connections) are injected by rules,
a subscription's rows can be silently left out of Resource Graph's answers (`hidden_subscriptions`),
and every request is recorded so tests can count them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import os
import re
import ssl
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import msgspec
import trustme
from azure.core.credentials import AccessToken

from backup_preflight.snapshot import GRAPH_TABLES

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
VIEW_PATH = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/([^/]+)"
    r"/instanceView$", re.IGNORECASE)
METRICS_PATH = re.compile(r"^/subscriptions/([^/]+)/metrics:getBatch$", re.IGNORECASE)
METRICS_NAMESPACE = "microsoft.compute/virtualmachines"
VM_PATH = (r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/([^/]+)")
RUN_PATH = re.compile(VM_PATH + r"/runCommand$", re.IGNORECASE)
JOBS_PATH = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.RecoveryServices"
                       r"/vaults/([^/]+)/backupJobs$", re.IGNORECASE)
#: What the jobs list's `$filter` may say (Azure answers 400 to other properties) and its time format.
JOB_FILTER_TERM = re.compile(r"^\s*(status|operation|backupManagementType|startTime|endTime) eq '([^']*)'\s*$")
JOB_FILTER_TIME = "%Y-%m-%d %I:%M:%S %p"
OPERATION_PATH = re.compile(
    r"^/subscriptions/([^/]+)/providers/Microsoft\.Compute/locations/([^/]+)/operations/([^/]+)$", re.IGNORECASE)
TYPE_FILTER = re.compile(r"where\s+type\s+in~\s*\(([^)]*)\)", re.IGNORECASE)
#: Azure sends Retry-After on 202 and InProgress answers; the SDK's poller waits that long.
POLL_AFTER = {"retry-after-ms": "20"}
#: Looks like a JWT so that redaction is exercised; tests assert it never leaks.
TOKEN = "eyJ0eXAiOiJKV1QifQ.test-secret-token.signature"


class FakeCredential:
    """A TokenCredential that hands out one fixed token and remembers the scopes asked for."""

    def __init__(self, token: str = TOKEN, error: Exception | None = None) -> None:
        self.token = token
        self.error = error
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeClock:
    """Virtual monotonic time shared by the client's pacer and the server's quota."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait_until(self, deadline: float) -> None:
        with self._lock:
            if deadline > self._now:
                self.waits.append(deadline - self._now)
                self._now = deadline


class WallClock:
    """Real monotonic time, for a server in its own process."""

    def now(self) -> float:
        return time.monotonic()


class QuotaEmulator:
    """Resource Graph's per-user quota: `limit` queries per fixed `window` seconds.

    The window starts with the first query after the previous one ended. `resets-after` is
    rounded up to whole seconds, so a client that obeys it never hits a 429. Throttled requests
    do not use quota.
    """

    def __init__(self, limit: int, window: float, clock: Any) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._start: float | None = None
        self._used = 0
        self.throttled = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = self.clock.now()
            if self._start is None or now >= self._start + self.window:
                self._start, self._used = now, 0
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
            else:
                self.throttled += 1
            left = self._start + self.window - now
            headers = {"x-ms-user-quota-remaining": str(self.limit - self._used),
                       "x-ms-user-quota-resets-after": _hhmmss(math.ceil(left))}
            return allowed, headers


class TokenBuckets:
    """A token bucket per key (ARM's documented read limit is 250 with 25 refilled per second per
    subscription; the metrics data plane publishes none): take one, or the seconds until one refills."""

    def __init__(self, size: int, refill: float, clock: Any) -> None:
        self.size = size
        self.refill = refill
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)

    def take(self, key: str) -> float | None:
        """None when a token was taken, else the seconds until the next one."""
        with self._lock:
            now = self.clock.now()
            tokens, at = self._buckets.get(key, (float(self.size), now))
            tokens = min(float(self.size), tokens + (now - at) * self.refill)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.refill


def _hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class Request:
    """What the server saw; `status` is what it answered (0 for a dropped connection)."""

    kind: str  # "graph", "instanceview", "metrics", "runcommand" (the POST), "operation" (its polls), "backupjobs"
    path: str
    body: dict[str, Any]
    authorization: str | None
    status: int = 0

    @property
    def subscriptions(self) -> list[str]:
        return self.body.get("subscriptions") or []

    @property
    def management_groups(self) -> list[str]:
        return self.body.get("managementGroups") or []

    @property
    def query(self) -> str:
        return self.body.get("query", "")

    @property
    def skip_token(self) -> str | None:
        return (self.body.get("options") or {}).get("$skipToken")

    @property
    def resource_ids(self) -> list[str]:
        return self.body.get("resourceids") or []

    @property
    def params(self) -> dict[str, str]:
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        return {k.lower(): v[-1] for k, v in parse_qs(query).items()}


@dataclass
class Fault:
    """Answer matching requests with `status` (and `headers`, and `raw` bytes as the body instead of
    an ARM error), or drop the connection, `times` times."""

    match: Callable[[Request], bool]
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    raw: bytes | None = None
    times: int = 1


@dataclass
class GuestProbe:
    """What Run Command does on one VM: print `stdout`/`stderr` after `polls` InProgress answers,
    end Failed with `fail` (code, message), refuse the POST with 409, or never finish. With
    `execute`, the posted script itself runs here under `sh` with that environment and its output
    is the answer (Linux only)."""

    stdout: str = ""
    stderr: str = ""
    windows: bool = False
    polls: int = 1
    fail: tuple[str, str] | None = None
    conflict: bool = False
    never_finishes: bool = False
    execute: dict[str, str] | None = None


@dataclass
class Operation:
    probe: GuestProbe
    polls_left: int
    subscription: str
    stdout: str = ""
    stderr: str = ""
    ended: bool = False


@dataclass
class Estate:
    """What the fake Azure holds: rows per ARG table, custom query answers, instance views, metrics.

    `metrics` holds points per lower-case VM id and metric name (Azure answers those within the
    asked time span); with `synthetic_metrics` every other VM of the estate gets a generated hourly
    series; a VM with neither is left out of the answer (a partial batch).
    """

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    custom: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    instance_views: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    synthetic_metrics: bool = False
    management_groups: dict[str, list[str]] = field(default_factory=dict)
    forbidden_subscriptions: set[str] = field(default_factory=set)
    #: Lowercase subscription ids whose rows Resource Graph leaves out without a 403, as it does for a
    #: subscription the identity cannot read among others it can (or one that does not exist).
    hidden_subscriptions: set[str] = field(default_factory=set)
    limit_hit_groups: set[str] = field(default_factory=set)
    guest_probes: dict[str, GuestProbe] = field(default_factory=dict)  # by lowercase VM id
    vault_jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # REST job bodies by lowercase vault id
    forbidden_vaults: set[str] = field(default_factory=set)  # lowercase vault ids
    jobs_page_size: int = 200


class FakeAzure:
    """The HTTPS server; `start()` it, point clients at `url`, trust `ca_path`."""

    def __init__(self, estate: Estate, clock: Any | None = None, quota: tuple[int, float] | None = None,
                 token: str | None = None, record_bodies: bool = True,
                 metrics_rate: tuple[int, float] | None = None) -> None:
        self.estate = estate
        self.clock = clock or WallClock()
        self.quota = QuotaEmulator(quota[0], quota[1], self.clock) if quota else None
        self.metrics_rate = TokenBuckets(metrics_rate[0], metrics_rate[1], self.clock) if metrics_rate else None
        self.token = token
        self.record_bodies = record_bodies
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self._vm_locations: dict[str, str] | None = None
        self._operations: dict[str, Operation] = {}
        self.commands_running: dict[str, int] = {}  # by subscription
        self.most_commands_running: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ca = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="fakeazure-")
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAzure:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1").configure_cert(context)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fakeazure", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._tmp.cleanup()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def graph_requests(self, status: int | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.kind == "graph" and (status is None or r.status == status)]

    def metrics_requests(self, status: int | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.kind == "metrics" and (status is None or r.status == status)]

    def view_requests(self, status: int | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests
                    if r.kind == "instanceview" and (status is None or r.status == status)]

    def jobs_requests(self, status: int | None = None) -> list[Request]:
        """The vaults' `backupJobs` list requests (every page)."""
        with self._lock:
            return [r for r in self.requests if r.kind == "backupjobs" and (status is None or r.status == status)]

    def run_requests(self, kind: str = "runcommand", status: int | None = None) -> list[Request]:
        """The Run Command POSTs (`kind="runcommand"`) or operation polls (`"operation"`)."""
        with self._lock:
            return [r for r in self.requests if r.kind == kind and (status is None or r.status == status)]

    # -- request handling (called from handler threads) ------------------------------------------

    def _fault_for(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match(request):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            if not self.record_bodies and request.kind == "graph":
                request.body = {"subscriptions": request.subscriptions}
            self.requests.append(request)

    def handle_graph(self, request: Request) -> tuple[int, dict[str, str], Any]:
        headers: dict[str, str] = {}
        if self.quota is not None:
            allowed, headers = self.quota.take()
            if not allowed:
                return 429, headers, _arm_error("RateLimiting", "Please provide below info when asking for "
                                                "support: the user quota is exhausted.")
        subs = [s.lower() for s in request.subscriptions]
        forbidden = [s for s in subs if s in self.estate.forbidden_subscriptions]
        if forbidden:
            return 403, headers, _arm_error("AuthorizationFailed", f"no read access to subscription {forbidden[0]}")
        mgs = [m.lower() for m in request.management_groups]
        if any(m not in self.estate.management_groups for m in mgs):
            return 403, headers, _arm_error("AuthorizationFailed", "no read access to the management group")
        rows = self._rows(request.query, tuple(subs), tuple(mgs))
        if rows is None:
            return 400, headers, _arm_error("BadRequest", "Query is invalid.")
        options = request.body.get("options") or {}
        top = int(options.get("$top") or 100)
        if not 1 <= top <= 1000:
            return 400, headers, _arm_error("BadRequest", "$top must be between 1 and 1000")
        digest = hashlib.sha256(msgspec.json.encode([request.query, subs, mgs])).hexdigest()[:16]
        offset = 0
        if options.get("$skipToken"):
            token = msgspec.json.decode(base64.urlsafe_b64decode(options["$skipToken"]))
            if token["q"] != digest:
                return 400, headers, _arm_error("BadRequest", "$skipToken does not match query and scopes")
            offset = token["o"]
        page = rows[offset:offset + top]
        body: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false",
                                "facets": [], "data": page}
        if offset + top < len(rows):
            body["$skipToken"] = base64.urlsafe_b64encode(
                msgspec.json.encode({"q": digest, "o": offset + top})).decode()
        if any(m in self.estate.limit_hit_groups for m in mgs):
            headers["x-ms-tenant-subscription-limit-hit"] = "true"
        return 200, headers, body

    def _rows(self, query: str, subs: tuple[str, ...], mgs: tuple[str, ...]) -> list[dict[str, Any]] | None:
        key = (query, subs, mgs)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        if query in self.estate.custom:
            source = self.estate.custom[query]
        else:
            table = re.split(r"[\s|]", query.strip(), maxsplit=1)[0].lower()
            if table not in self.estate.tables and table not in GRAPH_TABLES:
                return None
            source = self.estate.tables.get(table, [])  # a Resource Graph table the estate left empty
            found = TYPE_FILTER.search(query)
            if found:
                types = {t.strip().strip("'\"").lower() for t in found.group(1).split(",")}
                source = [r for r in source if r["type"].lower() in types]
        allowed: set[str] | None = None
        if subs or mgs:
            allowed = set(subs)
            for mg in mgs:
                allowed.update(s.lower() for s in self.estate.management_groups[mg])
        hidden = self.estate.hidden_subscriptions
        rows = [r for r in source if "subscriptionId" not in r or (
            r["subscriptionId"].lower() not in hidden and (allowed is None or r["subscriptionId"].lower() in allowed))]
        with self._lock:
            self._cache[key] = rows
        return rows

    def handle_view(self, path: str) -> tuple[int, dict[str, str], Any]:
        _, name, vm_id = _vm_of(VIEW_PATH, path)
        view = self.estate.instance_views.get(vm_id)
        if view is None:
            return 404, {}, _arm_error("ResourceNotFound", f"The Resource '{name}' was not found.")
        return 200, {}, view

    def handle_run_command(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        sub, name, vm_id = _vm_of(RUN_PATH, path)
        probe = self.estate.guest_probes.get(vm_id)
        if probe is None:
            return 404, {}, _arm_error("ResourceNotFound", f"The Resource '{name}' was not found.")
        wanted = "RunPowerShellScript" if probe.windows else "RunShellScript"
        if body.get("commandId") != wanted or not isinstance(body.get("script"), list):
            return 400, {}, _arm_error("InvalidParameter", f"expected commandId {wanted} and a script array")
        if probe.conflict:
            return 409, {}, _arm_error("Conflict", "Run command extension execution is in progress. "
                                                   "Please wait for completion before invoking a run command.")
        operation = Operation(probe, probe.polls, sub.lower(), probe.stdout, probe.stderr)
        if probe.execute is not None:
            done = subprocess.run(["sh", "-c", "\n".join(body["script"])], capture_output=True, text=True,
                                  env={**os.environ, **probe.execute}, timeout=60, check=False)
            operation.stdout, operation.stderr = done.stdout, done.stderr
        op_id = hashlib.sha256(f"{vm_id}{len(self.requests)}{time.time()}".encode()).hexdigest()[:32]
        with self._lock:
            self._operations[op_id] = operation
            running = self.commands_running[operation.subscription] = self.commands_running.get(sub.lower(), 0) + 1
            self.most_commands_running[operation.subscription] = max(
                running, self.most_commands_running.get(operation.subscription, 0))
        url = f"{self.url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/westeurope/operations/{op_id}"
        return 202, {"Azure-AsyncOperation": f"{url}?api-version=2024-11-01",
                     "Location": f"{url}?monitor=true&api-version=2024-11-01", **POLL_AFTER}, None

    def handle_operation(self, path: str, query: str) -> tuple[int, dict[str, str], Any]:
        found = OPERATION_PATH.match(path)
        assert found
        op_id = found.group(3)
        with self._lock:
            operation = self._operations.get(op_id)
            if operation is None:
                return 404, {}, _arm_error("NotFound", f"operation {op_id}")
            if "monitor=true" not in query:
                operation.polls_left -= 1
            running = operation.probe.never_finishes or operation.polls_left > 0
            if not running and not operation.ended:
                operation.ended = True
                self.commands_running[operation.subscription] -= 1
        head = {"startTime": "2026-11-29T06:00:00.0000000+00:00", "name": op_id}
        if "monitor=true" in query:  # the Location URL: 202 until done, then the result itself
            return (202, {}, None) if running else (200, {}, {"value": _statuses(operation)})
        if running:
            return 200, POLL_AFTER, {**head, "status": "InProgress"}
        end = {**head, "endTime": "2026-11-29T06:00:30.0000000+00:00"}
        if operation.probe.fail is not None:
            code, message = operation.probe.fail
            return 200, {}, {**end, "status": "Failed", "error": {"code": code, "message": message}}
        return 200, {}, {**end, "status": "Succeeded", "properties": {"output": {"value": _statuses(operation)}}}

    def handle_jobs(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """A vault's jobs list (`BackupJobs_List`): the jobs matching `$filter`, `jobs_page_size` a page,
        `nextLink` with a `$skipToken` (a vault with rows but no listed jobs answers an empty list);
        403 for a forbidden vault, 404 for an unknown one, 400 for a
        filter Azure would refuse (an unknown property, or a time not in `yyyy-MM-dd hh:mm:ss tt`)."""
        found = JOBS_PATH.match(path)
        assert found
        sub, group, vault = found.groups()
        vault_id = f"/subscriptions/{sub}/resourcegroups/{group}/providers/microsoft.recoveryservices/vaults/{vault}"
        if vault_id.lower() in self.estate.forbidden_vaults:
            return 403, {}, _arm_error(
                "AuthorizationFailed", "The client 'ci@example.com' with object id '0000' does not have authorization "
                "to perform action 'Microsoft.RecoveryServices/vaults/backupJobs/read' over scope "
                f"'{path.rsplit('/backupJobs', 1)[0]}' or the scope is invalid.")
        if vault_id.lower() not in self._vaults():
            return 404, {}, _arm_error("ResourceNotFound", f"The Resource 'Microsoft.RecoveryServices/vaults/{vault}' "
                                                           f"under resource group '{group}' was not found.")
        if not params.get("api-version"):
            return 400, {}, _arm_error("MissingApiVersionParameter", "The api-version query parameter is required.")
        terms = {}
        for term in filter(None, params.get("$filter", "").split(" and ")):
            match = JOB_FILTER_TERM.match(term)
            if not match:
                return 400, {}, _arm_error("BMSUserErrorInvalidFilter", f"invalid filter term {term!r}")
            terms[match.group(1)] = match.group(2)
        try:
            window = [datetime.strptime(terms[k], JOB_FILTER_TIME).replace(tzinfo=UTC)
                      for k in ("startTime", "endTime") if k in terms]
        except ValueError as exc:
            return 400, {}, _arm_error("BMSUserErrorInvalidFilter", str(exc))
        listed = self.estate.vault_jobs.get(vault_id.lower(), [])
        jobs = [j for j in listed if _job_matches(j["properties"], terms, window)]
        offset = int(params.get("$skiptoken") or 0)
        size = self.estate.jobs_page_size
        body: dict[str, Any] = {"value": jobs[offset:offset + size]}
        if offset + size < len(jobs):
            query = urlencode({"$filter": params.get("$filter", ""), "$skipToken": str(offset + size),
                               "api-version": params["api-version"]})
            body["nextLink"] = f"{self.url}{path}?{query}"
        return 200, {}, body

    def handle_metrics(self, request: Request) -> tuple[int, dict[str, str], Any]:
        """Azure Monitor's batch API, with the restrictions it checks: one subscription (the path's),
        at most 50 resources, one resource type; the region is not checked by Azure either (a VM
        asked at the wrong region's endpoint just has no data)."""
        found = METRICS_PATH.match(request.path.split("?", 1)[0])
        assert found
        sub = found.group(1).lower()
        params = request.params
        ids = request.resource_ids
        if sub in self.estate.forbidden_subscriptions:
            return 403, {}, _arm_error("AuthorizationFailed", f"no read access to subscription {sub}")
        wait = self.metrics_rate.take(sub) if self.metrics_rate else None
        if wait is not None:
            return 429, {"Retry-After": str(math.ceil(wait))}, _arm_error("TooManyRequests", "throttled")
        problem = _batch_problem(sub, params, ids)
        if problem:
            return 400, {}, _arm_error("BadRequest", problem)
        start, end = _instant(params["starttime"]), _instant(params["endtime"])
        names = params["metricnames"].split(",")
        aggregations = [a.strip().lower() for a in params.get("aggregation", "average").split(",")]
        locations = self._locations()
        values = []
        for rid in ids:
            series = {name: self._series(rid, name, start, end, aggregations) for name in names}
            if any(points is None for points in series.values()):
                continue  # unknown to the fake: left out, as a partial answer
            values.append({
                "starttime": params["starttime"], "endtime": params["endtime"], "interval": params["interval"],
                "value": [_metric(rid, name, points) for name, points in series.items()],
                "namespace": METRICS_NAMESPACE, "resourceregion": locations.get(rid.lower(), ""), "resourceid": rid})
        return 200, {}, {"values": values}

    def _series(self, rid: str, name: str, start: datetime, end: datetime,
                aggregations: list[str]) -> list[dict[str, Any]] | None:
        stored = self.estate.metrics.get(rid.lower())
        if stored is not None:
            points = stored.get(name.lower(), [])
            return [p for p in points if start <= _instant(p["timeStamp"]) < end]
        if not self.estate.synthetic_metrics or rid.lower() not in self._locations():
            return None
        base = 20.0 + zlib.crc32(f"{rid.lower()} {name}".encode()) % 40
        out = []
        for text, hour in _hours(start, end):
            level = base + hour % 12
            point: dict[str, Any] = {"timeStamp": text}
            for aggregation, value in (("average", level), ("minimum", level - 10), ("maximum", level + 10)):
                if aggregation in aggregations:
                    point[aggregation] = value
            out.append(point)
        return out

    def _vaults(self) -> set[str]:
        """Lower-case ids of the vaults the fake knows: those with listed jobs, and those rows live in."""
        rows = self.estate.tables.get("recoveryservicesresources", [])
        return set(self.estate.vault_jobs) | {r["id"].lower().split("/backup", 1)[0] for r in rows}

    def _locations(self) -> dict[str, str]:
        """Lower-case VM id → location, from the estate's resources table (computed once)."""
        with self._lock:
            if self._vm_locations is None:
                self._vm_locations = {r["id"].lower(): r.get("location", "")
                                      for r in self.estate.tables.get("resources", [])
                                      if r["type"].lower() == METRICS_NAMESPACE}
            return self._vm_locations


def _job_matches(props: dict[str, Any], terms: dict[str, str], window: list[datetime]) -> bool:
    """Whether a job passes the list's filter: equal status, operation and management type, and a
    start time within [startTime, endTime]."""
    for key in ("status", "operation", "backupManagementType"):
        if key in terms and str(props.get(key, "")).lower() != terms[key].lower():
            return False
    if len(window) == 2:
        return window[0] <= _instant(props["startTime"]) <= window[1]
    return True


def job_body(vault_id: str, name: str, vm_name: str, start: str, status: str = "Failed",
             details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A job of a vault's jobs list as Azure sends it (`AzureIaaSVMJob`; the id with `/Subscriptions/`)."""
    props: dict[str, Any] = {
        "jobType": "AzureIaaSVMJob", "duration": "00:20:41.2311226", "actionsInfo": [],
        "virtualMachineVersion": "Compute", "entityFriendlyName": vm_name, "backupManagementType": "AzureIaasVM",
        "operation": "Backup", "status": status, "startTime": start,
        "endTime": _iso_z(_instant(start) + timedelta(minutes=20)), "activityId": f"{name}-activity"}
    if details is not None:
        props["errorDetails"] = details
    return {"id": f"/Subscriptions{vault_id[len('/subscriptions'):]}/backupJobs/{name}", "name": name,
            "type": "Microsoft.RecoveryServices/vaults/backupJobs", "properties": props}


def _iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _batch_problem(sub: str, params: dict[str, str], ids: list[str]) -> str | None:
    """What Azure would answer 400 for, or None."""
    for name in ("api-version", "metricnamespace", "metricnames", "starttime", "endtime", "interval"):
        if not params.get(name):
            return f"missing query parameter {name}"
    if params["metricnamespace"].lower() != METRICS_NAMESPACE:
        return f"unexpected metric namespace {params['metricnamespace']}"
    if not 1 <= len(ids) <= 50:
        return f"between 1 and 50 resource ids are allowed, got {len(ids)}"
    if len({i.lower() for i in ids}) != len(ids):
        return "resource ids must be unique"
    for rid in ids:
        parts = rid.lower().strip("/").split("/")
        if len(parts) != 8 or parts[1] != sub or "/".join(parts[4:7]) != "providers/" + METRICS_NAMESPACE:
            return f"resource {rid} is not a virtual machine of subscription {sub}"
    return None


@functools.lru_cache(maxsize=8)
def _hours(start: datetime, end: datetime) -> tuple[tuple[str, int], ...]:
    """(ISO time, UTC hour) of each whole hour from start to end, shared by every series of a span."""
    count = int((end - start).total_seconds() // 3600)
    stamps = [start + timedelta(hours=h) for h in range(count)]
    return tuple((s.strftime("%Y-%m-%dT%H:%M:%SZ"), s.hour) for s in stamps)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _metric(rid: str, name: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    """One metric of a VM as Azure answers it; no points at all is an empty `timeseries`."""
    return {"id": f"{rid}/providers/Microsoft.Insights/metrics/{name}", "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name}, "displayDescription": name, "unit": "Percent",
            "timeseries": [{"metadatavalues": [], "data": points}] if points else [], "errorCode": "Success"}


def _vm_of(pattern: re.Pattern[str], path: str) -> tuple[str, str, str]:
    """(subscription, VM name, lowercase VM id) of a request path under a VM."""
    found = pattern.match(path)
    assert found
    sub, group, name = found.groups()[:3]
    vm_id = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"
    return sub, name, vm_id.lower()


def _statuses(operation: Operation) -> list[dict[str, Any]]:
    """Run Command's `value` as Azure writes it: one message with both streams on Linux, one
    status per stream on Windows."""
    ok = {"level": "Info", "displayStatus": "Provisioning succeeded", "time": None}
    if operation.probe.windows:
        return [{"code": "ComponentStatus/StdOut/succeeded", **ok, "message": operation.stdout},
                {"code": "ComponentStatus/StdErr/succeeded", **ok, "message": operation.stderr}]
    return [{"code": "ProvisioningState/succeeded", **ok,
             "message": f"Enable succeeded: \n[stdout]\n{operation.stdout}\n[stderr]\n{operation.stderr}"}]


def _arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `FakeAzure.requests` instead."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        fake: FakeAzure = self.server.fake  # type: ignore[attr-defined]
        body = msgspec.json.decode(raw) if raw else {}
        if METRICS_PATH.match(path):
            request = Request("metrics", self.path, body, self.headers.get("Authorization"))
            self._serve(fake, request, lambda: fake.handle_metrics(request))
            return
        if RUN_PATH.match(path):
            run = Request("runcommand", self.path, body, self.headers.get("Authorization"))
            self._serve(fake, run, lambda: fake.handle_run_command(path, body))
            return
        if path.lower() != GRAPH_PATH.lower():
            self._send(404, {}, _arm_error("NotFound", path))
            return
        request = Request("graph", self.path, body, self.headers.get("Authorization"))
        self._serve(fake, request, lambda: fake.handle_graph(request))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        fake: FakeAzure = self.server.fake  # type: ignore[attr-defined]
        if OPERATION_PATH.match(path):
            poll = Request("operation", self.path, {}, self.headers.get("Authorization"))
            query = self.path.partition("?")[2]
            self._serve(fake, poll, lambda: fake.handle_operation(path, query))
            return
        if JOBS_PATH.match(path):
            jobs = Request("backupjobs", self.path, {}, self.headers.get("Authorization"))
            self._serve(fake, jobs, lambda: fake.handle_jobs(path, jobs.params))
            return
        if not VIEW_PATH.match(path):
            self._send(404, {}, _arm_error("NotFound", path))
            return
        request = Request("instanceview", self.path, {}, self.headers.get("Authorization"))
        self._serve(fake, request, lambda: fake.handle_view(path))

    def _serve(self, fake: FakeAzure, request: Request,
               answer: Callable[[], tuple[int, dict[str, str], Any]]) -> None:
        if fake.token is not None and request.authorization != f"Bearer {fake.token}":
            request.status = 401
            fake._record(request)
            self._send(401, {}, _arm_error("InvalidAuthenticationToken", "The access token is invalid."))
            return
        fault = fake._fault_for(request)
        if fault is not None and fault.drop:
            fake._record(request)
            self.close_connection = True
            return
        if fault is not None:
            request.status = fault.status
            fake._record(request)
            self._send(fault.status, fault.headers, _arm_error("Injected", f"injected HTTP {fault.status}"),
                       fault.raw)
            return
        status, headers, body = answer()
        request.status = status
        fake._record(request)
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict[str, str], body: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else b"" if body is None else msgspec.json.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


# -- synthetic estates -----------------------------------------------------------------------------


def subscription_ids(count: int, offset: int = 0) -> list[str]:
    """Deterministic GUID-shaped subscription ids."""
    return [f"{i + offset:08x}-0000-4000-8000-{i + offset:012x}" for i in range(count)]


def make_estate(vms: int, subscriptions: list[str], running_every: int = 2) -> Estate:
    """VMs spread over the subscriptions, each with a NIC and a backup extension, a protected item
    per VM, one backup policy per subscription, a guest configuration assignment per VM, and an
    instance view for every running VM (every `running_every`-th one)."""
    resources: list[dict[str, Any]] = []
    recovery: list[dict[str, Any]] = []
    guest: list[dict[str, Any]] = []
    views: dict[str, dict[str, Any]] = {}
    for sub in subscriptions:
        recovery.append(_row(f"/subscriptions/{sub}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices"
                             "/vaults/vault1/backupPolicies/DefaultPolicy",
                             "microsoft.recoveryservices/vaults/backuppolicies", sub,
                             {"backupManagementType": "AzureIaasVM",
                              "schedulePolicy": {"scheduleRunTimes": ["2024-01-01T02:00:00Z"]}}))
    for i in range(vms):
        sub = subscriptions[i % len(subscriptions)]
        name = f"vm{i:06d}"
        vm_id = f"/subscriptions/{sub}/resourceGroups/RG-{i % 7}/providers/Microsoft.Compute/virtualMachines/{name}"
        running = i % running_every == 0
        power = "PowerState/running" if running else "PowerState/deallocated"
        nic_id = f"/subscriptions/{sub}/resourceGroups/RG-{i % 7}/providers/Microsoft.Network/networkInterfaces/{name}"
        resources.append(_row(vm_id, "microsoft.compute/virtualmachines", sub, {
            "extended": {"instanceView": {"powerState": {"code": power, "displayStatus": "VM running"}}},
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
            "storageProfile": {"osDisk": {"osType": "Linux"}}}))
        resources.append(_row(f"{vm_id}/extensions/VMSnapshotLinux", "microsoft.compute/virtualmachines/extensions",
                              sub, {"publisher": "Microsoft.Azure.RecoveryServices", "type": "VMSnapshotLinux",
                                    "typeHandlerVersion": "1.0", "provisioningState": "Succeeded"}))
        resources.append(_row(nic_id, "microsoft.network/networkinterfaces", sub,
                              {"ipConfigurations": [{"properties": {"subnet": {"id": "subnet"}}}]}))
        recovery.append(_row(f"/subscriptions/{sub}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices"
                             f"/vaults/vault1/backupFabrics/Azure/protectionContainers/c;{name}/protectedItems/vm;{name}",
                             "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                             sub, {"sourceResourceId": vm_id, "policyId": "DefaultPolicy"}))
        guest.append(_row(f"{vm_id}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/baseline",
                          "microsoft.guestconfiguration/guestconfigurationassignments", sub,
                          {"complianceStatus": "Compliant", "targetResourceId": vm_id}))
        # Not a type the estate needs: the type filter must leave it out.
        resources.append(_row(f"/subscriptions/{sub}/resourceGroups/RG-{i % 7}/providers/Microsoft.Compute/disks/"
                              f"{name}-os", "microsoft.compute/disks", sub, {}))
        if running:
            views[vm_id.lower()] = {
                "computerName": name, "osName": "ubuntu",
                "vmAgent": {"vmAgentVersion": "2.9.1.1", "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}],
                    "extensionHandlers": [{"type": "Microsoft.Azure.RecoveryServices.VMSnapshotLinux",
                                           "typeHandlerVersion": "1.0.9225.0",
                                           "status": {"code": "ProvisioningState/succeeded",
                                                      "displayStatus": "Ready"}}]},
                "statuses": [{"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]}
    return Estate(tables={"resources": resources, "recoveryservicesresources": recovery,
                          "guestconfigurationresources": guest, "resourcecontainers": container_rows(subscriptions)},
                  instance_views=views)


def container_rows(subscriptions: list[str]) -> list[dict[str, Any]]:
    """resourcecontainers as Resource Graph returns it: a subscription's `name` is its display name
    (`Subscription <n>`), resource groups keep their own casing; plus a management group row, which
    has no subscriptionId and which the collector's type filter must leave out."""
    rows = [{**_row(f"/providers/Microsoft.Management/managementGroups/mg-{n}", "microsoft.management/managementgroups",
                    "", {"displayName": f"Group {n}"}), "resourceGroup": "", "location": ""} for n in range(2)]
    for n, sub in enumerate(subscriptions):
        rows.append({**_row(f"/subscriptions/{sub}", "microsoft.resources/subscriptions", sub,
                            {"state": "Enabled", "managedByTenants": [],
                             "subscriptionPolicies": {"quotaId": "EnterpriseAgreement_2014-09-01"}}),
                     "name": f"Subscription {n}", "resourceGroup": "", "location": "",
                     "tags": {"costCenter": f"CC-{n}"}})
        group, created = "microsoft.resources/subscriptions/resourcegroups", {"provisioningState": "Succeeded"}
        rows.extend({**_row(f"/subscriptions/{sub}/resourceGroups/{rg}", group, sub, created),
                     "name": rg, "tags": {"team": rg.lower()}} for rg in [*(f"RG-{i}" for i in range(7)), "rg-backup"])
    return rows


def _row(rid: str, rtype: str, sub: str, properties: dict[str, Any]) -> dict[str, Any]:
    parts = rid.split("/")
    group = parts[4].lower() if len(parts) > 4 else ""
    return {"id": rid, "name": rid.rsplit("/", 1)[1], "type": rtype, "tenantId": "tenant-1", "kind": "",
            "location": "westeurope", "resourceGroup": group, "subscriptionId": sub, "managedBy": "",
            "sku": None, "plan": None, "properties": properties, "tags": {}, "identity": None, "zones": None,
            "extendedLocation": None}
