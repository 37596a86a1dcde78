"""Rows outside Resource Graph's main tables: instance views, guest facts, Machine Configuration, metrics.

Why: these sources cover only some VMs (collected by other APIs or probes, or deployed selectively),
so the scanner must cope with their absence; `SideTables` decides per VM which of them exist.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup_preflight.demo.arm import Row, arg_row, iso
from backup_preflight.demo.plan import Estate, VmPlan
from backup_preflight.demo.scenarios import POLICY_BY_NAME
from backup_preflight.demo.vm_rows import backup_hour_utc, os_names, snapshot_type


@dataclass(slots=True)
class SideTables:
    """Rows that exist only for some VMs: collected by other APIs or probes, or deployed selectively."""

    rng: random.Random  # metric noise, drawn after planning so it never shifts a plan
    assignments: list[Row] = field(default_factory=list)
    instance_views: list[Row] = field(default_factory=list)
    guestfacts: list[Row] = field(default_factory=list)
    metrics: list[Row] = field(default_factory=list)

    def add(self, estate: Estate, vm: VmPlan) -> None:
        if vm.assignment:
            self.assignments.append(_assignment_row(estate, vm))
        if vm.instance_view:
            self.instance_views.append({"id": vm.id, "instanceView": _instance_view(estate, vm)})
        if vm.guestfacts:
            self.guestfacts.append(_guestfacts_row(estate, vm))
        if vm.metrics:
            self.metrics.extend(_metric_rows(estate, vm, self.rng))


def _instance_view(estate: Estate, vm: VmPlan) -> Row:
    """VirtualMachineInstanceView as the Compute API returns it (VirtualMachine_Get_InstanceView.json)."""
    when = iso(estate.collected_at - timedelta(minutes=3))
    handlers: list[Row] = []
    extensions: list[Row] = []
    if vm.extension and vm.extension_source in ("handler", "both"):
        _add_snapshot_extension(vm, handlers, extensions)
    if vm.monitor_agent:
        ext_type = f"Microsoft.Azure.Monitor.AzureMonitor{vm.os}Agent"
        version = "1.33.1" if vm.os == "Linux" else "1.29.0.0"
        handlers.append({"type": ext_type, "typeHandlerVersion": version, "status": dict(_READY_HANDLER)})
        extensions.append({"name": f"AzureMonitor{vm.os}Agent", "type": ext_type, "typeHandlerVersion": version,
                           "statuses": [dict(_PROVISIONED_EXTENSION)]})
    os_name, os_version = os_names(vm)
    return {"computerName": vm.computer_name, "osName": os_name, "osVersion": os_version,
            "vmAgent": {"vmAgentVersion": "Unknown" if vm.agent == "absent" else vm.agent_version,
                        "statuses": [_agent_status(vm, when)], "extensionHandlers": handlers},
            "extensions": extensions, "hyperVGeneration": "V2",
            "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                          "displayStatus": "Provisioning succeeded", "time": when},
                         {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]}


_READY_HANDLER = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}
_PROVISIONED_EXTENSION = {"code": "ProvisioningState/succeeded", "level": "Info",
                          "displayStatus": "Provisioning succeeded", "message": "Enable succeeded"}


def _agent_status(vm: VmPlan, when: str) -> Row:
    if vm.agent == "ready":
        return {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                "message": "GuestAgent is running and processing the extensions.", "time": when}
    message = ("VM status blob is found but not yet populated." if vm.agent == "absent"
               else "VM Agent is unresponsive.")
    return {"code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
            "message": message, "time": when}


def _add_snapshot_extension(vm: VmPlan, handlers: list[Row], extensions: list[Row]) -> None:
    """The backup extension's handler (full version, Ready or not) and its last operation."""
    ext_type = f"Microsoft.Azure.RecoveryServices.{snapshot_type(vm)}"
    handler = dict(_READY_HANDLER) if vm.handler_ready else {
        "code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
        "message": "Handler Microsoft.Azure.RecoveryServices has not reported status for 40 minutes"}
    handlers.append({"type": ext_type, "typeHandlerVersion": vm.handler_version, "status": handler})
    if vm.extension == "Failed":
        status = {"code": "ProvisioningState/failed/1", "level": "Error", "displayStatus": "Provisioning failed",
                  "message": "ExtensionOperationFailed: snapshot operation did not complete within the timeout"}
    else:
        status = dict(_PROVISIONED_EXTENSION)
    extensions.append({"name": snapshot_type(vm), "type": ext_type, "typeHandlerVersion": vm.handler_version,
                       "statuses": [status]})


def _guestfacts_row(estate: Estate, vm: VmPlan) -> Row:
    windows = vm.os == "Windows"
    return {"id": vm.id, "collectedAt": iso(estate.collected_at - timedelta(minutes=20)), "facts": {
        "dhcpEnabled": vm.dhcp, "httpProxy": vm.proxy, "useVssCopyBackup": vm.vss if vm.sql else None,
        "iaasVmProviderService": vm.provider_service if windows else None}}


def _assignment_row(estate: Estate, vm: VmPlan) -> Row:
    """A custom Machine Configuration assignment that checks DHCP in the guest."""
    name = "AzureBackupDhcpEnabled"
    compliant = vm.assignment == "Compliant"
    reason = ("DHCP is enabled on the primary network adapter" if compliant
              else "DHCP is disabled on adapter 'Ethernet': static address configured")
    checked = iso(estate.collected_at - timedelta(hours=2, minutes=vm.index % 60))
    return arg_row(estate, f"{vm.id}/providers/Microsoft.GuestConfiguration/guestConfigurationAssignments/{name}",
                   name, "microsoft.guestconfiguration/guestconfigurationassignments", vm.site.sub, vm.rg,
                   vm.site.region, {
                       "complianceStatus": vm.assignment, "targetResourceId": vm.id,
                       "lastComplianceStatusChecked": checked, "provisioningState": "Succeeded",
                       "resourceType": "Microsoft.Compute/virtualMachines",
                       "guestConfiguration": {"name": name, "version": "1.0.0", "contentType": "Custom"},
                       "latestAssignmentReport": {"complianceStatus": vm.assignment, "resources": [{
                           "complianceStatus": vm.assignment, "resourceId": "[DhcpEnabled]PrimaryAdapter",
                           "reasons": [{"code": "DhcpEnabled", "phrase": reason}]}]}})


def _metric_rows(estate: Estate, vm: VmPlan, rng: random.Random) -> list[Row]:
    """Hourly CPU and available-memory series for the last day; pressure peaks in the backup hour.

    Each hourly point aggregates several samples, as Azure Monitor returns them: minimum, average and
    maximum differ, and only the right end shows the pressure (the CPU maximum, the memory minimum).
    """
    end = estate.collected_at.replace(minute=0)
    start = end - timedelta(hours=24)
    stamps = _hour_stamps(start)
    draw = rng.random
    cpu, memory = [], []
    for _, stamp in stamps:  # values in tenths of a percent, looked up in _TENTHS
        busy = 30 + int(draw() * 420)  # CPU average 3-45 %, peaks stay below 85 %
        cpu.append({"timeStamp": stamp, "minimum": _TENTHS[busy - 5 - int(draw() * 25)], "average": _TENTHS[busy],
                    "maximum": _TENTHS[min(850, busy + 50 + int(draw() * 250))]})
        free = 250 + int(draw() * 550)  # available memory 25-80 %, its minimum never below 15 %
        memory.append({"timeStamp": stamp, "minimum": _TENTHS[free - 10 - int(draw() * 90)],
                       "average": _TENTHS[free], "maximum": _TENTHS[free + 10 + int(draw() * 90)]})
    if vm.metrics != "normal":
        _add_pressure(estate, vm, stamps, cpu if vm.metrics == "cpu-high" else memory, draw)
    timespan = f"{iso(start)}/{iso(end)}"
    return [{"id": vm.id, "name": name, "unit": "Percent", "interval": "PT1H", "timespan": timespan, "data": data}
            for name, data in (("Percentage CPU", cpu), ("Available Memory Percentage", memory))]


def _add_pressure(estate: Estate, vm: VmPlan, stamps: tuple[tuple[int, str], ...], series: list[Row],
                  draw: Callable[[], float]) -> None:
    """CPU peaking above 90 % or free memory dipping below 10 % from the policy's start hour into the
    next one, while the averages stay under the thresholds: read from the wrong end, they look calm."""
    start = backup_hour_utc(POLICY_BY_NAME[vm.policy], estate.collected_at)
    busy = (start, (start + 1) % 24)
    for (hour, _), point in zip(stamps, series, strict=True):
        if hour not in busy:
            continue
        if vm.metrics == "cpu-high":
            point.update(minimum=_TENTHS[400 + int(draw() * 100)], average=_TENTHS[700 + int(draw() * 150)],
                         maximum=_TENTHS[960 + int(draw() * 40)])
        else:
            point.update(minimum=_TENTHS[30 + int(draw() * 40)], average=_TENTHS[120 + int(draw() * 60)],
                         maximum=_TENTHS[250 + int(draw() * 100)])


_TENTHS = tuple(i / 10 for i in range(1001))  # 0.0 .. 100.0: one shared float object per value


@functools.lru_cache(maxsize=4)
def _hour_stamps(start: datetime) -> tuple[tuple[int, str], ...]:
    """The 24 (UTC hour, ISO time) pairs from start; the strings are shared by every series."""
    return tuple(((start + timedelta(hours=h)).hour, iso(start + timedelta(hours=h))) for h in range(24))
