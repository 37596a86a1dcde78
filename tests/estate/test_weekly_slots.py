"""Weekly backup policies: their slots are days of the week in UTC, and VMs on different days never crowd.

The V1 shape keeps the days in `schedulePolicy.scheduleRunDays` (scheduleRunFrequency Weekly), the V2 shape in
`schedulePolicy.weeklySchedule.scheduleRunDays`. Both are checked against an oracle that walks the real dates of
the week after the collection through zoneinfo, and VMBK-SCHED-001 against one that counts, at every instant of
a week, the VMs of each group snapshotted then.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estate.test_backup import IANA, JANUARY, JULY, backup_of, doc_at, item, judge

from arg import backup_policy_v1, backup_policy_v2, vm_row

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
#: Zones whose weekly starts land on another UTC day: east of UTC late at night, west of it in the evening.
ZONES = ["UTC", "W. Europe Standard Time", "Pacific Standard Time", "AUS Eastern Standard Time",
         "India Standard Time", "E. South America Standard Time"]


def weekly(name: str, days: list[str], hhmm: str, zone: str, *, v2: bool = False) -> dict[str, Any]:
    """A weekly policy in the V1 shape (days beside the run times) or the V2 one (a weeklySchedule)."""
    times = [f"2018-01-24T{hhmm}:00Z"]
    if v2:
        policy = backup_policy_v2(name, zone=zone)
        policy["properties"]["schedulePolicy"] = {
            "schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": "Weekly",
            "weeklySchedule": {"scheduleRunDays": days, "scheduleRunTimes": times}}
        return policy
    policy = backup_policy_v1(name, zone=zone)
    policy["properties"]["schedulePolicy"].update(scheduleRunFrequency="Weekly", scheduleRunDays=days,
                                                  scheduleRunTimes=times)
    return policy


def daily(name: str, hhmm: str, zone: str) -> dict[str, Any]:
    return backup_policy_v1(name, time=f"2018-01-24T{hhmm}:00Z", zone=zone)


def oracle(zone: str, hhmm: str, days: list[str], collected_at: str) -> set[str]:
    """Every start in the seven days from the collection's local date, each on its own date, in UTC."""
    tz = ZoneInfo(IANA[zone])
    first = datetime.fromisoformat(collected_at).astimezone(tz).date()
    starts = set()
    for n in range(7):
        day = first + timedelta(days=n)
        if DAYS[day.weekday()] in days:
            local = datetime(day.year, day.month, day.day, int(hhmm[:2]), int(hhmm[3:]), tzinfo=tz)
            starts.add(f"{local.astimezone(ZoneInfo('UTC')):%A %H:%M} UTC")
    return starts


def one_vm(policy: dict[str, Any], collected_at: str = JANUARY) -> dict[str, Any]:
    vm = vm_row("vm1")
    return backup_of(doc_at(collected_at, [vm], [item(vm, policy), policy]))["vm1"]


@pytest.mark.parametrize(("zone", "days", "hhmm", "collected_at", "expected"), [
    ("W. Europe Standard Time", ["Sunday"], "00:30", JANUARY, ["Saturday 23:30 UTC"]),    # CET: back a day
    ("W. Europe Standard Time", ["Sunday"], "01:30", JULY, ["Saturday 23:30 UTC"]),       # CEST
    ("Pacific Standard Time", ["Sunday", "Friday"], "21:00", JANUARY,
     ["Monday 05:00 UTC", "Saturday 05:00 UTC"]),                                          # PST: on a day
    ("AUS Eastern Standard Time", ["Monday"], "09:00", JANUARY, ["Sunday 22:00 UTC"]),    # AEDT, UTC+11
    ("UTC", ["Wednesday", "Monday"], "02:00", JULY, ["Monday 02:00 UTC", "Wednesday 02:00 UTC"]),
])
@pytest.mark.parametrize("v2", [False, True])
def test_a_weekly_start_is_on_the_utc_day_it_falls_on(zone: str, days: list[str], hhmm: str, collected_at: str,
                                                      expected: list[str], v2: bool) -> None:
    b = one_vm(weekly("W", days, hhmm, zone, v2=v2), collected_at)
    assert b["weeklySlots"] == expected  # in the order of the week
    assert set(expected) == oracle(zone, hhmm, days, collected_at)
    assert b["frequency"] == "Weekly" and b["schedule"].startswith(f"on {', '.join(d for d in DAYS if d in days)} at")


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), days=st.sets(st.sampled_from(DAYS), min_size=1),
       hour=st.integers(0, 23), minute=st.sampled_from([0, 30]), collected_at=st.sampled_from([JANUARY, JULY]),
       v2=st.booleans(), case=st.sampled_from([str, str.lower, str.upper]))
def test_weekly_slots_match_the_dates_of_a_real_week(zone: str, days: set[str], hour: int, minute: int,
                                                     collected_at: str, v2: bool, case: Any) -> None:
    hhmm = f"{hour:02d}:{minute:02d}"
    b = one_vm(weekly("W", [case(d) for d in days], hhmm, zone, v2=v2), collected_at)
    assert set(b["weeklySlots"]) == oracle(zone, hhmm, sorted(days), collected_at)
    assert len(b["weeklySlots"]) == len(days)


def test_a_daily_policy_is_in_its_slot_every_day_and_an_hourly_one_in_each_start() -> None:
    assert one_vm(daily("D", "02:00", "W. Europe Standard Time"))["weeklySlots"] == [
        f"{d} 01:00 UTC" for d in DAYS]
    hourly = one_vm(backup_policy_v2("H", hourly=True))  # every 4 hours from 08:00 for 16 hours, UTC
    assert hourly["weeklySlots"] == [f"{d} {t}:00 UTC" for d in DAYS for t in ("08", "12", "16", "20")]


@pytest.mark.parametrize("days", [None, [], ["Sunday", "Funday"], "Sunday", [1]])
def test_a_weekly_policy_without_days_azure_names_has_no_weekly_slots(days: Any) -> None:
    """Which days it runs on is not guessed: the crowding check is unknown, the hours (VMBK-PERF-*) still known."""
    policy = weekly("W", ["Sunday"], "02:00", "UTC")
    policy["properties"]["schedulePolicy"]["scheduleRunDays"] = days
    b = one_vm(policy)
    assert "weeklySlots" not in b and b["slots"] == ["02:00 UTC"]
    vm = vm_row("vm1")
    found = judge(doc_at(JANUARY, [vm], [item(vm, policy), policy]), "VMBK-SCHED-001")["vm1"]
    assert found.status == "unknown" and "backup.weeklySlots" in found.message


def test_the_frequency_decides_and_a_weekly_schedule_alone_means_weekly() -> None:
    stray = daily("D", "02:00", "UTC")
    stray["properties"]["schedulePolicy"]["scheduleRunDays"] = ["Sunday"]  # a daily policy's leftover days
    assert len(one_vm(stray)["weeklySlots"]) == 7
    unnamed = weekly("W", ["Tuesday"], "02:00", "UTC", v2=True)
    del unnamed["properties"]["schedulePolicy"]["scheduleRunFrequency"]
    assert one_vm(unnamed)["weeklySlots"] == ["Tuesday 02:00 UTC"]


# --- VMBK-SCHED-001 on weekly policies ----------------------------------------------------------------------


def crowding(policies: list[dict[str, Any]], maximum: int, collected_at: str = JANUARY) -> dict[str, Any]:
    """One VM per policy, all in one availability set, judged by VMBK-SCHED-001."""
    vms = [vm_row(f"vm{i}", avset="set") for i in range(len(policies))]
    rows = [item(vm, p) for vm, p in zip(vms, policies, strict=True)] + policies
    return judge(doc_at(collected_at, vms, rows), "VMBK-SCHED-001", [f"maximumPerSlot={maximum}"])


def test_weekly_vms_on_different_days_do_not_share_a_slot() -> None:
    policies = [weekly(f"W{d}", [d], "02:00", "UTC") for d in DAYS]
    assert {f.status for f in crowding(policies, 1).values()} == {"pass"}
    policies.append(weekly("WSun2", ["Sunday"], "02:00", "UTC", v2=True))
    found = crowding(policies, 1)
    assert [n for n, f in found.items() if f.status == "fail"] == ["vm6", "vm7"]
    assert "2 VMs of group" in found["vm7"].message and "/ Sunday 02:00 UTC" in found["vm7"].message


def test_a_weekly_vm_shares_its_day_with_the_daily_ones() -> None:
    policies = [daily("D", "03:00", "W. Europe Standard Time"), weekly("WSat", ["Saturday"], "02:00", "UTC")]
    found = crowding(policies, 1)
    assert {n: f.status for n, f in found.items()} == {"vm0": "fail", "vm1": "fail"}
    assert "/ Saturday 02:00 UTC are backed up in the same slot: vm0, vm1" in found["vm0"].message


def test_a_start_after_local_midnight_crowds_the_day_before_in_utc() -> None:
    """Sunday 00:30 in Berlin in winter is Saturday 23:30 UTC: it crowds a Saturday 23:30 UTC backup, not a
    Sunday one."""
    berlin = weekly("Berlin", ["Sunday"], "00:30", "W. Europe Standard Time")
    saturday, sunday = weekly("Sat", ["Saturday"], "23:30", "UTC"), weekly("Sun", ["Sunday"], "23:30", "UTC")
    assert {f.status for f in crowding([berlin, sunday], 1).values()} == {"pass"}
    assert {f.status for f in crowding([berlin, saturday], 1).values()} == {"fail"}


POOL = [daily("D1", "01:00", "UTC"), daily("D2", "02:00", "W. Europe Standard Time"),
        weekly("WSat", ["Saturday"], "01:00", "UTC"), weekly("WSun", ["Sunday"], "01:00", "UTC", v2=True),
        weekly("WSunBerlin", ["Sunday", "Wednesday"], "02:00", "W. Europe Standard Time"),
        weekly("WMonSydney", ["Monday"], "12:00", "AUS Eastern Standard Time", v2=True),  # Monday 01:00 UTC
        backup_policy_v2("H", hourly=True)]
#: What each policy of POOL starts a snapshot at in the week of JANUARY, from the oracle (hourly: its four starts).
STARTS = [oracle("UTC", "01:00", DAYS, JANUARY), oracle("W. Europe Standard Time", "02:00", DAYS, JANUARY),
          oracle("UTC", "01:00", ["Saturday"], JANUARY), oracle("UTC", "01:00", ["Sunday"], JANUARY),
          oracle("W. Europe Standard Time", "02:00", ["Sunday", "Wednesday"], JANUARY),
          oracle("AUS Eastern Standard Time", "12:00", ["Monday"], JANUARY),
          set().union(*(oracle("UTC", f"{h}:00", DAYS, JANUARY) for h in ("08", "12", "16", "20")))]


@settings(max_examples=40, deadline=None)
@given(chosen=st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.sampled_from(["a", "b"])), min_size=1,
                       max_size=12),
       maximum=st.integers(1, 3))
def test_crowding_matches_a_count_at_every_instant_of_the_week(chosen: list[tuple[int, str]], maximum: int) -> None:
    """A VM fails exactly when, at one of its starts, more than `maximum` VMs of its availability set start."""
    vms = [vm_row(f"vm{i}", avset=f"set-{s}") for i, (_, s) in enumerate(chosen)]
    rows = [item(vm, POOL[p]) for vm, (p, _) in zip(vms, chosen, strict=True)] + POOL
    found = judge(doc_at(JANUARY, vms, rows), "VMBK-SCHED-001", [f"maximumPerSlot={maximum}"])
    counts = Counter((s, start) for p, s in chosen for start in STARTS[p])
    expected = {f"vm{i}": "fail" if any(counts[(s, start)] > maximum for start in STARTS[p]) else "pass"
                for i, (p, s) in enumerate(chosen)}
    assert {n: f.status for n, f in found.items()} == expected
