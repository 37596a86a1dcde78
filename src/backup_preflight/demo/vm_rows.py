"""Each VM's own Resource Graph rows: the VM, its NICs and public IP, extensions, SQL VM, protected item.

Why: these rows carry most of a VM's evidence (power state, agent flag, attachments, last backup),
each rendered from its `VmPlan` in the shape and casing the real API returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from backup_preflight.demo.arm import Row, arg_row, iso, spell, upper_tail
from backup_preflight.demo.plan import Estate, VmPlan, avset_id, vm_id
from backup_preflight.demo.scenarios import IANA_ZONES, POLICY_BY_NAME, PolicySpec
from backup_preflight.demo.shared_rows import public_ip_row

# --- per-VM resources -------------------------------------------------------------------------


def vm_resource_rows(estate: Estate, vm: VmPlan) -> list[Row]:
    nic_ids = [vm.nic_id(n) for n in range(len(vm.nics))]
    pip_id = (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
              f"/providers/Microsoft.Network/publicIPAddresses/{vm.name}-pip") if vm.public_ip else None
    rows = [_vm_row(estate, vm, nic_ids)]
    rows.extend(_nic_row(estate, vm, nic_id, n == 0, nsg, pip_id if n == 0 else None)
                for n, (nic_id, nsg) in enumerate(zip(nic_ids, vm.nics, strict=True)))
    if pip_id:
        rows.append(public_ip_row(estate, vm.site, pip_id, _public_address(vm.index),
                                  {"id": f"{nic_ids[0]}/ipConfigurations/ipconfig1"}, "ipConfiguration"))
    if vm.extension and vm.extension_source in ("arm", "both"):
        rows.append(_snapshot_extension_row(estate, vm, vm.extension))
    if vm.monitor_agent:
        rows.append(_monitor_extension_row(estate, vm))
    if vm.sql:
        rows.append(_sql_row(estate, vm))
    return rows


_LINUX_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                "version": "latest"}
_WINDOWS_IMAGE = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                  "sku": "2022-datacenter-azure-edition", "version": "latest"}
_SQL_IMAGE = {"publisher": "MicrosoftSQLServer", "offer": "sql2019-ws2022", "sku": "enterprise", "version": "latest"}
_OS_NAMES = {"Linux": ("ubuntu", "22.04"), "Windows": ("Windows Server 2022 Datacenter", "10.0.20348.2340")}
_POWER = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}


def _vm_row(estate: Estate, vm: VmPlan, nic_ids: list[str]) -> Row:
    props: Row = {"vmId": vm.vm_guid, "hardwareProfile": {"vmSize": vm.size},
                  "storageProfile": _storage_profile(vm)}
    if vm.os_profile:
        props["osProfile"] = _os_profile(vm)
    if len(nic_ids) == 1:  # single-NIC VMs usually carry no `primary` flag
        props["networkProfile"] = {"networkInterfaces": [{"id": nic_ids[0]}]}
    else:
        props["networkProfile"] = {"networkInterfaces": [
            {"id": nic_id, "properties": {"primary": n == 0}} for n, nic_id in enumerate(nic_ids)]}
    if vm.avset:
        props["availabilitySet"] = {"id": upper_tail(avset_id(vm))}
    props["provisioningState"] = "Succeeded"
    props["timeCreated"] = f"{2021 + vm.index % 5}-0{1 + vm.index % 9}-1{vm.index % 10}T08:{vm.index % 60:02d}:00Z"
    if vm.power:
        props["extended"] = {"instanceView": _extended(vm, vm.power)}
    return arg_row(estate, vm.id, vm.name, "microsoft.compute/virtualmachines", vm.site.sub, vm.rg,
                   vm.site.region, props, tags=vm.tags)


def _extended(vm: VmPlan, power_state: str) -> Row:
    """ARG's preview extended properties; powered-off VMs carry only the power state."""
    power = {"code": f"PowerState/{power_state}", "displayStatus": _POWER[power_state], "level": "Info"}
    if power_state != "running":
        return {"powerState": power}
    os_name, os_version = os_names(vm)
    return {"computerName": vm.computer_name, "hyperVGeneration": "V2", "osName": os_name,
            "osVersion": os_version, "powerState": power}


def os_names(vm: VmPlan) -> tuple[str, str]:
    name, version = _OS_NAMES[vm.os]
    return (f"{name} {vm.markup}" if vm.markup else name), version


def _storage_profile(vm: VmPlan) -> Row:
    """Managed disks mostly; a few legacy unmanaged VHDs; specialized (attached) disks lack an image."""
    disk: Row = {"osType": vm.os, "name": f"{vm.name}_OsDisk_1", "caching": "ReadWrite",
                 "createOption": "FromImage" if vm.os_profile else "Attach",
                 "diskSizeGB": 30 if vm.os == "Linux" else 127}
    if vm.unmanaged_disk:
        disk["vhd"] = {"uri": f"https://stlegacy{vm.site.octet:03d}.blob.core.windows.net/vhds/{vm.name}-os.vhd"}
    else:
        disk["managedDisk"] = {"id": (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg.upper()}"
                                      f"/providers/Microsoft.Compute/disks/{vm.name}_OsDisk_1"),
                               "storageAccountType": "Premium_LRS"}
    profile: Row = {"osDisk": disk, "dataDisks": []}
    if vm.os_profile:
        image = _SQL_IMAGE if vm.sql else _LINUX_IMAGE if vm.os == "Linux" else _WINDOWS_IMAGE
        profile = {"imageReference": dict(image), **profile}
    return profile


def _os_profile(vm: VmPlan) -> Row:
    if vm.os == "Linux":
        config: Row = {"disablePasswordAuthentication": True, "provisionVMAgent": vm.provision_agent,
                       "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"}}
        key = "linuxConfiguration"
    else:
        config = {"provisionVMAgent": vm.provision_agent, "enableAutomaticUpdates": True,
                  "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"}}
        key = "windowsConfiguration"
    return {"computerName": vm.computer_name, "adminUsername": "azureadmin", key: config, "secrets": [],
            "allowExtensionOperations": True, "requireGuestProvisionSignal": True}


def _nic_row(estate: Estate, vm: VmPlan, nic_id: str, primary: bool, nsg: str | None,
             public_ip: str | None) -> Row:
    """One NIC of the VM; back-references use ARM's upper-case resource group, as real rows do."""
    ip_props: Row = {"provisioningState": "Succeeded", "privateIPAddress": vm.site.next_ip(vm.subnet),
                     "privateIPAllocationMethod": "Dynamic", "subnet": {"id": vm.site.subnet_id(vm.subnet)},
                     "primary": True, "privateIPAddressVersion": "IPv4"}
    if public_ip:
        ip_props["publicIPAddress"] = {"id": public_ip}
    props: Row = {"provisioningState": "Succeeded", "ipConfigurations": [
        {"name": "ipconfig1", "id": f"{nic_id}/ipConfigurations/ipconfig1", "properties": ip_props}]}
    if nsg:
        props["networkSecurityGroup"] = {"id": vm.site.nsg_id(nsg)}
    props.update(primary=primary, enableAcceleratedNetworking=vm.size != "Standard_B2ms", enableIPForwarding=False,
                 virtualMachine={"id": vm_id(vm.site.sub, vm.rg.upper(), vm.name)}, nicType="Standard")
    return arg_row(estate, nic_id, nic_id.rsplit("/", 1)[1], "microsoft.network/networkinterfaces", vm.site.sub,
                   vm.rg, vm.site.region, props)


def snapshot_type(vm: VmPlan) -> str:
    return "VMSnapshotLinux" if vm.os == "Linux" else "VMSnapshot"


def _snapshot_extension_row(estate: Estate, vm: VmPlan, state: str) -> Row:
    """Installed by the first backup; ARG shows major.minor only (`1.0` Linux, `1.9` Windows)."""
    name = snapshot_type(vm)
    return _extension_row(estate, vm, name, "Microsoft.Azure.RecoveryServices", name,
                          "1.0" if vm.os == "Linux" else "1.9", state)


def _monitor_extension_row(estate: Estate, vm: VmPlan) -> Row:
    name = f"AzureMonitor{vm.os}Agent"
    return _extension_row(estate, vm, name, "Microsoft.Azure.Monitor", name,
                          "1.33" if vm.os == "Linux" else "1.29", "Succeeded")


def _extension_row(estate: Estate, vm: VmPlan, name: str, publisher: str, ext_type: str, version: str,
                   state: str) -> Row:
    return arg_row(estate, f"{vm.id}/extensions/{name}", name, "microsoft.compute/virtualmachines/extensions",
                   vm.site.sub, vm.rg, vm.site.region, {
                       "publisher": publisher, "type": ext_type, "typeHandlerVersion": version,
                       "autoUpgradeMinorVersion": True, "provisioningState": state})


def _sql_row(estate: Estate, vm: VmPlan) -> Row:
    rid = (f"/subscriptions/{vm.site.sub}/resourceGroups/{vm.rg}"
           f"/providers/Microsoft.SqlVirtualMachine/sqlVirtualMachines/{vm.name}")
    return arg_row(estate, rid, vm.name, "microsoft.sqlvirtualmachine/sqlvirtualmachines", vm.site.sub, vm.rg,
                   vm.site.region, {"virtualMachineResourceId": vm.id, "provisioningState": "Succeeded",
                                    "sqlImageOffer": "SQL2019-WS2022", "sqlImageSku": "Enterprise",
                                    "sqlServerLicenseType": "AHUB" if vm.index % 2 else "PAYG",
                                    "sqlManagement": "Full"})


# --- backup items -----------------------------------------------------------------------------


def protected_item_rows(estate: Estate, vm: VmPlan) -> list[Row]:
    """The VM's protected item, and for a VM moved between vaults also the stopped item left in the
    old vault: before the active one for even VMs, after it for odd ones (row order must not matter)."""
    rows = [protected_item_row(estate, vm)]
    if vm.old_item:
        old = protected_item_row(estate, vm, vm.site.old_vault_id, "ProtectionStopped")
        rows.insert(0 if vm.index % 2 == 0 else 1, old)
    return rows


def protected_item_row(estate: Estate, vm: VmPlan, vault: str | None = None, state: str | None = None) -> Row:
    """As Compute_ProtectedItem_Get.json; sourceResourceId spelled as the vault happens to spell it.

    A stopped or soft-deleted item keeps its last backup but no longer names a policy; a soft-deleted
    one is `ProtectionStopped` in REST, `SoftDeleted` in Resource Graph's currentProtectionState.
    """
    container = f"iaasvmcontainerv2;{vm.rg.lower()};{vm.name}"
    vault = vault or vm.site.vault_id
    state = state or vm.protection_state
    rid = (f"{vault}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}"
           f"/protectedItems/VM;{container}")
    spec = POLICY_BY_NAME[vm.policy]
    props: Row = {"backupManagementType": "AzureIaasVM", "workloadType": "VM", "containerName": container,
                  "friendlyName": vm.name, "protectedItemType": "Microsoft.Compute/virtualMachines",
                  "sourceResourceId": spell(vm.id, vm.id_style), "virtualMachineId": vm.id}
    active = state in ("Protected", "ProtectionError")
    if active:
        props.update(policyId=vm.site.policy_id(vm.policy), policyName=vm.policy,
                     policyType="V2" if spec.version.startswith("V2") else "V1")
    if vm.last_backup is None and active:
        props.update(protectionState="IRPending", protectionStatus="Healthy", healthStatus="Passed")
    else:
        ok = vm.last_backup != "Failed"
        last = _backup_time(estate, spec)
        if not active:
            last -= timedelta(days=40)
        props.update(protectionState="ProtectionStopped" if state == "SoftDeleted" else state,
                     protectionStatus="Healthy" if ok else "Unhealthy",
                     healthStatus="Passed" if ok else "ActionRequired", lastBackupStatus=vm.last_backup or "Completed",
                     lastBackupTime=iso(last),
                     lastRecoveryPoint=iso(last if ok else last - timedelta(days=3)))
    if state == "SoftDeleted":
        props.update(currentProtectionState="SoftDeleted", isScheduledForDeferredDelete=True,
                     deferredDeleteTimeInUTC=iso(estate.collected_at - timedelta(days=2)))
    props["protectedItemDataId"] = str(10**17 + vm.index + (0 if vault == vm.site.vault_id else 5 * 10**16))
    return arg_row(estate, rid, f"VM;{container}",
                   "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems",
                   vm.site.sub, vm.site.backup_rg, vm.site.region, props)


def backup_hour_utc(spec: PolicySpec, at: datetime) -> int:
    """The UTC hour of the policy's (first) daily start, with the daylight saving in force at `at`."""
    zone = ZoneInfo(IANA_ZONES[spec.time_zone])
    day = at.astimezone(zone)
    local = datetime(day.year, day.month, day.day, spec.hour, spec.minute, tzinfo=zone)
    return local.astimezone(UTC).hour


def _backup_time(estate: Estate, spec: PolicySpec) -> datetime:
    """The latest scheduled run before collection, plus the minutes a snapshot takes."""
    day = estate.collected_at.replace(hour=0, minute=0)
    run = day + timedelta(hours=backup_hour_utc(spec, estate.collected_at), minutes=spec.minute + 17)
    return run if run < estate.collected_at else run - timedelta(days=1)


def _public_address(index: int) -> str:
    return f"20.{50 + index // 65536 % 200}.{index // 256 % 256}.{index % 256}"


# --- backup jobs ------------------------------------------------------------------------------

#: The error code of the failed backup job of a VM whose scenario breaks its backup (job_errors.json), by
#: scenario, else by the scenario's cause; a scenario without one fails with a numeric code and the
#: documented message (last-backup-failed: with no errorDetails at all, as a row may come).
JOB_ERRORS = {"agent-not-provisioned": "UserErrorGuestAgentStatusUnavailable",
              "agent-not-ready": "GuestAgentSnapshotTaskStatusError",
              "extension-handler-not-ready": "VMAgentStatusCommunicationError",
              "shut-down-in-guest": "UserErrorVmNotInDesirableState",
              "outbound-connectivity": "ExtensionSnapshotFailedNoNetwork",
              "backup-extension": "ExtensionOperationFailedForManagedDisks"}
JOB_MESSAGES = {"UserErrorGuestAgentStatusUnavailable": "VM Agent unable to communicate with Azure Backup",
                "GuestAgentSnapshotTaskStatusError": "Could not communicate with the VM agent for snapshot status",
                "VMAgentStatusCommunicationError": "VM has not reported status for VM agent or extensions.",
                "UserErrorVmNotInDesirableState": "VM is not in a state that allows backups.",
                "ExtensionSnapshotFailedNoNetwork":
                    "Snapshot operation failed due to no network connectivity on the virtual machine.",
                "ExtensionOperationFailedForManagedDisks": "VMSnapshot extension operation failed."}
JOB_TYPE = "microsoft.recoveryservices/vaults/backupjobs"
INTERNAL_ERROR = "Backup failed with an internal error - Please retry the operation in a few minutes."


def backup_job_rows(estate: Estate, vm: VmPlan, cause: str | None) -> list[Row]:
    """Backup job rows (ARG's 14 days) of an actively protected VM: one failing at its last backup after an
    older success when that backup failed; for fully observed healthy VMs an older failure that the last,
    completed backup made good. Even VMs name themselves by dataSourceId (spelled as the vault spells
    it), odd ones only by friendly name and container; the two rows come in either order."""
    if not vm.protected or vm.protection_state not in ("Protected", "ProtectionError"):
        return []
    last = _backup_time(estate, POLICY_BY_NAME[vm.policy])
    if vm.last_backup == "Failed":
        code = JOB_ERRORS.get(vm.scenario) or JOB_ERRORS.get(cause or "")
        rows = [_job_row(estate, vm, 0, last - timedelta(days=3), "Completed"),
                _job_row(estate, vm, 1, last, "Failed", code)]
    elif vm.scenario == "healthy-fully-observed":
        rows = [_job_row(estate, vm, 0, last - timedelta(days=2), "Failed", "GuestAgentSnapshotTaskStatusError"),
                _job_row(estate, vm, 1, last, "Completed")]
    else:
        return []
    return rows if vm.index % 2 else rows[::-1]


def _job_row(estate: Estate, vm: VmPlan, n: int, start: datetime, status: str, code: str | None = None) -> Row:
    guid = str(UUID(int=(vm.index + 1) << 8 | n, version=4))
    container = f"iaasvmcontainerv2;{vm.rg.lower()};{vm.name}"
    props: Row = {"jobType": "AzureIaaSVMJob", "backupManagementType": "AzureIaasVM", "operation": "Backup",
                  "status": status, "entityFriendlyName": vm.name, "containerName": container,
                  "activityId": guid, "isUserTriggered": False, "virtualMachineVersion": "Compute",
                  "startTime": iso(start), "endTime": iso(start + timedelta(minutes=38)), "duration": "PT38M"}
    if vm.index % 2 == 0:
        props["dataSourceId"] = spell(vm.id, vm.id_style)
    if status == "Failed" and vm.scenario != "last-backup-failed":
        props["errorDetails"] = [
            {"errorCode": code, "errorString": JOB_MESSAGES[code], "errorTitle": "",
             "recommendations": [f"See {code} in the Azure Backup troubleshooting guide."]} if code
            else {"errorCode": 400240, "errorString": INTERNAL_ERROR, "errorTitle": "", "recommendations": []}]
    return arg_row(estate, f"{vm.site.vault_id}/backupJobs/{guid}", guid, JOB_TYPE,
                   vm.site.sub, vm.site.backup_rg, vm.site.region, props)
