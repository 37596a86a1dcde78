"""In-guest probes through the Compute Run Command action — opt-in, since it runs code in the guests.

For each running VM, `POST .../virtualMachines/{vm}/runCommand` (`RunShellScript` or
`RunPowerShellScript`) with our probe script, then the long-running operation is polled by the
SDK (202, `Azure-AsyncOperation`). A VM accepts one command at a time (a second one is 409
Conflict), so each VM gets exactly one; a subscription gets at most `per_subscription` at once.
The POST goes through the shared retry loop (429, 5xx); a poll that fails transiently resumes
from the poller's continuation token instead of running the script again. A VM where the probe
does not produce its JSON (agent not ready, operation failed, timeout, 409) becomes an error
entry naming the VM: Run Command itself needs a Ready VM agent, so the failure is evidence too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from backup_preflight import probes
from backup_preflight.collect.instance_view import VM_TYPE, ComputeClients, PooledCollector, parse_vm_id
from backup_preflight.collect.progress import Progress
from backup_preflight.collect.resource_graph import PageFailed, Tuning, call_with_retries, describe_error, error_entry
from backup_preflight.collect.throttle import Clock, backoff
from backup_preflight.snapshot import instance_view_body

if TYPE_CHECKING:
    from azure.core.polling import LROPoller

TABLE = "guestfacts"
COMMAND_IDS = {"linux": "RunShellScript", "windows": "RunPowerShellScript"}
AGENT_HINT = "Run Command needs a Ready VM agent, so this is evidence for the vm-agent cause too"
LOGGER = logging.getLogger("backup_preflight.collect")


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How the probes run: `storage_host` may hold `{region}`; without it Storage is not tested."""

    storage_host: str | None = None
    timeout: float = 600.0  # seconds per VM, from the POST to the result
    per_subscription: int = 5  # commands in flight per subscription
    workers: int = 32  # commands in flight in total
    poll_interval: float = 10.0  # seconds between polls when Azure sends no Retry-After


@dataclass(frozen=True, slots=True)
class Target:
    """A running VM to probe, with what picks the script and the Storage host."""

    vm_id: str
    os_name: str  # linux | windows
    location: str


def probe_targets(rows: Iterable[dict[str, Any]],
                  views: Iterable[dict[str, Any]] | None = None) -> tuple[list[Target], list[dict[str, Any]]]:
    """Running VMs with a known OS type whose agent is not known to be down; the others that are
    running are error entries (no script fits, or Run Command would only wait for the agent)."""
    agents = {str(v.get("id", "")).lower(): _agent_status(v) for v in views or ()}
    targets, errors = [], []
    for row in rows:
        if str(row.get("type", "")).lower() != VM_TYPE or not isinstance(row.get("id"), str):
            continue
        props = row.get("properties") or {}
        power = (((props.get("extended") or {}).get("instanceView") or {}).get("powerState") or {}).get("code")
        if not (isinstance(power, str) and power.lower() == "powerstate/running"):
            continue
        os_type = ((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType")
        os_name = os_type.lower() if isinstance(os_type, str) else ""
        if os_name not in COMMAND_IDS:
            errors.append(error_entry(f"vm {row['id']}", TABLE, None,
                                      f"not probed: OS type {os_type!r} is neither Linux nor Windows"))
            continue
        agent = agents.get(row["id"].lower())
        if agent is not None and agent.lower() != "ready":
            errors.append(error_entry(f"vm {row['id']}", TABLE, None,
                                      f"not probed: the VM agent reports {agent!r} ({AGENT_HINT})"))
            continue
        targets.append(Target(row["id"], os_name, str(row.get("location") or "")))
    return targets, errors


def _agent_status(row: dict[str, Any]) -> str | None:
    """The agent's displayStatus in an instance view row, None when it reports none."""
    view = instance_view_body(row) or {}
    statuses = (view.get("vmAgent") or {}).get("statuses") or []
    status = statuses[0].get("displayStatus") if statuses and isinstance(statuses[0], dict) else None
    return status if isinstance(status, str) else None


def _raw(pipeline_response: Any, _: Any, __: Any) -> Any:
    """The result body as Azure sent it, `{"value": [...statuses]}`."""
    return pipeline_response.http_response.json()


class RunCommandCollector(PooledCollector["ComputeManagementClient"]):
    """Probes VMs on a bounded pool; shares the Compute clients and 429 gates with the instance views."""

    def __init__(self, clients: ComputeClients, clock: Clock, tuning: Tuning, progress: Progress,
                 settings: ProbeSettings) -> None:
        super().__init__(clients, clock, tuning, progress)
        self._settings = settings
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def collect(self, targets: list[Target]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """`guestfacts` rows in the order of `targets`, and one error entry per VM not probed."""
        LOGGER.info("running the in-guest probe on %d running VMs (Run Command)", len(targets))
        with ThreadPoolExecutor(max_workers=max(1, self._settings.workers),
                                thread_name_prefix="run-command") as pool:
            outcomes = list(pool.map(self._one, targets))
        return ([row for row, _ in outcomes if row is not None],
                [error for _, error in outcomes if error is not None])

    def _one(self, target: Target) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        parsed = parse_vm_id(target.vm_id)
        try:
            if parsed is None:
                raise PageFailed(None, "not a virtual machine resource id")
            with self._slot(parsed[0]):
                body = self._run(target, *parsed)
            statuses = body.get("value") if isinstance(body, dict) else None
            stdout, stderr = probes.streams(statuses if isinstance(statuses, list) else [])
            doc = probes.parse_streams(stdout)
            if doc is None:
                raise PageFailed(None, f"the probe printed no result: {(stderr or stdout or 'no output')[:300]}")
        except PageFailed as failed:
            entry = error_entry(f"vm {target.vm_id}", TABLE, failed.status, f"in-guest probe: {failed.message}")
            self._progress.error(entry)
            return None, entry
        return probes.to_row(doc, target.vm_id), None

    def _slot(self, subscription: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(subscription.lower(),
                                          threading.BoundedSemaphore(max(1, self._settings.per_subscription)))

    def _run(self, target: Target, subscription: str, group: str, name: str) -> Any:
        """POST the command (shared retries), then wait for its result within the timeout."""
        from azure.mgmt.compute.models import RunCommandInput

        client, gate = self._clients.get(subscription)
        env = {"BP_VM_ID": target.vm_id}
        if self._settings.storage_host:
            env["BP_STORAGE_HOST"] = self._settings.storage_host.replace("{region}", target.location)
        command = RunCommandInput(command_id=COMMAND_IDS[target.os_name],
                                  script=probes.with_environment(target.os_name, env).split("\n"))
        label = f"run command on {target.vm_id}"
        deadline = self._clock.now() + self._settings.timeout

        def start(token: str | None = None) -> tuple[LROPoller[Any], dict[str, str]]:
            return client.virtual_machines.begin_run_command(
                group, name, command, cls=_raw, polling_interval=self._settings.poll_interval,
                continuation_token=token), {}

        poller, _ = call_with_retries(start, gate, self._clock, self._tuning, self._progress, label, self._count)
        failures = 0
        while True:
            try:
                poller.wait(max(deadline - self._clock.now(), 0.0))
            except HttpResponseError as exc:
                failed = _operation_failure(exc)
                if failed is not None:
                    raise PageFailed(None, f"{failed} ({AGENT_HINT})") from None
                failures += 1
                status = exc.status_code
                transient = status == 429 or (status is not None and status >= 500)
                if not transient or failures >= self._tuning.max_attempts:
                    raise PageFailed(status, describe_error(exc)) from None
                poller = self._resume(start, poller, failures, label, f"HTTP {status}")
                continue
            except (ServiceRequestError, ServiceResponseError) as exc:
                failures += 1
                if failures >= self._tuning.max_attempts:
                    raise PageFailed(None, f"connection error: {describe_error(exc)}") from None
                poller = self._resume(start, poller, failures, label, "connection error")
                continue
            if not poller.done():
                raise PageFailed(None, f"no result within {self._settings.timeout:g} s ({AGENT_HINT})")
            return poller.result()

    def _resume(self, start: Any, poller: LROPoller[Any], failures: int, label: str, reason: str) -> Any:
        """Wait, then poll the same operation again (never run the script twice)."""
        delay = backoff(failures, self._tuning.backoff_base, self._tuning.backoff_cap)
        self._progress.retry(label, reason, delay)
        self._clock.wait_until(self._clock.now() + delay)
        self._count()
        resumed, _ = start(poller.continuation_token())
        return resumed

    def _count(self) -> None:
        with self._lock:
            self.requests += 1


def _operation_failure(exc: HttpResponseError) -> str | None:
    """The error of an operation that ended Failed/Canceled ("code: message"), None for HTTP errors."""
    response = exc.response
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or str(body.get("status", "")).lower() not in ("failed", "canceled"):
        return None
    error = body.get("error") or {}
    code, message = error.get("code"), error.get("message")
    return f"Run Command {str(body['status']).lower()}: " + (": ".join(str(p) for p in (code, message) if p)
                                                            or "no error details")
