"""The `collect` stage: read the estate from Azure into a Snapshot, evaluating nothing.

Resource Graph gives the model view (VMs, extensions, network, backup items and policies, guest
configuration) in paged, quota-paced queries; the Compute instance view adds what ARG lacks (VM
agent and extension handler status) for running VMs, and Azure Monitor their CPU and memory
pressure (the `metrics` table), and a vault's jobs list the error codes of failed backup jobs
whose Resource Graph row lacks them. Whatever could not be read becomes an entry
in `snapshot.errors` naming its scope, so a partial estate is never mistaken for a healthy one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backup_preflight.collect.auth import (
    AUTH_METHODS,
    CollectError,
    make_credential,
    redact,
    resolve_endpoint,
    token_scope,
)
from backup_preflight.collect.backup_jobs import JOB_TYPE, BackupClients, JobErrorCollector, vaults_to_ask
from backup_preflight.collect.instance_view import ComputeClients, InstanceViewCollector, running_vm_ids, running_vms
from backup_preflight.collect.metrics import MetricsCollector, resolve_endpoints, timespan
from backup_preflight.collect.progress import Progress
from backup_preflight.collect.resource_graph import (
    CONTAINERS,
    TABLE_QUERIES,
    ChainResult,
    GraphCollector,
    GraphQuery,
    Tuning,
    build_scopes,
    describe_error,
    make_client,
    unseen_scopes,
)
from backup_preflight.collect.run_command import ProbeSettings, RunCommandCollector, probe_targets
from backup_preflight.collect.throttle import Clock, RealClock
from backup_preflight.snapshot import Snapshot, as_row, compact, compact_row, query_key, row_head

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["AUTH_METHODS", "CollectError", "CollectOptions", "CollectStats", "Collector", "ProbeSettings",
           "Tuning", "collect_snapshot"]

QUERY_PREFIX = "query:"


@dataclass
class CollectOptions:
    """What to collect and how to sign in; mirrors the CLI's live-source flags."""

    subscriptions: list[str] = field(default_factory=list)
    management_groups: list[str] = field(default_factory=list)
    auth: str = "default"  # default|cli|environment|managed-identity|workload-identity
    arm_endpoint: str | None = None  # e.g. https://127.0.0.1:PORT or https://management.usgovcloudapi.net
    instance_view: bool = True
    metrics: bool = True  # Azure Monitor CPU / memory of running VMs
    metrics_days: int = 7
    metrics_endpoint: str | None = None  # every region's batches to this endpoint (proxy, private link)
    custom_queries: list[str] = field(default_factory=list)  # KQL texts from user policies
    progress: bool | None = None  # None = live line on a terminal, log lines otherwise
    probe: ProbeSettings | None = None  # --probe-guest: run the in-guest probes through Run Command
    #: Keep the rows as their JSON text (snapshot.compact): Resource Graph's as each page comes, the metrics'
    #: as each batch comes, the instance views' once read. For `collect` and live scans, which write them out;
    #: a caller that reads the rows materializes the snapshot first.
    compact_rows: bool = False


@dataclass
class CollectStats:
    """Request counts and timings of one run (the benchmark and the final log line use them)."""

    graph_requests: int = 0
    graph_seconds: float = 0.0
    view_requests: int = 0
    view_seconds: float = 0.0
    metrics_requests: int = 0
    metrics_seconds: float = 0.0
    probe_requests: int = 0
    probe_seconds: float = 0.0
    jobs_requests: int = 0
    jobs_seconds: float = 0.0
    quota_waits: int = 0
    quota_waited: float = 0.0
    rows: int = 0
    pages: int = 0


def collect_snapshot(options: CollectOptions) -> Snapshot:
    """Collect a snapshot with the credential named by `options.auth`.

    Raises CollectError when nothing can be collected at all (bad endpoint, no token); failures
    of single scopes or VMs are entries in `snapshot.errors` instead.
    """
    endpoint = resolve_endpoint(options.arm_endpoint)
    try:
        credential = make_credential(options.auth, endpoint)
    except ValueError as exc:  # e.g. workload identity without its environment variables
        raise CollectError(f"--auth {options.auth}: {redact(str(exc))}") from None
    try:
        return Collector(options, credential).run()
    finally:
        close = getattr(credential, "close", None)
        if callable(close):
            close()


class Collector:
    """One collection run; tests and the benchmark inject a credential, a clock and tuning."""

    def __init__(self, options: CollectOptions, credential: TokenCredential, *, clock: Clock | None = None,
                 tuning: Tuning | None = None, progress: Progress | None = None) -> None:
        self.options = options
        self.endpoint = resolve_endpoint(options.arm_endpoint)
        self.scope = token_scope(self.endpoint)
        # Checked before anything is queried: a metrics endpoint that cannot be known stops the run.
        self.metrics_endpoints = (resolve_endpoints(self.endpoint, options.metrics_endpoint)
                                  if options.metrics else None)
        self.credential = credential
        self.clock = clock or RealClock()
        self.tuning = tuning or Tuning()
        self.progress = progress or Progress(live=options.progress)
        self.stats = CollectStats()

    def run(self) -> Snapshot:
        """Query every table and custom query over every scope, then the instance views."""
        started_at = datetime.now(UTC)
        collected_at = started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._check_credential()
        scopes = build_scopes(self.options.subscriptions, self.options.management_groups,
                              self.tuning.batch_size)
        queries = [GraphQuery(table, kql, self.options.compact_rows) for table, kql in TABLE_QUERIES.items()]
        custom: dict[str, str] = {}
        for kql in self.options.custom_queries:
            custom.setdefault(query_key(kql), kql)
        queries += [GraphQuery(QUERY_PREFIX + key, kql) for key, kql in custom.items()]

        snap = Snapshot(collected_at=collected_at, scope={
            "subscriptions": [sub for s in scopes for sub in s.subscriptions],
            "managementGroups": [s.management_group for s in scopes if s.management_group],
        })
        client = make_client(self.credential, self.endpoint, self.scope, self.tuning)
        started = self.clock.now()
        try:
            graph = GraphCollector(client, self.clock, self.tuning, self.progress)
            results = graph.run(queries, scopes)
        finally:
            client.close()
        self.stats.graph_requests = graph.requests
        self.stats.graph_seconds = self.clock.now() - started
        for query in queries:
            self._store(snap, query, results[query.target])
        for entry in unseen_scopes(scopes, results[CONTAINERS]):
            snap.errors.append(entry)
            self.progress.error(entry)
        self._job_errors(snap, started_at)

        clients = ComputeClients(self.credential, self.endpoint, self.scope, self.clock, self.tuning, self.progress)
        try:
            if self.options.instance_view:
                self._instance_views(snap, clients)
            if self.options.probe is not None:
                self._probes(snap, clients, self.options.probe)
        finally:
            clients.close()
        if self.metrics_endpoints is not None:
            self._metrics(snap, started_at)
        self.stats.quota_waits = self.progress.waits
        self.stats.quota_waited = self.progress.waited
        self.stats.rows = self.progress.rows
        self.stats.pages = self.progress.pages
        self.progress.finish()
        return snap

    def _check_credential(self) -> None:
        """Fail early, once, with a clear message when no token can be had at all."""
        from azure.core.exceptions import ClientAuthenticationError

        try:
            self.credential.get_token(self.scope)
        except ClientAuthenticationError as exc:
            raise CollectError(f"cannot get a token for {self.scope} (--auth {self.options.auth}): "
                               f"{redact(describe_error(exc))}") from None

    def _store(self, snap: Snapshot, query: GraphQuery, chains: list[ChainResult]) -> None:
        """Rows of every scope into their table (absent when no scope answered at all), errors into the list."""
        for chain in chains:
            snap.errors.extend(chain.errors)
        if not any(chain.pages for chain in chains):
            return
        custom = query.target.startswith(QUERY_PREFIX)
        rows = _dedupe([chain.rows for chain in chains], one_per_id=not custom)
        if custom:
            snap.queries[query.target.removeprefix(QUERY_PREFIX)] = {"query": query.kql, "rows": rows}
        else:
            snap.tables[query.target] = rows

    def _instance_views(self, snap: Snapshot, clients: ComputeClients) -> None:
        vm_ids = running_vm_ids(map(as_row, snap.tables.get("resources", [])))
        views = InstanceViewCollector(clients, self.clock, self.tuning, self.progress)
        started = self.clock.now()
        rows, errors = views.collect(vm_ids)
        self.stats.view_requests = views.requests
        self.stats.view_seconds = self.clock.now() - started
        snap.tables["instanceviews"] = compact(rows) if self.options.compact_rows else rows
        snap.errors.extend(errors)

    def _job_errors(self, snap: Snapshot, collected_at: datetime) -> None:
        """Error details of failed job rows that lack them, from their vaults' jobs lists; a job row kept as
        text is read for it, and written back once filled in."""
        rows = snap.tables.get("recoveryservicesresources", [])
        jobs = {i: as_row(row) for i, row in enumerate(rows) if str(row_head(row)[1]).lower() == JOB_TYPE}
        vaults = vaults_to_ask(list(jobs.values()))
        if not vaults:
            return
        clients = BackupClients(self.credential, self.endpoint, self.scope, self.clock, self.tuning, self.progress)
        collector = JobErrorCollector(clients, self.clock, self.tuning, self.progress)
        started = self.clock.now()
        try:
            snap.errors.extend(collector.collect(vaults, collected_at))
        finally:
            clients.close()
        self.stats.jobs_requests = collector.requests
        self.stats.jobs_seconds = self.clock.now() - started
        for i, row in jobs.items():
            if rows[i] is not row:  # kept as text: the row as filled in takes its place
                rows[i] = compact_row(row)

    def _metrics(self, snap: Snapshot, collected_at: datetime) -> None:
        assert self.metrics_endpoints is not None
        vms = running_vms(map(as_row, snap.tables.get("resources", [])))
        collector = MetricsCollector(self.credential, self.metrics_endpoints, self.clock, self.tuning,
                                     self.progress, compact_rows=self.options.compact_rows)
        started = self.clock.now()
        rows, errors = collector.collect(vms, timespan(collected_at, self.options.metrics_days))
        self.stats.metrics_requests = collector.requests
        self.stats.metrics_seconds = self.clock.now() - started
        snap.tables["metrics"] = rows
        snap.errors.extend(errors)
    def _probes(self, snap: Snapshot, clients: ComputeClients, settings: ProbeSettings) -> None:
        views = snap.tables.get("instanceviews")
        targets, skipped = probe_targets(map(as_row, snap.tables.get("resources", [])),
                                         None if views is None else map(as_row, views))
        runner = RunCommandCollector(clients, self.clock, self.tuning, self.progress, settings)
        started = self.clock.now()
        rows, errors = runner.collect(targets)
        self.stats.probe_requests = runner.requests
        self.stats.probe_seconds = self.clock.now() - started
        snap.tables["guestfacts"] = rows
        snap.errors.extend(skipped + errors)


def _dedupe(chains: list[list[Any]], one_per_id: bool) -> list[Any]:
    """The rows of each scope's chain in turn, without those of an id an earlier scope returned already
    (overlapping scopes, e.g. a management group and one of its subscriptions). In a table an id is one
    resource, so a repeat within a chain goes too (`one_per_id`); a custom query may return several rows
    of one id (one per NSG rule), all kept. Rows without an id (custom projections) are all kept."""
    seen: set[str] = set()
    out = []
    for rows in chains:
        ours: set[str] = set()
        for row in rows:
            rid = row_head(row)[0]
            if isinstance(rid, str):
                key = rid.lower()
                if key in seen or (one_per_id and key in ours):
                    continue
                ours.add(key)
            out.append(row)
        seen |= ours
    return out
