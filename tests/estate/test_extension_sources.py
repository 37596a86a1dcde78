"""The backup extension as Azure installs it today: judged from the agent's handler, the instance view's
extension status and, on older VMs, the ARM extension resource (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight import snapshot
from backup_preflight.estate import build_estate
from backup_preflight.findings import Finding
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies

from arg import (
    backup_handler,
    backup_policy_v1,
    extension_row,
    instance_view,
    protected_item,
    snapshot_doc,
    vm_row,
)

EXT = ("VMBK-EXT-001", "VMBK-EXT-002", "VMBK-EXT-003")
FAILED = ("ProvisioningState/failed/1", "Error", "ExtensionOperationFailed: snapshot did not complete")
SUCCEEDED = ("ProvisioningState/succeeded", "Info", "Enable succeeded")


def judge(doc: dict[str, Any], policies: tuple[str, ...] = EXT) -> dict[tuple[str, str], Finding]:
    loaded = load_policies([bundled_policy_dir()])
    loaded.policies = [p for p in loaded.policies if p.id in policies]
    estate = build_estate(snapshot.from_document(doc, "t"))
    return {(f.policy_id, f.resource_name): f for f in evaluate(loaded, estate.vms)}


def protected(vm: dict[str, Any], state: str = "Protected", last: str | None = "Completed") -> list[dict[str, Any]]:
    """The VM's protected item (and its policy), in the given protectionState and lastBackupStatus."""
    policy = backup_policy_v1()
    item = protected_item(vm["id"], policy["id"])
    item["properties"]["protectionState"] = state
    if last is None:
        del item["properties"]["lastBackupStatus"]
    else:
        item["properties"]["lastBackupStatus"] = last
    return [item, policy]


def statuses(found: dict[tuple[str, str], Finding], vm: str) -> tuple[str, ...]:
    return tuple(found[(p, vm)].status for p in EXT)


def test_handler_only_is_installed_and_judged() -> None:
    vm = vm_row("vm1")
    view = backup_handler(instance_view(vm["id"]), extension=SUCCEEDED)
    doc = snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=protected(vm))
    facts = build_estate(snapshot.from_document(doc, "t")).vms[0]["backupExtension"]
    assert facts["installed"] is True and facts["sources"] == ["agentHandler", "extensionStatus"]
    assert facts["failed"] is False and facts["type"] == "VMSnapshotLinux" and facts["name"] == "VMSnapshotLinux"
    assert "provisioningState" not in facts
    assert statuses(judge(doc), "vm1") == ("pass", "pass", "pass")


@pytest.mark.parametrize(("handler", "extension", "source"), [
    ({"status": "Not Ready", "code": "ProvisioningState/failed/-2146233087", "level": "Error",
      "message": "Enable failed"}, None, "agentHandler"),
    ({"status": "Ready"}, FAILED, "extensionStatus"),
    ({"status": "Not Ready", "code": "ProvisioningState/Failed", "level": "Warning"}, FAILED,
     "agentHandler, extensionStatus"),
])
def test_handler_only_failures_fail(handler: dict[str, str], extension: tuple[str, str, str] | None,
                                    source: str) -> None:
    vm = vm_row("vm1", os="Windows")
    view = backup_handler(instance_view(vm["id"]), linux=False, extension=extension, **handler)
    found = judge(snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=protected(vm)))
    failed = found[("VMBK-EXT-001", "vm1")]
    assert failed.status == "fail"
    assert f"({source})" in failed.message and "VMSnapshot on vm1" in failed.message
    if extension:
        assert "ExtensionOperationFailed" in failed.message


def test_level_error_alone_is_a_failure_and_a_warning_is_not() -> None:
    vms = [vm_row("err"), vm_row("warn")]
    views = [backup_handler(instance_view(vms[0]["id"]), code="ProvisioningState/transitioning", level="Error"),
             backup_handler(instance_view(vms[1]["id"]), status="Not Ready", code="ProvisioningState/Unavailable",
                            level="Warning")]
    found = judge(snapshot_doc(vms, instanceviews=views, recoveryservicesresources=[]))
    assert statuses(found, "err") == ("fail", "pass", "pass")
    assert statuses(found, "warn") == ("pass", "fail", "pass")


def test_arm_row_only_fails_from_its_provisioning_state_and_the_handler_is_unknown() -> None:
    vm = vm_row("old")
    rows = [vm, extension_row(vm["id"], state="Failed")]
    found = judge(snapshot_doc(rows, instanceviews=[instance_view(vm["id"])], recoveryservicesresources=protected(vm)))
    assert statuses(found, "old") == ("fail", "unknown", "unknown")
    assert "(armExtension)" in found[("VMBK-EXT-001", "old")].message
    reason = found[("VMBK-EXT-002", "old")].message
    assert "reports no backup extension handler; only armExtension show it" in reason
    assert "the VM's instanceviews row: " in reason and vm["id"] not in reason  # groupable: no VM id
    assert "reports no backup extension handler" in found[("VMBK-EXT-003", "old")].message


def test_both_sources_agree_on_one_extension() -> None:
    vm = vm_row("both")
    view = backup_handler(instance_view(vm["id"]), version="1.0.9152.0", extension=SUCCEEDED)
    doc = snapshot_doc([vm, extension_row(vm["id"])], instanceviews=[view], recoveryservicesresources=[])
    facts = build_estate(snapshot.from_document(doc, "t")).vms[0]["backupExtension"]
    assert facts["sources"] == ["armExtension", "agentHandler", "extensionStatus"]
    assert (facts["provisioningState"], facts["handlerVersion"], facts["failed"]) == ("Succeeded", "1.0.9152.0", False)
    assert statuses(judge(doc), "both") == ("pass", "pass", "pass")


@pytest.mark.parametrize(("backup", "expected"), [
    ("unprotected", ("notApplicable",) * 3),
    ("first-backup-pending", ("notApplicable",) * 3),
    ("first-backup-failed", ("notApplicable",) * 3),
    ("completed", ("unknown",) * 3),
    ("last-failed-after-completed", ("unknown",) * 3),
    ("not-collected", ("unknown",) * 3),
])
def test_agent_reporting_no_backup_handler(backup: str, expected: tuple[str, ...]) -> None:
    vm = vm_row("vm1")
    items = {"unprotected": [], "first-backup-pending": protected(vm, "IRPending", None),
             "first-backup-failed": protected(vm, "IRPending", "Failed"),
             "completed": protected(vm), "last-failed-after-completed": protected(vm, "Protected", "Failed"),
             "not-collected": None}[backup]
    found = judge(snapshot_doc([vm], instanceviews=[instance_view(vm["id"])], recoveryservicesresources=items))
    assert statuses(found, "vm1") == expected
    if expected[0] == "unknown":
        message = found[("VMBK-EXT-002", "vm1")].message
        assert "the VM's instanceviews row: the VM agent reports no backup extension handler" in message
        if backup != "not-collected":
            assert "stopped reporting it" in message and "protectionState Protected" in message


def test_not_running_is_not_applicable_and_no_instance_view_is_unknown() -> None:
    vms = [vm_row("off", power="PowerState/deallocated"), vm_row("stopped", power="PowerState/stopped"),
           vm_row("noview")]
    found = judge(snapshot_doc(vms, recoveryservicesresources=[]))
    assert statuses(found, "off") == statuses(found, "stopped") == ("notApplicable",) * 3
    assert statuses(found, "noview") == ("unknown",) * 3


def test_handler_type_is_matched_case_insensitively_and_other_handlers_ignored() -> None:
    vm = vm_row("vm1")
    view = instance_view(vm["id"], handler=("MICROSOFT.AZURE.RECOVERYSERVICES.VMSNAPSHOTLINUX", "1.0.90.0",
                                            "Ready"))
    found = judge(snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=[]))
    assert statuses(found, "vm1") == ("pass", "pass", "fail")
    assert "1.0.90.0" in found[("VMBK-EXT-003", "vm1")].message
    other = vm_row("vm2")  # the real example's IaaSAntimalware handler is no backup extension
    found = judge(snapshot_doc([other], instanceviews=[instance_view(other["id"])], recoveryservicesresources=[]))
    assert statuses(found, "vm2") == ("notApplicable",) * 3


def test_wrong_types_in_the_handler_are_unknown_with_the_row_named() -> None:
    vm = vm_row("vm1")
    view = backup_handler(instance_view(vm["id"]))
    handler = view["instanceView"]["vmAgent"]["extensionHandlers"][-1]
    handler["typeHandlerVersion"] = 1.0
    handler["status"] = "Ready"
    found = judge(snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=[]))
    assert statuses(found, "vm1") == ("unknown", "unknown", "unknown")
    version = found[("VMBK-EXT-003", "vm1")].message
    assert "the VM's instanceviews row: typeHandlerVersion is a number, expected a string" in version
    assert "status is a string, expected an object" in found[("VMBK-EXT-002", "vm1")].message


# --- every combination against a plain oracle -----------------------------------------------------

CODES = ("ProvisioningState/succeeded", "ProvisioningState/failed/1", "ProvisioningState/Failed",
         "ProvisioningState/transitioning", "ProvisioningState/Unavailable")
LEVELS = ("Info", "Warning", "Error")
BACKUPS = ("not-collected", "unprotected", "pending", "completed")


def oracle(running: bool, view: bool, arm: str | None, handler: tuple[str, str] | None,
           status: tuple[str, str] | None, backup: str) -> str:
    """VMBK-EXT-001 as issue 15 states it, written out case by case."""
    if not running:
        return "notApplicable"
    shown = [s for s in ((handler, status) if view else ()) if s is not None]
    if arm is None and not shown:
        if not view or backup in ("not-collected", "completed"):
            return "unknown"
        return "notApplicable"
    if arm == "Failed":
        return "fail"
    for code, level in shown:
        if level == "Error" or code.lower().startswith("provisioningstate/failed"):
            return "fail"
    return "pass"


@given(running=st.booleans(), view=st.booleans(), arm=st.sampled_from((None, "Succeeded", "Failed", "Updating")),
       handler=st.none() | st.tuples(st.sampled_from(CODES), st.sampled_from(LEVELS)),
       status=st.none() | st.tuples(st.sampled_from(CODES), st.sampled_from(LEVELS)),
       backup=st.sampled_from(BACKUPS))
@settings(max_examples=300, deadline=None)
def test_extension_failed_state_agrees_with_the_oracle(running: bool, view: bool, arm: str | None,
                                                        handler: tuple[str, str] | None,
                                                        status: tuple[str, str] | None, backup: str) -> None:
    vm = vm_row("vm1", power="PowerState/running" if running else "PowerState/deallocated")
    rows = [vm] + ([extension_row(vm["id"], state=arm)] if arm else [])
    views = None
    if view:
        row = instance_view(vm["id"])
        if handler:
            backup_handler(row, code=handler[0], level=handler[1])
        if status:
            full = "Microsoft.Azure.RecoveryServices.VMSnapshotLinux"
            row["instanceView"]["extensions"].append({"name": "VMSnapshotLinux", "type": full, "statuses": [
                {"code": status[0], "level": status[1], "displayStatus": "x"}]})
        views = [row]
    items = {"not-collected": None, "unprotected": [], "pending": protected(vm, "IRPending", None),
             "completed": protected(vm)}[backup]
    found = judge(snapshot_doc(rows, instanceviews=views, recoveryservicesresources=items), ("VMBK-EXT-001",))
    assert found[("VMBK-EXT-001", "vm1")].status == oracle(running, view, arm, handler, status, backup)


def test_every_source_reporting_a_failure_gives_the_whole_record() -> None:
    vm = vm_row("vm1", os="Windows")
    view = backup_handler(instance_view(vm["id"]), linux=False, version="1.0.9200.0", status="Not Ready",
                          code="ProvisioningState/failed/-2146233087", level="Error", message="Enable failed",
                          extension=FAILED)
    doc = snapshot_doc([vm, extension_row(vm["id"].lower(), "VMSnapshot", "Failed")], instanceviews=[view])
    f = build_estate(snapshot.from_document(doc, "t")).vms[0]
    assert f["backupExtension"] == {
        "installed": True, "sources": ["armExtension", "agentHandler", "extensionStatus"],
        "name": "VMSnapshot", "type": "VMSnapshot", "provisioningState": "Failed",
        "handlerVersion": "1.0.9200.0", "handlerStatus": "Not Ready", "handlerLevel": "Error",
        "handlerCode": "ProvisioningState/failed/-2146233087", "handlerMessage": "Enable failed",
        "statusCode": "ProvisioningState/failed/1", "statusLevel": "Error", "statusDisplay": "Provisioning failed",
        "statusMessage": "ExtensionOperationFailed: snapshot did not complete",
        "failed": True, "failedSource": "armExtension, agentHandler, extensionStatus",
        "failure": "the ARM extension resource is in provisioningState Failed; the agent's handler reports "
                   "ProvisioningState/failed/-2146233087 (level Error): Enable failed; the instance view's extension "
                   "status reports ProvisioningState/failed/1 (level Error): ExtensionOperationFailed: snapshot did "
                   "not complete"}
    assert "unknownReasons" not in f


@pytest.mark.parametrize(("status", "failure"), [
    ({"level": "Error", "displayStatus": "Not Ready"}, "the agent's handler reports Not Ready (level Error)"),
    ({"level": "Error"}, "the agent's handler reports Error (level Error)"),
    ({"code": "ProvisioningState/Failed"}, "the agent's handler reports ProvisioningState/Failed (level not given)"),
    ({"code": "provisioningstate/failed", "level": "Info", "message": "timed out"},
     "the agent's handler reports provisioningstate/failed (level Info): timed out"),
])
def test_a_failure_is_named_by_what_the_status_has(status: dict[str, str], failure: str) -> None:
    vm = vm_row("vm1")
    view = instance_view(vm["id"])
    view["instanceView"]["vmAgent"]["extensionHandlers"].append(
        {"type": "Microsoft.Azure.RecoveryServices.VMSnapshotLinux", "typeHandlerVersion": "1.0", "status": status})
    f = build_estate(snapshot.from_document(snapshot_doc([vm], instanceviews=[view]), "t")).vms[0]["backupExtension"]
    assert (f["failed"], f["failedSource"], f["failure"]) == (True, "agentHandler", failure)


@pytest.mark.parametrize(("status", "failed"), [
    ({"displayStatus": "Not Ready"}, None),  # neither code nor level: success or failure is not said
    ({"code": "ProvisioningState/transitioning"}, False), ({"level": "Warning"}, False),
    ({"code": "ProvisioningState/failedover"}, False),  # 'failed' is a whole segment of the code, not a prefix
])
def test_a_status_without_a_failure_is_failed_false_only_when_it_says_something(status: dict[str, str],
                                                                                 failed: bool | None) -> None:
    vm = vm_row("vm1")
    view = instance_view(vm["id"])
    view["instanceView"]["extensions"].append(
        {"name": "VMSnapshotLinux", "type": "microsoft.azure.recoveryservices.vmsnapshotlinux",
         "statuses": ["not a status", status]})
    f = build_estate(snapshot.from_document(snapshot_doc([vm], instanceviews=[view]), "t")).vms[0]
    assert f["backupExtension"].get("failed") is failed
    assert f["backupExtension"]["sources"] == ["extensionStatus"]
    assert f["unknownReasons"]["backupExtension.handlerStatus"] == (
        "the VM's instanceviews row: the VM agent reports no backup extension handler; only extensionStatus "
        "show it")


@pytest.mark.parametrize(("state", "last", "installed", "said"), [
    ("ProtectionError", "Completed", None, "protectionState ProtectionError, lastBackupStatus Completed"),
    ("IRPending", "CompletedWithWarnings", None, "protectionState IRPending, lastBackupStatus CompletedWithWarnings"),
    ("Protected", None, None, "protectionState Protected"),
    ("IRPending", "Failed", False, ""),
])
def test_a_completed_backup_by_either_field_means_the_agent_stopped_reporting_the_handler(
        state: str, last: str | None, installed: bool | None, said: str) -> None:
    vm = vm_row("vm1")
    doc = snapshot_doc([vm], instanceviews=[instance_view(vm["id"])],
                       recoveryservicesresources=protected(vm, state, last))
    f = build_estate(snapshot.from_document(doc, "t")).vms[0]
    assert f["backupExtension"].get("installed") is installed
    if installed is None:
        assert f["unknownReasons"]["backupExtension.installed"] == (
            "the VM's instanceviews row: the VM agent reports no backup extension handler although the VM has "
            f"completed a backup ({said}): the agent stopped reporting it")


def _broken(view_row: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """The instance view with its handlers (`vmAgent.extensionHandlers`) or its `extensions` list replaced."""
    holder = view_row["instanceView"]["vmAgent"] if where == "extensionHandlers" else view_row["instanceView"]
    holder[where] = value
    return view_row


def test_an_unreadable_extensions_list_leaves_failed_unknown_beside_an_arm_row_and_a_ready_handler() -> None:
    """CI's type-safety property test drew this. ARM's row and the agent's handler show the extension, so it
    is installed; the failure would be in the extensions list, which is not a list: failed is unknown, not
    false, and the reason names the list (it was given to `installed`, whose value is known)."""
    vm = vm_row("vm1")
    view = _broken(backup_handler(instance_view(vm["id"])), "extensions", {"value": []})
    doc = snapshot_doc([vm, extension_row(vm["id"])], instanceviews=[view], recoveryservicesresources=protected(vm))
    f = build_estate(snapshot.from_document(doc, "t")).vms[0]
    said = "the VM's instanceviews row: extensions is an object, expected an array"
    assert f["backupExtension"]["installed"] is True and "failed" not in f["backupExtension"]
    assert f["unknownReasons"] == {"backupExtension.failed": said, "backupExtension.statusCode": said}
    assert statuses(judge(doc), "vm1") == ("unknown", "pass", "pass")


def test_an_unreadable_handler_list_leaves_the_handler_facts_unknown_but_not_the_arm_row() -> None:
    vm = vm_row("vm1")
    view = _broken(instance_view(vm["id"]), "extensionHandlers", 7)
    doc = snapshot_doc([vm, extension_row(vm["id"])], instanceviews=[view], recoveryservicesresources=protected(vm))
    f = build_estate(snapshot.from_document(doc, "t")).vms[0]
    said = "the VM's instanceviews row: vmAgent.extensionHandlers is a number, expected an array"
    assert f["backupExtension"]["installed"] is True and "failed" not in f["backupExtension"]
    assert f["unknownReasons"] == {"backupExtension.failed": said, "backupExtension.handlerStatus": said,
                                   "backupExtension.handlerVersion": said}
    assert statuses(judge(doc), "vm1") == ("unknown", "unknown", "unknown")


def test_a_failure_in_a_readable_list_is_a_failure_beside_an_unreadable_one() -> None:
    vm = vm_row("vm1")
    view = _broken(backup_handler(instance_view(vm["id"]), code="ProvisioningState/failed", level="Error"),
                   "extensions", "broken")
    f = build_estate(snapshot.from_document(snapshot_doc([vm], instanceviews=[view]), "t")).vms[0]
    assert f["backupExtension"]["failed"] is True and "backupExtension.failed" not in f["unknownReasons"]


@pytest.mark.parametrize("where", ["extensionHandlers", "extensions"])
def test_with_no_source_an_unreadable_list_leaves_installed_unknown_even_before_the_first_backup(where: str) -> None:
    """Before the first backup a VM without the extension is `installed: false`, unless a list that would show it
    could not be read: then installed is unknown, for that reason (not "the agent reports no handler")."""
    vm = vm_row("vm1")
    view = _broken(instance_view(vm["id"]), where, {"oops": True})
    doc = snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=protected(vm, "IRPending", "Failed"))
    f = build_estate(snapshot.from_document(doc, "t")).vms[0]
    field = "vmAgent.extensionHandlers" if where == "extensionHandlers" else "extensions"
    assert "installed" not in f["backupExtension"]
    assert f["unknownReasons"]["backupExtension.installed"] == (
        f"the VM's instanceviews row: {field} is an object, expected an array")
    readable = build_estate(snapshot.from_document(
        snapshot_doc([vm], instanceviews=[instance_view(vm["id"])],
                     recoveryservicesresources=protected(vm, "IRPending", "Failed")), "t")).vms[0]
    assert readable["backupExtension"]["installed"] is False


def _facts(doc: dict[str, Any]) -> dict[str, Any]:
    return build_estate(snapshot.from_document(doc, "t")).vms[0]


def test_a_vm_agent_that_is_no_object_leaves_installed_unknown_for_that_reason() -> None:
    """Collected but unreadable is not "no instance view was collected": the reason names the field."""
    vm = vm_row("vm1")
    view = instance_view(vm["id"])
    view["instanceView"]["vmAgent"] = "Ready"
    f = _facts(snapshot_doc([vm], instanceviews=[view], recoveryservicesresources=protected(vm)))
    assert "installed" not in f["backupExtension"]
    assert f["unknownReasons"]["backupExtension.installed"] == (
        "the VM's instanceviews row: vmAgent is a string, expected an object")


def test_reasons_name_the_arm_row_and_the_status_list_that_cannot_be_read() -> None:
    vm = vm_row("vm1")
    arm = extension_row(vm["id"])
    arm["properties"]["provisioningState"] = ["Succeeded"]
    view = instance_view(vm["id"])
    view["instanceView"]["extensions"].append(
        {"name": "VMSnapshotLinux", "type": "Microsoft.Azure.RecoveryServices.VMSnapshotLinux", "statuses": 5})
    f = _facts(snapshot_doc([vm, arm], instanceviews=[view]))
    assert f["unknownReasons"]["backupExtension.provisioningState"] == (
        f"resources row {arm['id']}: properties.provisioningState is an array, expected a string")
    assert f["unknownReasons"]["backupExtension.statusCode"] == (
        "the VM's instanceviews row: statuses is a number, expected an array")
    assert f["unknownReasons"]["backupExtension.handlerStatus"] == (
        "the VM's instanceviews row: the VM agent reports no backup extension handler; only armExtension and "
        "extensionStatus show it")
    assert f["backupExtension"]["type"] == "VMSnapshotLinux" and "failed" not in f["backupExtension"]


def test_the_extension_status_alone_names_the_type_and_any_source_with_a_state_settles_failed() -> None:
    """A state from ARM is not undone by a handler status that has only a display text."""
    vm = vm_row("vm1")
    view = instance_view(vm["id"])
    view["instanceView"]["extensions"].append(
        {"name": "VMSnapshotLinux", "type": "Microsoft.Azure.RecoveryServices.VMSnapshotLinux",
         "statuses": [{"displayStatus": "Provisioning succeeded"}]})
    alone = _facts(snapshot_doc([vm], instanceviews=[view]))["backupExtension"]
    assert alone["type"] == "VMSnapshotLinux" and alone["sources"] == ["extensionStatus"]
    assert "failed" not in alone  # no code and no level: nothing says whether it failed
    shown = backup_handler(instance_view(vm["id"]))
    shown["instanceView"]["vmAgent"]["extensionHandlers"][-1]["status"] = {"displayStatus": "Ready"}
    shown["instanceView"]["extensions"] = view["instanceView"]["extensions"]
    with_arm = _facts(snapshot_doc([vm, extension_row(vm["id"])], instanceviews=[shown]))["backupExtension"]
    assert with_arm["sources"] == ["armExtension", "agentHandler", "extensionStatus"]
    assert with_arm["failed"] is False


def test_the_reasons_for_an_unknown_extension_say_what_was_not_collected() -> None:
    """Two reasons a report quotes word for word: no instance view (and no ARM row), and an agent reporting no
    handler while the backup tables, which would say whether a first backup ran, were not collected."""
    vm = vm_row("vm1")
    none = _facts(snapshot_doc([vm]))
    assert none["unknownReasons"]["backupExtension.installed"] == (
        "no instance view of the VM with the VM agent's handlers was collected, and ARM has no backup extension "
        "resource")
    bare = _facts(snapshot_doc([vm], instanceviews=[instance_view(vm["id"])], recoveryservicesresources=None))
    assert bare["unknownReasons"]["backupExtension.installed"] == (
        "the VM's instanceviews row: the VM agent reports no backup extension handler, and recoveryservicesresources "
        "was not collected: whether a completed backup installed the extension is unknown")
