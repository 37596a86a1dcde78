"""Compute instance views: VM agent version/status and extension handlers, absent from Resource Graph.

`$expand=instanceView` on the subscription-wide list needs a scale-set `$filter`, and nothing
public shows the `statusOnly=true` list carrying `vmAgent` (tools that need the agent, like
`Get-AzVM -Status`, read it per VM), so we use one `GET .../virtualMachines/{vm}/instanceView` per
VM — only for VMs whose ARG power state is running (the agent reports nothing otherwise), on a
bounded pool of threads — and store the body as Azure sent it (camelCase), not an SDK model dump.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from azure.core.exceptions import DecodeError

from backup_preflight.collect.progress import Progress
from backup_preflight.collect.resource_graph import PageFailed, Tuning, call_with_retries, error_entry
from backup_preflight.collect.throttle import Clock, QuotaPacer

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.compute import ComputeManagementClient

TABLE = "instanceviews"
VM_TYPE = "microsoft.compute/virtualmachines"
C = TypeVar("C")


def running_vm_ids(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Ids (as ARG wrote them) of VM rows whose power state is `PowerState/running`."""
    return [vm_id for vm_id, _ in running_vms(rows)]


def running_vms(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(id, location) of VM rows whose ARG power state is `PowerState/running`; location may be ''."""
    out = []
    for row in rows:
        if str(row.get("type", "")).lower() != VM_TYPE:
            continue
        props = row.get("properties") or {}
        view = (props.get("extended") or {}).get("instanceView") or {}
        code = (view.get("powerState") or {}).get("code")
        if isinstance(code, str) and code.lower() == "powerstate/running" and isinstance(row.get("id"), str):
            location = row.get("location")
            out.append((row["id"], location if isinstance(location, str) else ""))
    return out


def parse_vm_id(vm_id: str) -> tuple[str, str, str] | None:
    """(subscription, resource group, VM name) from an ARM VM id, or None if it is not one."""
    parts = vm_id.strip("/").split("/")
    expected = ["subscriptions", None, "resourcegroups", None, "providers", "microsoft.compute",
                "virtualmachines", None]
    if len(parts) != len(expected):
        return None
    for part, want in zip(parts, expected, strict=True):
        if not part or (want is not None and part.lower() != want):
            return None
    return parts[1], parts[3], parts[7]


def _raw_json(pipeline_response: Any, _: Any, __: Any) -> tuple[dict[str, Any], Mapping[str, str]]:
    """The body as Azure sent it. One that is JSON but no object (`null`, `[]`) is no instance view, and a row
    holding it would make the saved snapshot unreadable: it is retried like a garbled body, and the VM gets
    an error entry if it stays so."""
    response = pipeline_response.http_response
    body = response.json()
    if not isinstance(body, dict):
        raise DecodeError("the instance view answer is not a JSON object", response=response)
    return body, response.headers


class ArmClients(Generic[C]):
    """One ARM client (of the class `load` returns) and one 429 gate per subscription."""

    def __init__(self, load: Callable[[], type[C]], credential: TokenCredential, endpoint: str, scope: str,
                 clock: Clock, tuning: Tuning, progress: Progress) -> None:
        self._load = load
        self._credential = credential
        self._endpoint = endpoint
        self._scope = scope
        self._clock = clock
        self._tuning = tuning
        self._progress = progress
        self._lock = threading.Lock()
        self._clients: dict[str, C] = {}
        self._gates: dict[str, QuotaPacer] = {}

    def get(self, subscription: str) -> tuple[C, QuotaPacer]:
        key = subscription.lower()
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._load()(
                    self._credential, subscription, base_url=self._endpoint, credential_scopes=[self._scope],
                    retry_total=0, read_timeout=self._tuning.read_timeout)
                self._gates[key] = QuotaPacer(self._clock, on_wait=self._progress.throttle_wait)
            return self._clients[key], self._gates[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()  # type: ignore[attr-defined]


class ComputeClients(ArmClients["ComputeManagementClient"]):
    """The Compute clients, shared by every Compute collector (instance views, Run Command)."""

    def __init__(self, credential: TokenCredential, endpoint: str, scope: str, clock: Clock, tuning: Tuning,
                 progress: Progress) -> None:
        super().__init__(_compute_client_type, credential, endpoint, scope, clock, tuning, progress)


def _compute_client_type() -> type[ComputeManagementClient]:
    from azure.mgmt.compute import ComputeManagementClient

    return ComputeManagementClient


class PooledCollector(Generic[C]):
    """What a per-resource ARM collector holds (instance views, Run Command, vault job lists): its
    clients, clock, tuning and progress, and a request count its worker threads add to under the lock."""

    def __init__(self, clients: ArmClients[C], clock: Clock, tuning: Tuning, progress: Progress) -> None:
        self._clients = clients
        self._clock = clock
        self._tuning = tuning
        self._progress = progress
        self._lock = threading.Lock()
        self.requests = 0


class InstanceViewCollector(PooledCollector["ComputeManagementClient"]):
    """Fetches instance views on a bounded pool of threads."""

    def collect(self, vm_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows `{"id", "instanceView"}` in the order of `vm_ids`, and one error entry per failed VM."""
        self._progress.start_views(len(vm_ids))
        with ThreadPoolExecutor(max_workers=self._tuning.view_workers, thread_name_prefix="instance-view") as pool:
            outcomes = list(pool.map(self._one, vm_ids))
        rows = [row for row, _ in outcomes if row is not None]
        errors = [error for _, error in outcomes if error is not None]
        return rows, errors

    def _one(self, vm_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        parsed = parse_vm_id(vm_id)
        try:
            if parsed is None:
                raise PageFailed(None, "not a virtual machine resource id")
            subscription, group, name = parsed
            client, gate = self._clients.get(subscription)
            view, _ = call_with_retries(
                lambda: client.virtual_machines.instance_view(group, name, cls=_raw_json),
                gate, self._clock, self._tuning, self._progress, f"instance view of {vm_id}", self._count)
        except PageFailed as failed:
            entry = error_entry(f"vm {vm_id}", TABLE, failed.status, failed.message)
            self._progress.error(entry)
            return None, entry
        finally:
            self._progress.view_done()
        return {"id": vm_id, "instanceView": view}, None

    def _count(self) -> None:
        with self._lock:
            self.requests += 1
