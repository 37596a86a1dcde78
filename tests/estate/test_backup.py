"""Backup protection states and schedule slots, from Resource Graph shaped rows.

Daylight saving is checked against an independent oracle: zoneinfo with IANA names written out
here (not the production Windows-name mapping), and hand-computed offsets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backup_preflight import scan, snapshot
from backup_preflight.estate import build_estate
from backup_preflight.estate.backup import WEEKDAYS as WEEK
from backup_preflight.estate.backup import schedule_facts
from backup_preflight.policy.engine import evaluate
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.policy.parameters import parse_cli_params
from backup_preflight.results import Gate

from arg import backup_policy_v1, backup_policy_v2, protected_item, snapshot_doc, vm_row

# Windows zone -> IANA zone, written out independently of tzlocal's table.
IANA = {"UTC": "UTC", "GMT Standard Time": "Europe/London", "W. Europe Standard Time": "Europe/Berlin",
        "Romance Standard Time": "Europe/Paris", "Pacific Standard Time": "America/Los_Angeles",
        "AUS Eastern Standard Time": "Australia/Sydney", "E. South America Standard Time": "America/Sao_Paulo",
        "India Standard Time": "Asia/Kolkata"}
JANUARY = "2026-01-15T06:00:00Z"
JULY = "2026-07-15T06:00:00Z"


def item(vm: dict[str, Any], policy: dict[str, Any], *, vault: str = "rsv-a", **props: Any) -> dict[str, Any]:
    row = protected_item(vm["id"], policy["id"])
    row["id"] = row["id"].replace("PySDKBackupTestRsVault", vault)
    row["properties"].update(props)
    return row


def backup_of(doc: dict[str, Any], now: datetime | None = None) -> dict[str, dict[str, Any]]:
    return {f["name"]: f["backup"] for f in build_estate(snapshot.from_document(doc, "t"), now).vms}


def doc_at(collected_at: str | None, vms: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    doc = snapshot_doc(vms, recoveryservicesresources=rows)
    if collected_at is None:
        del doc["collectedAt"]
    else:
        doc["collectedAt"] = collected_at
    return doc


def judge(doc: dict[str, Any], policy_id: str, params: list[str] | None = None) -> dict[str, Any]:
    policies = load_policies([bundled_policy_dir()], parse_cli_params(params or []))
    policies.policies = [p for p in policies.policies if p.id == policy_id]
    return {f.resource_name: f for f in evaluate(policies, build_estate(snapshot.from_document(doc, "t")).vms)}


# --- protection states ------------------------------------------------------------------------


@pytest.mark.parametrize(("state_props", "protected", "named"), [
    ({"protectionState": "Protected"}, True, ""),
    ({"protectionState": "IRPending"}, True, ""),
    ({"protectionState": "ProtectionError"}, True, ""),  # still scheduled, failing: PROT-002's business
    ({"protectionState": "Protected", "currentProtectionState": "ProtectionConfigured"}, True, ""),
    ({"protectionState": "ProtectionStopped"}, False, "ProtectionStopped"),
    ({"protectionState": "ProtectionPaused"}, False, "ProtectionPaused"),
    ({"protectionState": "BackupsSuspended"}, False, "BackupsSuspended"),
    ({"protectionState": "Protected", "currentProtectionState": "ProtectionStopped"}, False, "ProtectionStopped"),
    ({"protectionState": "ProtectionStopped", "currentProtectionState": "SoftDeleted"}, False, "SoftDeleted"),
    ({"protectionState": "Protected", "isScheduledForDeferredDelete": True}, False, "SoftDeleted"),
    ({"currentProtectionState": "ConfiguringProtectionFailed", "protectionState": None}, False,
     "ConfiguringProtectionFailed"),
    ({"protectionState": "Protected", "currentProtectionState": "SoftDeleting"}, False, "SoftDeleting"),
    ({"protectionState": "Protected", "currentProtectionState": "UpdatingProtection"}, True, ""),
    ({"protectionState": "SomethingNew"}, None, ""),
    # a Backup vault state no document says backups run in: not counted as protecting
    ({"protectionState": "Protected", "currentProtectionState": "RetentionSchedulesSuspended"}, None, ""),
    ({"protectionState": None}, None, ""),
])
def test_protection_state_decides_protected(state_props: dict[str, Any], protected: bool | None,
                                            named: str) -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    doc = doc_at(JANUARY, [vm], [item(vm, policy, **state_props), policy])
    assert backup_of(doc)["vm1"].get("protected") is protected
    found = judge(doc, "VMBK-PROT-001")["vm1"]
    assert found.status == {True: "pass", False: "fail", None: "unknown"}[protected]
    if named:
        assert found.message == f"vm1 is not protected by Azure Backup: {named} in vault rsv-a"


def test_stopped_item_is_not_judged_by_prot_002_or_the_schedule() -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    doc = doc_at(JANUARY, [vm], [item(vm, policy, protectionState="ProtectionStopped", lastBackupStatus="Failed"),
                                 policy])
    assert judge(doc, "VMBK-PROT-002")["vm1"].status == "notApplicable"
    assert judge(doc, "VMBK-SCHED-001")["vm1"].status == "notApplicable"


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_vm_moved_to_a_new_vault_is_judged_on_its_active_item(order: str) -> None:
    vm = vm_row("vm1")
    old_policy = backup_policy_v1("OldPolicy", time="2018-01-24T02:00:00Z", zone="UTC")
    new_policy = backup_policy_v1("NewPolicy", time="2018-01-24T05:00:00Z", zone="UTC")
    old = item(vm, old_policy, vault="rsv-old", protectionState="ProtectionStopped", lastBackupStatus="Failed",
               lastBackupTime="2026-01-10T02:20:00Z")
    new = item(vm, new_policy, vault="rsv-new", protectionState="Protected", lastBackupStatus="Completed",
               lastBackupTime="2026-01-01T05:20:00Z")  # older than the stopped one's last backup: still judged
    rows = [old, new] if order == "old-first" else [new, old]
    doc = doc_at(JANUARY, [vm], [*rows, old_policy, new_policy])
    b = backup_of(doc)["vm1"]
    assert (b["protected"], b["vault"], b["policyId"], b["slots"]) == (True, "rsv-new", new_policy["id"], ["05:00 UTC"])
    assert b["state"] == "Protected in vault rsv-new; ProtectionStopped in vault rsv-old"
    assert judge(doc, "VMBK-PROT-001")["vm1"].status == "pass"
    assert judge(doc, "VMBK-PROT-002")["vm1"].status == "pass"  # the stopped item's failure is history


@pytest.mark.parametrize("order", [0, 1])
def test_two_stopped_items_fail_naming_both(order: int) -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    rows = [item(vm, policy, vault="rsv-b", protectionState="ProtectionStopped", lastBackupTime="2026-01-02T00:00Z"),
            item(vm, policy, vault="rsv-a", currentProtectionState="SoftDeleted", lastBackupTime="2026-01-01T00:00Z")]
    doc = doc_at(JANUARY, [vm], [*(rows if order else rows[::-1]), policy])
    found = judge(doc, "VMBK-PROT-001")["vm1"]
    assert found.status == "fail"
    assert found.message.endswith(": ProtectionStopped in vault rsv-b; SoftDeleted in vault rsv-a")


# --- UTC instants and daylight saving -------------------------------------------------------------


def oracle(zone: str, hhmm: str, collected_at: str) -> str:
    """HH:MM UTC of a local time on the collection's local date, straight from zoneinfo."""
    reference = datetime.fromisoformat(collected_at.replace("Z", "+00:00"))
    tz = ZoneInfo(IANA[zone])
    day = reference.astimezone(tz).date()
    local = datetime(day.year, day.month, day.day, int(hhmm[:2]), int(hhmm[3:]), tzinfo=tz)
    return f"{local.astimezone(UTC):%H:%M} UTC"


@pytest.mark.parametrize(("zone", "hhmm", "collected_at", "expected"), [
    # hand-computed: winter and summer in both hemispheres
    ("W. Europe Standard Time", "02:00", JANUARY, "01:00 UTC"),   # CET, UTC+1
    ("W. Europe Standard Time", "02:00", JULY, "00:00 UTC"),      # CEST, UTC+2
    ("GMT Standard Time", "01:00", JANUARY, "01:00 UTC"),         # GMT
    ("GMT Standard Time", "01:00", JULY, "00:00 UTC"),            # BST, UTC+1
    ("AUS Eastern Standard Time", "10:00", JANUARY, "23:00 UTC"),  # AEDT, UTC+11 (southern summer)
    ("AUS Eastern Standard Time", "10:00", JULY, "00:00 UTC"),     # AEST, UTC+10
    ("E. South America Standard Time", "02:00", JANUARY, "05:00 UTC"),  # UTC-3: Brazil has had no DST since 2019
    ("Pacific Standard Time", "01:00", JANUARY, "09:00 UTC"),     # PST, UTC-8
    ("Pacific Standard Time", "01:00", JULY, "08:00 UTC"),        # PDT, UTC-7
    ("India Standard Time", "08:00", JULY, "02:30 UTC"),          # UTC+5:30, no DST
])
def test_slot_is_the_utc_instant_at_collection(zone: str, hhmm: str, collected_at: str, expected: str) -> None:
    assert oracle(zone, hhmm, collected_at) == expected  # the oracle agrees with the hand computation
    vm, policy = vm_row("vm1"), backup_policy_v1(time=f"2018-01-24T{hhmm}:00Z", zone=zone)
    b = backup_of(doc_at(collected_at, [vm], [item(vm, policy), policy]))["vm1"]
    assert b["slots"] == [expected]
    assert b["scheduleHourUtc"] == int(expected[:2])
    assert b["scheduleTime"] == hhmm and b["schedule"] == f"at {hhmm} {zone}"


@pytest.mark.parametrize("zone", sorted(IANA))
@pytest.mark.parametrize("month", range(1, 13))
def test_every_hour_of_every_month_agrees_with_zoneinfo(zone: str, month: int) -> None:
    collected_at = f"2026-{month:02d}-20T12:00:00Z"
    vms = [vm_row(f"vm{h:02d}") for h in range(24)]
    policies = [backup_policy_v1(f"P{h:02d}", time=f"2018-01-24T{h:02d}:30:00Z", zone=zone) for h in range(24)]
    rows = [item(vm, p) for vm, p in zip(vms, policies, strict=True)] + policies
    got = backup_of(doc_at(collected_at, vms, rows))
    assert {name: b["slots"] for name, b in got.items()} == {
        f"vm{h:02d}": [oracle(zone, f"{h:02d}:30", collected_at)] for h in range(24)}


def test_without_collected_at_the_scans_clock_decides_daylight_saving() -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(time="2018-01-24T02:00:00Z", zone="W. Europe Standard Time")
    doc = doc_at(None, [vm], [item(vm, policy), policy])
    assert backup_of(doc, datetime(2026, 7, 1, tzinfo=UTC))["vm1"]["slots"] == ["00:00 UTC"]
    assert backup_of(doc, datetime(2026, 1, 1, tzinfo=UTC))["vm1"]["slots"] == ["01:00 UTC"]
    assert "slots" not in backup_of(doc)["vm1"]  # no reference instant at all: not guessed
    # collectedAt wins over the clock
    july = doc_at(JULY, [vm], [item(vm, policy), policy])
    assert backup_of(july, datetime(2026, 1, 1, tzinfo=UTC))["vm1"]["slots"] == ["00:00 UTC"]


def test_unknown_zone_leaves_the_slot_unknown() -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="Mars Standard Time")
    doc = doc_at(JANUARY, [vm], [item(vm, policy), policy])
    assert "slots" not in backup_of(doc)["vm1"] and "weeklySlots" not in backup_of(doc)["vm1"]
    found = judge(doc, "VMBK-SCHED-001")["vm1"]
    assert found.status == "unknown" and "backup.weeklySlots" in found.message


# --- hourly windows ---------------------------------------------------------------------------------


def hourly(name: str, start: str, interval: int, duration: int, zone: str = "UTC") -> dict[str, Any]:
    row = backup_policy_v2(name, hourly=True, zone=zone)
    row["properties"]["schedulePolicy"]["hourlySchedule"] = {
        "interval": interval, "scheduleWindowStartTime": f"2021-12-17T{start}:00Z", "scheduleWindowDuration": duration}
    return row


@pytest.mark.parametrize(("start", "interval", "duration", "zone", "collected_at"), [
    ("08:00", 4, 16, "UTC", JANUARY), ("00:00", 4, 24, "UTC", JANUARY), ("08:00", 6, 12, "UTC", JANUARY),
    ("22:00", 4, 8, "W. Europe Standard Time", JULY), ("09:00", 12, 23, "AUS Eastern Standard Time", JANUARY),
    ("08:00", 8, 24, "India Standard Time", JULY),
])
def test_hourly_window_starts_a_snapshot_every_interval(start: str, interval: int, duration: int, zone: str,
                                                        collected_at: str) -> None:
    vm, policy = vm_row("vm1"), hourly("H", start, interval, duration, zone)
    b = backup_of(doc_at(collected_at, [vm], [item(vm, policy), policy]))["vm1"]
    first = datetime.strptime(start, "%H:%M")
    local = [f"{first + timedelta(hours=k * interval):%H:%M}" for k in range(duration) if k * interval < duration]
    assert b["slots"] == sorted({oracle(zone, t, collected_at) for t in local})
    assert b["schedule"] == f"every {interval}h for {duration}h from {start} {zone}"


def test_hourly_and_daily_share_the_slots_they_start_in() -> None:
    every4 = hourly("Every4h", "08:00", 4, 16)  # 08, 12, 16, 20 UTC
    at12 = backup_policy_v1("At12", time="2018-01-24T13:00:00Z", zone="W. Europe Standard Time")  # 12:00 UTC
    at13 = backup_policy_v1("At13", time="2018-01-24T13:00:00Z", zone="UTC")
    vms = [vm_row("hourly", avset="set"), vm_row("daily12", avset="set"), vm_row("daily13", avset="set")]
    rows = [item(vms[0], every4), item(vms[1], at12), item(vms[2], at13), every4, at12, at13]
    found = judge(doc_at(JANUARY, vms, rows), "VMBK-SCHED-001", ["maximumPerSlot=1"])
    assert {n: f.status for n, f in found.items()} == {"hourly": "fail", "daily12": "fail", "daily13": "pass"}
    assert "/ Monday 12:00 UTC are backed up in the same slot: daily12, hourly" in found["hourly"].message
    assert judge(doc_at(JANUARY, vms, rows), "VMBK-SCHED-001", ["maximumPerSlot=2"])["hourly"].status == "pass"


# --- one instant under several zones, one local text in several zones --------------------------


def spread(zones_times: list[tuple[str, str]], collected_at: str, maximum: int) -> dict[str, str]:
    vms = [vm_row(f"vm{i}", avset="set") for i in range(len(zones_times))]
    policies = [backup_policy_v1(f"P{i}", time=f"2018-01-24T{t}:00Z", zone=z) for i, (z, t) in enumerate(zones_times)]
    rows = [item(vm, p) for vm, p in zip(vms, policies, strict=True)] + policies
    found = judge(doc_at(collected_at, vms, rows), "VMBK-SCHED-001", [f"maximumPerSlot={maximum}"])
    return {n: f.status for n, f in found.items()}


def test_same_instant_under_four_zones_is_one_slot_in_winter() -> None:
    zones = [("UTC", "01:00"), ("GMT Standard Time", "01:00"), ("W. Europe Standard Time", "02:00"),
             ("Romance Standard Time", "02:00")]
    assert set(spread(zones, JANUARY, 3).values()) == {"fail"}
    assert set(spread(zones, JANUARY, 4).values()) == {"pass"}
    # In July London and Paris move an hour: 01:00 UTC, 00:00 UTC, 00:00 UTC, 00:00 UTC.
    assert set(spread(zones, JULY, 3).values()) == {"pass"}
    assert spread(zones, JULY, 2) == {"vm0": "pass", "vm1": "fail", "vm2": "fail", "vm3": "fail"}


def test_same_local_text_in_four_zones_is_four_slots() -> None:
    zones = [("UTC", "01:00"), ("W. Europe Standard Time", "01:00"), ("Pacific Standard Time", "01:00"),
             ("AUS Eastern Standard Time", "01:00")]
    for collected_at in (JANUARY, JULY):
        assert set(spread(zones, collected_at, 1).values()) == {"pass"}



def test_a_scan_without_collected_at_uses_its_clock_and_verify_reuses_it(tmp_path: Path) -> None:
    """run_scan takes daylight saving at `as_of` (verify passes the recorded start), so re-scans agree."""
    vm, policy = vm_row("vm1"), backup_policy_v1(time="2018-01-24T02:00:00Z", zone="W. Europe Standard Time")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc_at(None, [vm], [item(vm, policy), policy])))
    policies = load_policies([bundled_policy_dir()], parse_cli_params(["maximumPerSlot=0"]))  # every slot fails
    policies.policies = [p for p in policies.policies if p.id == "VMBK-SCHED-001"]

    def slot_named(as_of: str) -> str:
        return scan.run_scan(scan.snapshot_source([path]), policies, Gate(), None, as_of=as_of).findings[0].message

    assert "/ Monday 00:00 UTC are backed up" in slot_named("2026-07-01T00:00:00Z")
    assert "/ Monday 01:00 UTC are backed up" in slot_named("2026-01-01T00:00:00Z")


def test_weekly_policy_counts_on_its_time_of_day() -> None:
    """V1 weekly: scheduleRunDays plus scheduleRunTimes; the slot is the time of day, on the UTC day it falls on."""
    vm, policy = vm_row("vm1"), backup_policy_v1(time="2018-01-24T21:00:00Z", zone="Pacific Standard Time")
    policy["properties"]["schedulePolicy"].update(scheduleRunFrequency="Weekly", scheduleRunDays=["Sunday"])
    b = backup_of(doc_at(JULY, [vm], [item(vm, policy), policy]))["vm1"]
    assert (b["frequency"], b["slots"]) == ("Weekly", ["04:00 UTC"])  # 21:00 PDT = 04:00 UTC next day
    assert (b["weeklySlots"], b["schedule"]) == (["Monday 04:00 UTC"], "on Sunday at 21:00 Pacific Standard Time")


# --- the whole record, and the schedule shapes V1 and V2 policies really take ------------------------


def one(policy: dict[str, Any], collected_at: str = JANUARY, **item_props: Any) -> dict[str, Any]:
    vm = vm_row("vm1")
    return backup_of(doc_at(collected_at, [vm], [item(vm, policy, **item_props), policy]))["vm1"]


def test_the_record_of_a_vm_protected_by_a_v1_policy() -> None:
    policy = backup_policy_v1(time="2018-01-24T02:00:00Z", zone="W. Europe Standard Time")
    b = one(policy, policyName="DailyPolicy")
    item_id = b.pop("itemId")
    assert "/vaults/rsv-a/" in item_id and item_id.endswith("/protectedItems/VM;iaasvmcontainerv2;iaasvm-rg;vm1")
    assert b == {
        "policyId": policy["id"], "policyName": "DailyPolicy", "lastBackupStatus": "Completed",
        "lastBackupTime": "2018-01-22T12:25:32.048723Z", "protectionState": "Protected", "healthStatus": "Passed",
        "protected": True, "vault": "rsv-a", "state": "Protected in vault rsv-a", "policyType": "V1",
        "frequency": "Daily", "timeZone": "W. Europe Standard Time", "scheduleTime": "02:00",
        "schedule": "at 02:00 W. Europe Standard Time", "slots": ["01:00 UTC"], "scheduleHourUtc": 1,
        "weeklySlots": [f"{day} 01:00 UTC" for day in WEEK], "agentless": False,
    }


@pytest.mark.parametrize(("consistency", "state", "agentless"), [
    ("OnlyCrashConsistent", "Protected", True), ("onlycrashconsistent", "IRPending", True),
    (None, "Protected", False), ("OnlyCrashConsistent", "ProtectionStopped", None),
])
def test_only_crash_consistent_snapshots_of_an_active_item_are_agentless(consistency: str | None, state: str,
                                                                          agentless: bool | None) -> None:
    """An Enhanced policy with snapshotConsistencyType OnlyCrashConsistent (the spec's v2-Get-Policy example) takes
    agentless crash-consistent restore points: no VM agent, snapshot extension or VSS. Only an item whose scheduled
    backups run makes the VM agentless; a stopped one says nothing of the next backup."""
    policy = backup_policy_v2("Enhanced", zone="UTC")
    policy["properties"].pop("snapshotConsistencyType")
    if consistency is not None:
        policy["properties"]["snapshotConsistencyType"] = consistency
    b = one(policy, protectionState=state)
    assert b.get("agentless") is agentless
    assert b.get("snapshotConsistencyType") == consistency


def test_a_weekly_v2_schedule_without_policy_type_or_zone() -> None:
    """V2 is recognised from schedulePolicyType alone; an empty timeZone is UTC; every run time is a slot and
    one that cannot be read is skipped."""
    policy = backup_policy_v2("Weekly2", zone="")
    policy["properties"].pop("policyType")
    policy["properties"]["schedulePolicy"] = {
        "schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": "Weekly",
        "weeklySchedule": {"scheduleRunDays": ["Sunday"],
                           "scheduleRunTimes": ["2018-01-24T21:30:00Z", "noon", "2018-01-24T03:00:00Z"]}}
    b = one(policy)
    assert (b["policyType"], b["frequency"], b["timeZone"]) == ("V2", "Weekly", "UTC")
    assert (b["scheduleTime"], b["schedule"]) == ("21:30", "on Sunday at 21:30, 03:00 UTC")
    assert (b["slots"], b["scheduleHourUtc"]) == (["03:00 UTC", "21:30 UTC"], 21)
    assert b["weeklySlots"] == ["Sunday 03:00 UTC", "Sunday 21:30 UTC"]


@pytest.mark.parametrize("zone", [None, "", 5])
def test_a_policy_without_a_usable_zone_is_read_in_utc(zone: Any) -> None:
    policy = backup_policy_v1(time="2018-01-24T23:15:00Z")
    policy["properties"]["timeZone"] = zone
    b = one(policy, JULY)
    assert (b["timeZone"], b["slots"], b["schedule"]) == ("UTC", ["23:15 UTC"], "at 23:15 UTC")


@pytest.mark.parametrize(("zone", "slot"), [
    ("UTC", "02:00 UTC"), ("utc", "02:00 UTC"), ("Coordinated Universal Time", "02:00 UTC"),
    ("Europe/Berlin", "00:00 UTC"),  # an IANA name is taken as it is
    ("Mars Standard Time", None), ("Europe/Atlantis", None),
])
def test_zone_names(zone: str, slot: str | None) -> None:
    b = one(backup_policy_v1(time="2018-01-24T02:00:00Z", zone=zone), JULY)
    assert b.get("slots") == ([slot] if slot else None)
    assert b["schedule"] == f"at 02:00 {zone}"  # the schedule is described even when its instant is unknown


@pytest.mark.parametrize(("run_time", "start"), [
    ("2018-01-24T02:30:00Z", "02:30"), ("02:30", "02:30"), ("2018-01-24T02:30:00.0000000+00:00", "02:30"),
    ("2:05", "02:05"), ("23:59", "23:59"), ("00:00", "00:00"),
    ("24:00", None), ("02:60", None), ("2018-01-24T", None), ("0230", None), ("xx:30", None), ("02:xx", None),
    (230, None), (None, None),
])
def test_run_time_spellings(run_time: Any, start: str | None) -> None:
    policy = backup_policy_v1(zone="UTC")
    policy["properties"]["schedulePolicy"]["scheduleRunTimes"] = [run_time]
    b = one(policy)
    assert b.get("scheduleTime") == start
    assert b.get("slots") == ([f"{start} UTC"] if start else None)


@pytest.mark.parametrize("schedule", [
    {"scheduleRunFrequency": "Daily"},  # no run times at all
    {"scheduleRunFrequency": "Daily", "scheduleRunTimes": []},
    {"scheduleRunFrequency": "Daily", "scheduleRunTimes": "2018-01-24T02:00:00Z"},  # not a list
    {"scheduleRunFrequency": "Daily", "dailySchedule": {"scheduleRunTimes": []}},
])
def test_no_run_time_leaves_the_slot_unknown(schedule: dict[str, Any]) -> None:
    policy = backup_policy_v1(zone="UTC")
    policy["properties"]["schedulePolicy"] = schedule
    b = one(policy)
    assert b["frequency"] == "Daily" and not {"scheduleTime", "schedule", "slots"} & set(b)


def test_a_schedule_policy_that_is_not_an_object_gives_type_and_zone_only() -> None:
    policy = backup_policy_v1(zone="UTC")
    policy["properties"]["schedulePolicy"] = "Daily at two"
    b = one(policy)
    assert {k: b[k] for k in ("policyType", "timeZone")} == {"policyType": "V1", "timeZone": "UTC"}
    assert not {"frequency", "scheduleTime", "slots"} & set(b)


@pytest.mark.parametrize(("window", "slots"), [
    ({"interval": 4, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 10},
     ["08:00 UTC", "12:00 UTC", "16:00 UTC"]),  # a window not a multiple of the interval
    ({"interval": 24, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 24},
     ["08:00 UTC"]),
    ({"interval": 1, "scheduleWindowStartTime": "2021-12-17T22:30:00Z", "scheduleWindowDuration": 3},
     ["00:30 UTC", "22:30 UTC", "23:30 UTC"]),
    ({"interval": 0, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 24}, None),
    ({"interval": 25, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 24}, None),
    ({"interval": True, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 24}, None),
    ({"interval": 4, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 25}, None),
    ({"interval": 4, "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 0}, None),
    ({"interval": 4, "scheduleWindowStartTime": "2021-12-17T08:00:00Z"}, None),
    ({"interval": "4", "scheduleWindowStartTime": "2021-12-17T08:00:00Z", "scheduleWindowDuration": 24}, None),
    ({"interval": 4, "scheduleWindowDuration": 24}, None),
])
def test_hourly_windows(window: dict[str, Any], slots: list[str] | None) -> None:
    policy = backup_policy_v2("H", hourly=True, zone="UTC")
    policy["properties"]["schedulePolicy"]["hourlySchedule"] = window
    b = one(policy)
    assert b.get("slots") == slots
    if slots is None:
        assert "schedule" not in b and "scheduleTime" not in b


@pytest.mark.parametrize("order", [0, 1])
def test_of_two_active_items_the_one_backed_up_last_is_judged(order: int) -> None:
    vm = vm_row("vm1")
    early = backup_policy_v1("Early", time="2018-01-24T01:00:00Z", zone="UTC")
    late = backup_policy_v1("Late", time="2018-01-24T05:00:00Z", zone="UTC")
    rows = [item(vm, early, vault="rsv-a", lastBackupTime="2026-01-10T01:20:00Z", protectionState="Protected"),
            item(vm, late, vault="rsv-b", lastBackupTime="2026-01-11T05:20:00Z", protectionState="IRPending")]
    b = backup_of(doc_at(JANUARY, [vm], [*(rows if order else rows[::-1]), early, late]))["vm1"]
    assert (b["vault"], b["slots"], b["protectionState"]) == ("rsv-b", ["05:00 UTC"], "IRPending")
    assert b["state"] == "IRPending in vault rsv-b; Protected in vault rsv-a"


@pytest.mark.parametrize("order", [0, 1])
def test_an_undocumented_state_is_judged_before_a_stopped_item_and_after_an_active_one(order: int) -> None:
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    stopped = item(vm, policy, vault="rsv-a", protectionState="ProtectionStopped", lastBackupTime="2026-01-12T00:00Z")
    odd = item(vm, policy, vault="rsv-b", protectionState="SomethingNew", lastBackupTime="2026-01-01T00:00Z")
    b = backup_of(doc_at(JANUARY, [vm], [*([stopped, odd] if order else [odd, stopped]), policy]))["vm1"]
    assert "protected" not in b and b["state"] == "SomethingNew in vault rsv-b; ProtectionStopped in vault rsv-a"
    assert judge(doc_at(JANUARY, [vm], [stopped, odd, policy]), "VMBK-PROT-001")["vm1"].status == "unknown"


def test_the_state_named_is_the_current_one_when_both_are_active_or_undocumented() -> None:
    policy = backup_policy_v1(zone="UTC")
    b = one(policy, protectionState="Protected", currentProtectionState="ProtectionConfigured")
    assert (b["protected"], b["state"]) == (True, "ProtectionConfigured in vault rsv-a")
    b = one(policy, protectionState="Protected", currentProtectionState="Mystery")
    assert "protected" not in b and b["state"] == "Mystery in vault rsv-a"
    b = one(policy, protectionState="", currentProtectionState=None)
    assert "protected" not in b and b["state"] == "no protection state reported in vault rsv-a"


@pytest.mark.parametrize("policy_id", [None, 5, "/subscriptions/x/resourceGroups/rg/providers/"
                                                  "Microsoft.RecoveryServices/vaults/v/backupPolicies/NotCollected"])
def test_an_item_whose_policy_is_not_collected_has_no_schedule(policy_id: Any) -> None:
    policy = backup_policy_v1(zone="UTC")
    b = one(policy, policyId=policy_id)
    assert b["protected"] is True and not {"policyType", "slots", "schedule", "timeZone", "agentless"} & set(b)
    assert judge(doc_at(JANUARY, [vm_row("vm1")], [item(vm_row("vm1"), policy, policyId=policy_id), policy]),
                 "VMBK-SCHED-001")["vm1"].status == "unknown"


def test_a_vault_in_a_resource_group_named_vaults_is_named_right() -> None:
    """The vault is the segment after .../providers/Microsoft.RecoveryServices/vaults/, not after the first
    segment spelled 'vaults' (a resource group may be called that)."""
    vm, policy = vm_row("vm1"), backup_policy_v1(zone="UTC")
    stopped = item(vm, policy, vault="rsv-weu", protectionState="ProtectionStopped")
    stopped["id"] = stopped["id"].replace("/resourceGroups/PythonSDKBackupTestRg/", "/resourceGroups/Vaults/")
    doc = doc_at(JANUARY, [vm], [stopped, policy])
    b = backup_of(doc)["vm1"]
    assert (b["vault"], b["state"]) == ("rsv-weu", "ProtectionStopped in vault rsv-weu")
    assert judge(doc, "VMBK-PROT-001")["vm1"].message == (
        "vm1 is not protected by Azure Backup: ProtectionStopped in vault rsv-weu")


def test_the_policy_type_alone_or_the_schedule_type_alone_says_v2_and_a_consistency_is_a_string() -> None:
    """Either field marks an Enhanced policy (rows in the wild carry one without the other); a
    snapshotConsistencyType that is no string is not taken as one (and makes no VM agentless)."""
    by_type = backup_policy_v2("ByType")
    by_type["properties"]["schedulePolicy"]["schedulePolicyType"] = "SimpleSchedulePolicy"
    by_schedule = backup_policy_v2("BySchedule")
    del by_schedule["properties"]["policyType"]
    odd = backup_policy_v2("Odd")
    odd["properties"]["snapshotConsistencyType"] = 5
    for row in (by_type, by_schedule):
        assert schedule_facts(row, datetime(2026, 11, 20, tzinfo=UTC))["policyType"] == "V2"
    assert "snapshotConsistencyType" not in schedule_facts(odd, datetime(2026, 11, 20, tzinfo=UTC))


def test_an_item_whose_id_names_no_vault_says_so_in_its_state() -> None:
    vm = vm_row("vm1")
    policy = backup_policy_v1("P", zone="UTC")
    row = protected_item(vm["id"], policy["id"])
    row["id"] = row["id"].lower().replace("/vaults/", "/stores/")
    b = backup_of(doc_at(JANUARY, [vm], [row, policy]))["vm1"]
    assert b["state"].endswith(" in vault ?") and "vault" not in b
