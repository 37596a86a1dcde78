"""What the VM agent reports about itself and about the backup extension, next to what ARM says.

Azure Backup installs VMSnapshot / VMSnapshotLinux at a VM's first backup. For years it has done so
through the platform: such an extension is no `virtualMachines/extensions` resource in ARM (nor in
the portal's list), while the guest agent still reports its handler in the Compute instance view.
So the extension is read from every source Azure offers: the ARM extension resource
(provisioningState), the agent's handler (`vmAgent.extensionHandlers[]`: status, full version) and
the instance view's `extensions[]` entry (its last operation's status code, level and message).
"""

from __future__ import annotations

import re
from typing import Any

from backup_preflight.estate.index import Reader, Row, row_name

BACKUP_PUBLISHER = "microsoft.azure.recoveryservices"
BACKUP_EXTENSION_TYPES = ("vmsnapshot", "vmsnapshotlinux")
#: The handler type the agent reports: publisher and type joined by a dot.
HANDLER_TYPES = tuple(f"{BACKUP_PUBLISHER}.{t}" for t in BACKUP_EXTENSION_TYPES)
#: Names of the sources, as `backupExtension.sources` and the evidence give them.
ARM, HANDLER, STATUS = "armExtension", "agentHandler", "extensionStatus"
#: protectionState / lastBackupStatus values that mean a backup has completed, so the extension was installed.
_BACKED_UP_STATES = ("protected",)
_BACKED_UP_RESULTS = ("completed", "completedwithwarnings")
_VERSION = re.compile(r"\d+(\.\d+)+")


def agent_facts(row: Row, view: dict[str, Any] | None, vm: Reader, iv: Reader) -> dict[str, Any]:
    """The guest agent: provisioning flag (osProfile), version and status (instance view), installed."""
    agent: dict[str, Any] = {}
    flag_source = ""
    for key in ("windowsConfiguration", "linuxConfiguration"):
        flag = vm.get(row, f"properties.osProfile.{key}.provisionVMAgent", "boolean", "agent.provisioned")
        if flag is not None:
            agent["provisioned"] = flag
            flag_source = f"osProfile.{key}.provisionVMAgent is {'true' if flag else 'false'}"
    vm_agent = iv.get(view, "vmAgent", "object", "agent.version") if view is not None else None
    if vm_agent is None and iv.unreadable("agent.version"):  # nothing the instance view says of the agent is known
        for fact in ("agent.status", "agent.statusMessage"):
            iv.reasons.setdefault(fact, iv.reasons["agent.version"])
    if vm_agent is not None:
        version = iv.get(vm_agent, "vmAgentVersion", "string", "agent.version")
        if version is not None:
            agent["version"] = version
        status = _first_status(iv, vm_agent, "agent.status")
        for key, fact in (("displayStatus", "status"), ("message", "statusMessage")):
            value = iv.get(status, key, "string", f"agent.{fact}") if status is not None else None
            if value is not None:
                agent[fact] = value
    # An agent reporting a version in the instance view is installed, whatever provisionVMAgent says: the flag
    # is set once, at creation, and an agent installed by hand later leaves it false. Without such a report the
    # flag says it; a VM without the flag (from a specialized disk: no osProfile) then is unknown, as is one whose
    # flag is false while the instance view's agent version cannot be read (it may report one).
    reported = _VERSION.fullmatch(agent.get("version", ""))
    if reported is None and agent.get("provisioned") is False and iv.unreadable("agent.version"):
        iv.reasons.setdefault("agent.installed", iv.reasons["agent.version"])
    elif agent.get("provisioned") is True or (reported is None and "provisioned" in agent):
        agent["installed"] = agent["provisioned"]
        agent["installedFrom"] = flag_source
    elif reported is not None:
        agent["installed"] = True
        agent["installedFrom"] = (f"{flag_source or 'no provisionVMAgent'}; the instance view's agent reports "
                                  f"version {agent['version']}")
    return agent


def backup_extension_facts(rows: list[Row], view: dict[str, Any] | None, iv: Reader,
                           backup: dict[str, Any] | None, reasons: dict[str, str]) -> dict[str, Any]:
    """VMSnapshot / VMSnapshotLinux from the ARM resource, the agent's handler and the extension status."""
    facts: dict[str, Any] = {}
    sources: list[str] = []
    failures: list[tuple[str, str]] = []
    states = 0
    arm = next((r for r in rows if _is_backup_extension(r)), None)
    if arm is not None:
        sources.append(ARM)
        reader = Reader("resources", arm["id"], reasons)
        facts["name"] = row_name(arm)
        facts["type"] = arm["properties"]["type"]
        state = reader.get(arm, "properties.provisioningState", "string", "backupExtension.provisioningState")
        if state is not None:
            facts["provisioningState"] = state
            states += 1
            if state.lower() == "failed":
                failures.append((ARM, f"the ARM extension resource is in provisioningState {state}"))
    vm_agent = iv.get(view, "vmAgent", "object") if view is not None else None
    handler, handlers_unread = _entry(iv, view, "vmAgent.extensionHandlers")  # a vmAgent of another type is unread
    if handlers_unread:
        for fact in ("backupExtension.handlerStatus", "backupExtension.handlerVersion"):
            reasons.setdefault(fact, handlers_unread)
    if handler is not None:
        sources.append(HANDLER)
        facts.setdefault("type", _short_type(handler["type"]))
        version = iv.get(handler, "typeHandlerVersion", "string", "backupExtension.handlerVersion")
        if version is not None:
            facts["handlerVersion"] = version
        status = iv.get(handler, "status", "object", "backupExtension.handlerStatus")
        if status is not None:
            states += _read_status(iv, status, "handler", "the agent's handler", facts, failures)
    entry, statuses_unread = _entry(iv, view, "extensions")
    if statuses_unread:
        reasons.setdefault("backupExtension.statusCode", statuses_unread)
    unread = handlers_unread or statuses_unread  # a list that may hold the extension, or its failure, unread
    if entry is not None:
        sources.append(STATUS)
        facts.setdefault("type", _short_type(entry["type"]))
        name = iv.get(entry, "name", "string")
        if name is not None:
            facts.setdefault("name", name)
        status = _first_status(iv, entry, "backupExtension.statusCode")
        if status is not None:
            states += _read_status(iv, status, "status", "the instance view's extension status", facts, failures)
    if sources:
        facts["installed"] = True
        facts["sources"] = sources
        if failures:
            facts.update(failed=True, failedSource=", ".join(s for s, _ in failures),
                         failure="; ".join(text for _, text in failures))
        elif unread:
            reasons.setdefault("backupExtension.failed", unread)
        elif states:
            facts["failed"] = False
        if handler is None and vm_agent is not None and not handlers_unread:
            said = iv.say(f"the VM agent reports no backup extension handler; only {' and '.join(sources)} show it")
            for fact in ("backupExtension.handlerStatus", "backupExtension.handlerVersion"):
                reasons.setdefault(fact, said)
        return facts
    if unread:
        reasons.setdefault("backupExtension.installed", unread)
        return facts
    if vm_agent is None:  # the agent's handlers were not collected
        reasons.setdefault("backupExtension.installed", (
            "no instance view of the VM with the VM agent's handlers was collected, and ARM has no "
            "backup extension resource"))
        return facts
    if backup is None:
        reasons["backupExtension.installed"] = iv.say(
            "the VM agent reports no backup extension handler, and recoveryservicesresources was not "
            "collected: whether a completed backup installed the extension is unknown")
    elif _backed_up(backup):
        reasons["backupExtension.installed"] = iv.say(
            "the VM agent reports no backup extension handler although the VM has completed a backup "
            f"({_backup_state(backup)}): the agent stopped reporting it")
    else:
        facts["installed"] = False  # Azure Backup installs it at the first backup, which has not run yet
    return facts


def _read_status(iv: Reader, status: dict[str, Any], prefix: str, source: str, facts: dict[str, Any],
                 failures: list[tuple[str, str]]) -> int:
    """Copy a status object's code, level, display status and message; note it when it says failed.
    Returns 1 when the status says something about success or failure (a code or a level)."""
    names = {"code": f"{prefix}Code", "level": f"{prefix}Level", "message": f"{prefix}Message",
             "displayStatus": "handlerStatus" if prefix == "handler" else "statusDisplay"}
    values = {}
    for key, name in names.items():
        values[key] = iv.get(status, key, "string", f"backupExtension.{name}")
        if values[key] is not None:
            facts[name] = values[key]
    code, level, display, message = (values[k] for k in ("code", "level", "displayStatus", "message"))
    if (level or "").lower() == "error" or "failed" in (code or "").lower().split("/"):
        said = f"{source} reports {code or display or level} (level {level or 'not given'})"
        failures.append((HANDLER if prefix == "handler" else STATUS, said + (f": {message}" if message else "")))
    return 1 if code is not None or level is not None else 0


def _entry(iv: Reader, holder: dict[str, Any] | None, path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The backup extension's entry in an instance view list (handlers or extensions), by type; and, when the
    list is there but not a list, why it could not be read (it may hold the extension: nothing is concluded)."""
    if holder is None:
        return None, None
    why: dict[str, str] = {}
    items = Reader(iv.table, iv.row_id, why).get(holder, path, "array", path)
    if path in why:
        return None, why[path]
    for item in items or ():
        if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"].lower() in HANDLER_TYPES:
            return item, None
    return None, None


def _first_status(iv: Reader, holder: dict[str, Any], fact: str) -> dict[str, Any] | None:
    statuses = iv.get(holder, "statuses", "array", fact)
    return next((s for s in statuses or () if isinstance(s, dict)), None)


def _is_backup_extension(row: Row) -> bool:
    p = row.get("properties")
    return (isinstance(p, dict) and isinstance(p.get("publisher"), str) and isinstance(p.get("type"), str)
            and p["publisher"].lower() == BACKUP_PUBLISHER and p["type"].lower() in BACKUP_EXTENSION_TYPES)


def _short_type(handler_type: str) -> str:
    """`Microsoft.Azure.RecoveryServices.VMSnapshotLinux` → `VMSnapshotLinux`."""
    return handler_type.rsplit(".", 1)[-1]


def _backed_up(backup: dict[str, Any]) -> bool:
    return (str(backup.get("protectionState", "")).lower() in _BACKED_UP_STATES
            or str(backup.get("lastBackupStatus", "")).lower() in _BACKED_UP_RESULTS)


def _backup_state(backup: dict[str, Any]) -> str:
    parts = [f"{key} {backup[key]}" for key in ("protectionState", "lastBackupStatus") if key in backup]
    return ", ".join(parts)
