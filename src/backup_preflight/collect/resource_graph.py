"""Resource Graph: generic paged queries per table and per scope batch, paced by the user quota.

One chain of pages per (query, scope batch): `$top` 1000 and `$skipToken` until done. Chains
run on a few worker threads that share one `QuotaPacer`, so independent chains fill the quota
while one waits on the network. The SDK's retry policy is off (`retry_total=0`); this module
decides: 429 waits (Retry-After, else the quota reset, else backoff) and retries, 5xx and dropped
connections back off and retry, anything else — or a page that keeps failing — fails that chain's
scope with an error entry while every row already fetched is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import DecodeError, HttpResponseError, ServiceRequestError, ServiceResponseError

from backup_preflight.collect.auth import redact
from backup_preflight.collect.progress import Progress
from backup_preflight.collect.throttle import Clock, Quota, QuotaPacer, backoff, retry_after
from backup_preflight.snapshot import RESOURCE_GROUP_TYPE, SUBSCRIPTION_TYPE, as_row, compact

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryResponse

T = TypeVar("T")

#: Row types of the `resources` table that the estate joins.
RESOURCE_TYPES = (
    "microsoft.compute/virtualmachines",
    "microsoft.compute/virtualmachines/extensions",
    "microsoft.compute/availabilitysets",
    "microsoft.network/networkinterfaces",
    "microsoft.network/virtualnetworks",
    "microsoft.network/networksecuritygroups",
    "microsoft.network/routetables",
    "microsoft.network/publicipaddresses",
    "microsoft.network/natgateways",
    "microsoft.network/loadbalancers",
    "microsoft.network/publicipprefixes",
    "microsoft.sqlvirtualmachine/sqlvirtualmachines",
)
#: Row types of the `resourcecontainers` table that the reports use (display names and tags).
CONTAINER_TYPES = (SUBSCRIPTION_TYPE, RESOURCE_GROUP_TYPE)
RECOVERY_TYPES = (
    "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
    "microsoft.recoveryservices/vaults/backuppolicies",
    "microsoft.recoveryservices/vaults/backupjobs",
)


def _type_filter(table: str, types: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{t}'" for t in types)
    return f"{table} | where type in~ ({listed})"


#: The table whose subscription rows show which named scopes Resource Graph really answered for.
CONTAINERS = "resourcecontainers"
#: Table name → KQL returning whole rows (every column, `id` included, so paging is stable).
TABLE_QUERIES: dict[str, str] = {
    "resources": _type_filter("resources", RESOURCE_TYPES),
    # Backup jobs: only failed ones (Resource Graph keeps 14 days); a later success shows on the protected item.
    "recoveryservicesresources": _type_filter("recoveryservicesresources", RECOVERY_TYPES)
    + " | where type !~ 'microsoft.recoveryservices/vaults/backupjobs' or (tostring(properties.status) =~ 'Failed'"
    " and todatetime(properties.startTime) > ago(14d))",
    "guestconfigurationresources": "guestconfigurationresources",
    # Subscription display names and the tags of subscriptions and resource groups, for the reports.
    CONTAINERS: _type_filter(CONTAINERS, CONTAINER_TYPES),
}

PAGE_SIZE = 1000  # the API's maximum `$top`
MIN_THROTTLE_WAIT = 1.0  # seconds, after any 429
SUBSCRIPTION_LIMIT_HIT = "x-ms-tenant-subscription-limit-hit"


@dataclass(frozen=True, slots=True)
class Tuning:
    """Knobs for pacing and retries; the defaults suit real Azure, tests shrink the delays."""

    batch_size: int = 1000  # subscriptions per request (the API's limit)
    graph_workers: int = 4
    view_workers: int = 8
    metrics_workers: int = 8
    max_attempts: int = 5  # tries of one page against 5xx / dropped connections
    max_throttled: int = 20  # 429s tolerated for one page
    max_splits: int = 100  # halvings of forbidden subscription batches per run (each costs requests)
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    read_timeout: int = 120


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request covers: a subscription batch, one management group, or the tenant."""

    subscriptions: tuple[str, ...] = ()
    management_group: str | None = None

    @property
    def labels(self) -> list[str]:
        """Names for error entries: each subscription of a failed batch is incomplete."""
        if self.management_group:
            return [f"managementGroup {self.management_group}"]
        if self.subscriptions:
            return [f"subscription {s}" for s in self.subscriptions]
        return ["tenant"]

    def describe(self) -> str:
        if self.management_group:
            return f"management group {self.management_group}"
        if len(self.subscriptions) == 1:
            return f"subscription {self.subscriptions[0]}"
        if self.subscriptions:
            return f"{len(self.subscriptions)} subscriptions ({self.subscriptions[0]}…)"
        return "tenant"


def build_scopes(subscriptions: list[str], management_groups: list[str], batch_size: int) -> list[Scope]:
    """Subscription batches of at most `batch_size`, one scope per management group, else the tenant."""
    subs = _unique(subscriptions)
    scopes = [Scope(subscriptions=tuple(subs[i:i + batch_size])) for i in range(0, len(subs), batch_size)]
    scopes += [Scope(management_group=mg) for mg in _unique(management_groups)]
    return scopes or [Scope()]


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in (v.strip() for v in values):
        if value and value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return out


@dataclass(frozen=True, slots=True)
class GraphQuery:
    """One KQL text and where its rows go: a snapshot table, or `query:<key>` for custom ones; `compact`: kept
    as their JSON text as each page comes (snapshot.compact)."""

    target: str
    kql: str
    compact: bool = False


@dataclass(slots=True)
class ChainResult:
    """Rows of one query over one scope, and the error entries if it did not finish."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0

    def add(self, other: ChainResult) -> None:
        """Append another chain's rows, errors and page count (scopes of one target, split halves)."""
        self.rows.extend(other.rows)
        self.errors.extend(other.errors)
        self.pages += other.pages


class PageFailed(Exception):
    """A page that could not be fetched; `status` is the HTTP status, None for network errors."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_entry(scope_label: str, target: str, status: int | None, message: str) -> dict[str, Any]:
    """The snapshot's error record; messages pass through `redact` so no token can end up stored."""
    return {"scope": scope_label, "table": target, "status": status, "message": redact(message)}


def unseen_scopes(scopes: list[Scope], chains: list[ChainResult]) -> list[dict[str, Any]]:
    """Error entries for named scopes that Resource Graph left out without a word: asked about several
    subscriptions it drops one the identity cannot read (no 403, no rows), and a management group may
    resolve to no readable subscription; either would pass for a scope with no VMs. `chains` are the
    `resourcecontainers` results of `scopes`, in order: a subscription is seen by any row of it there (its
    own, or a resource group's: an identity with Reader on some resource groups only sees theirs), a
    management group by any row at all. A scope whose chain has an error entry is named already."""
    errors: list[dict[str, Any]] = []
    for scope, chain in zip(scopes, chains, strict=True):
        named = {entry["scope"] for entry in chain.errors}
        seen = {str(row.get("subscriptionId") or "").lower() for row in map(as_row, chain.rows)} - {""}
        if scope.management_group:
            if not seen and scope.labels[0] not in named:
                errors.append(error_entry(scope.labels[0], CONTAINERS, 200, f"management group "
                                          f"{scope.management_group} returned nothing the identity can read"))
        elif scope.subscriptions:
            for sub, label in zip(scope.subscriptions, scope.labels, strict=True):
                if sub.lower() not in seen and label not in named:
                    errors.append(error_entry(label, CONTAINERS, 200, f"subscription {sub} returned no rows: "
                                              "the identity cannot read it, or it does not exist"))
    return errors


def describe_error(exc: Exception) -> str:
    """One line for an SDK exception: the ARM error code and message when the body had them."""
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if code or message:
        return f"{code}: {message}" if code and message else str(code or message)
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0]


def make_client(credential: TokenCredential, endpoint: str, scope: str,
                tuning: Tuning) -> ResourceGraphClient:
    """A ResourceGraphClient whose own retries are off: our pacing and retry loop are in charge."""
    from azure.mgmt.resourcegraph import ResourceGraphClient

    return ResourceGraphClient(credential, base_url=endpoint, credential_scopes=[scope], retry_total=0,
                               read_timeout=tuning.read_timeout)


Page = tuple["QueryResponse", Mapping[str, str]]


def _with_headers(pipeline_response: Any, deserialized: QueryResponse | None, _: Any) -> Page:
    """The page and its headers. An answer without its `data` list (`{}` from a proxy, a body that is JSON
    but not Resource Graph's) is not a page of no rows, and one with a row that is not an object is no page of
    rows: either is retried like a garbled body, and fails its scope if it stays so, rather than leave the
    table looking empty or write a snapshot that `scan` refuses."""
    response = pipeline_response.http_response
    if deserialized is None or not isinstance(deserialized.data, list):
        raise DecodeError("the Resource Graph answer has no list of rows (`data`)", response=response)
    if not all(isinstance(row, dict) for row in deserialized.data):  # a saved snapshot would be refused
        raise DecodeError("the Resource Graph answer has a row that is not an object", response=response)
    return deserialized, response.headers


class GraphCollector:
    """Runs every (query, scope) chain; safe to share the client across the worker threads."""

    def __init__(self, client: ResourceGraphClient, clock: Clock, tuning: Tuning, progress: Progress) -> None:
        self._client = client
        self._clock = clock
        self._tuning = tuning
        self._progress = progress
        self.pacer = QuotaPacer(clock, on_wait=progress.throttle_wait)
        self.requests = 0
        self._lock = threading.Lock()
        self._splits_left = tuning.max_splits

    def run(self, queries: list[GraphQuery], scopes: list[Scope]) -> dict[str, list[ChainResult]]:
        """Per query target, one result per scope in scope order: kept apart so that the repeats of
        overlapping scopes can be told from rows a query returns several times over one scope."""
        jobs = [(q, s) for q in queries for s in scopes]
        self._progress.start_queries(len(jobs), len(scopes))
        results: dict[str, list[ChainResult]] = {q.target: [] for q in queries}
        with ThreadPoolExecutor(max_workers=self._tuning.graph_workers,
                                thread_name_prefix="resource-graph") as pool:
            futures = [pool.submit(self.run_chain, q, s) for q, s in jobs]
            for (query, _), future in zip(jobs, futures, strict=True):
                results[query.target].append(future.result())
        return results

    def run_chain(self, query: GraphQuery, scope: Scope) -> ChainResult:
        """All pages of one query over one scope; a 403 on a batch is narrowed to its subscriptions."""
        result = ChainResult()
        label = f"{query.target} over {scope.describe()}"
        skip_token: str | None = None
        while True:
            try:
                response, headers = self._fetch(query, scope, skip_token, label)
            except PageFailed as failed:
                if failed.status == 403 and len(scope.subscriptions) > 1 and not result.rows and self._split():
                    return self._bisect(query, scope)
                for name in scope.labels:
                    entry = error_entry(name, query.target, failed.status, failed.message)
                    result.errors.append(entry)
                    self._progress.error(entry)
                break
            rows = response.data
            result.rows.extend(compact(rows) if query.compact else rows)
            result.pages += 1
            self._progress.page(len(rows))
            if result.pages == 1 and str(headers.get(SUBSCRIPTION_LIMIT_HIT, "")).lower() == "true":
                self._partial(result, query, scope, "the scope has more subscriptions than Resource Graph "
                              "queries at once; only the first ones were returned")
            skip_token = response.skip_token
            if not skip_token:
                truncated = str(response.result_truncated).lower() == "true"
                if truncated and (response.total_records or 0) > len(result.rows):
                    self._partial(result, query, scope, f"result truncated: {len(result.rows)} of "
                                  f"{response.total_records} rows (the query cannot be paged)")
                break
        self._progress.query_done(label, result.pages, len(result.rows))
        return result

    def _partial(self, result: ChainResult, query: GraphQuery, scope: Scope, message: str) -> None:
        for name in scope.labels:
            entry = error_entry(name, query.target, 200, message)
            result.errors.append(entry)
            self._progress.error(entry)

    def _split(self) -> bool:
        """Whether another forbidden batch may be halved: an identity that can read none of 1000
        subscriptions would otherwise cost some 2000 requests per table to say so one by one."""
        with self._lock:
            self._splits_left -= 1
            return self._splits_left >= 0

    def _bisect(self, query: GraphQuery, scope: Scope) -> ChainResult:
        """Split a forbidden batch until the subscriptions we may not read are named one by one."""
        middle = len(scope.subscriptions) // 2
        result = ChainResult()
        self._progress.more_queries(1)
        for half in (scope.subscriptions[:middle], scope.subscriptions[middle:]):
            result.add(self.run_chain(query, Scope(subscriptions=half)))
        return result

    def _fetch(self, query: GraphQuery, scope: Scope, skip_token: str | None,
               label: str) -> Page:
        """One page, retried per the module's rules; raises PageFailed when it gives up."""
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        request = QueryRequest(
            subscriptions=list(scope.subscriptions) or None,
            management_groups=[scope.management_group] if scope.management_group else None,
            query=query.kql,
            options=QueryRequestOptions(top=PAGE_SIZE, skip_token=skip_token, result_format="objectArray",
                                        allow_partial_scopes=True if not scope.subscriptions else None),
        )
        return call_with_retries(lambda: self._client.resources(request, cls=_with_headers),
                                 self.pacer, self._clock, self._tuning, self._progress, label, self._count)

    def _count(self) -> None:
        with self._lock:
            self.requests += 1


def call_with_retries(call: Callable[[], tuple[T, Mapping[str, str]]], pacer: QuotaPacer, clock: Clock,
                      tuning: Tuning, progress: Progress, label: str,
                      on_request: Callable[[], None]) -> tuple[T, Mapping[str, str]]:
    """Run `call` (returning its value and the response headers) under the pacer; retry
    throttling, server errors and broken connections; raise PageFailed when giving up."""
    failures = 0
    throttled = 0
    while True:
        ticket = pacer.acquire()
        on_request()
        try:
            result = call()
        except HttpResponseError as exc:
            headers: Mapping[str, str] = exc.response.headers if exc.response is not None else {}
            quota = Quota.from_headers(headers)
            pacer.release(ticket, quota)
            status = exc.status_code
            if status == 429:
                throttled += 1
                if throttled > tuning.max_throttled:
                    raise PageFailed(429, f"still throttled after {throttled} tries") from None
                delay = retry_after(headers)
                if delay is None:
                    delay = quota.resets_after
                if delay is None:
                    delay = backoff(throttled, tuning.backoff_base, tuning.backoff_cap)
                # A whole-second header may read 0 while the window is still closed: never spin.
                delay = max(delay, MIN_THROTTLE_WAIT)
                pacer.hold_until(clock.now() + delay)
                progress.retry(label, "HTTP 429", delay)
                continue
            retryable = isinstance(exc, DecodeError) or (status is not None and (status >= 500
                                                                                 or status == 408))
            if not retryable:
                raise PageFailed(status, describe_error(exc)) from None
            failures += 1
            reason = f"HTTP {status}" if status else describe_error(exc)
            if failures >= tuning.max_attempts:
                raise PageFailed(status, f"{describe_error(exc)} (gave up after {failures} tries)") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            pacer.release(ticket, Quota(None, None))
            failures += 1
            reason = f"connection error: {describe_error(exc)}"
            if failures >= tuning.max_attempts:
                raise PageFailed(None, f"{reason} (gave up after {failures} tries)") from None
        except BaseException:
            pacer.release(ticket, Quota(None, None))
            raise
        else:
            pacer.release(ticket, Quota.from_headers(result[1]))
            return result
        delay = backoff(failures, tuning.backoff_base, tuning.backoff_cap)
        progress.retry(label, reason, delay)
        clock.wait_until(clock.now() + delay)
