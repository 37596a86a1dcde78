"""Backup facts: the VM's protected item, its policy, and the schedule slot it is snapshotted in.

V1 policies keep run times in `schedulePolicy.scheduleRunTimes`; V2 (Enhanced) policies in
`schedulePolicy.dailySchedule` / `weeklySchedule.scheduleRunTimes` or an `hourlySchedule`
window. Only the time of day matters, read in the policy's `timeZone` (a Windows zone name).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from backup_preflight.estate.index import Index, Row, props, segment_after, strings


def backup_facts(vm_id: str, index: Index) -> dict[str, Any] | None:
    """Protection facts for one VM; None when recoveryservicesresources was not collected."""
    if "recoveryservicesresources" not in index.collected:
        return None
    item = index.protected_items.get(vm_id)
    if item is None:
        return {"protected": False}
    p = props(item)
    facts: dict[str, Any] = {"protected": True, "itemId": item["id"], **strings(p, (
        "policyId", "policyName", "lastBackupStatus", "lastBackupTime", "protectionState", "healthStatus"))}
    vault = segment_after(item["id"], "vaults")
    if vault:
        facts["vault"] = vault
    policy_id = p.get("policyId")
    key = policy_id.lower() if isinstance(policy_id, str) else None
    policy = index.backup_policies.get(key) if key else None
    if policy is not None:
        schedule = index.schedules.get(key)  # a few policies serve thousands of VMs: derive once
        if schedule is None:
            schedule = index.schedules[key] = schedule_facts(policy, index.collected_at)
        facts.update(schedule)
    return facts


def schedule_facts(policy: Row, collected_at: str | None) -> dict[str, Any]:
    """Frequency, time zone, HH:MM, slot and UTC hour of a backup policy's schedule."""
    p = props(policy)
    schedule = p.get("schedulePolicy") if isinstance(p.get("schedulePolicy"), dict) else {}
    facts: dict[str, Any] = {}
    v2 = p.get("policyType") == "V2" or str(schedule.get("schedulePolicyType", "")).endswith("V2")
    facts["policyType"] = "V2" if v2 else "V1"
    frequency = schedule.get("scheduleRunFrequency")
    if isinstance(frequency, str):
        facts["frequency"] = frequency
    zone = p.get("timeZone") if isinstance(p.get("timeZone"), str) and p.get("timeZone") else "UTC"
    facts["timeZone"] = zone
    start, suffix = _start_time(schedule)
    if start is None:
        return facts
    facts["scheduleTime"] = start
    facts["slot"] = f"{zone} {start}{suffix}"
    hour = utc_hour(zone, start, collected_at)
    if hour is not None:
        facts["scheduleHourUtc"] = hour
    return facts


def _start_time(schedule: dict[str, Any]) -> tuple[str | None, str]:
    hourly = schedule.get("hourlySchedule")
    if isinstance(hourly, dict):
        start = _hhmm(hourly.get("scheduleWindowStartTime"))
        return start, f" every {hourly.get('interval', '?')}h for {hourly.get('scheduleWindowDuration', '?')}h"
    for holder in (schedule.get("dailySchedule"), schedule.get("weeklySchedule"), schedule):
        if isinstance(holder, dict):
            times = holder.get("scheduleRunTimes")
            if isinstance(times, list) and times:
                return _hhmm(times[0]), ""
    return None, ""


def _hhmm(value: Any) -> str | None:
    """'2018-01-24T02:00:00Z' or '02:00' → '02:00'."""
    if not isinstance(value, str):
        return None
    clock = value.split("T", 1)[1] if "T" in value else value
    parts = clock.split(":")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1][:2].isdigit()):
        return None
    return f"{int(parts[0]):02d}:{parts[1][:2]}"


@cache
def _zone(name: str) -> ZoneInfo | None:
    iana = "UTC" if name.upper() in ("UTC", "COORDINATED UNIVERSAL TIME") else win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc_hour(zone_name: str, hhmm: str, collected_at: str | None) -> int | None:
    """The UTC hour at which `hhmm` in `zone_name` falls on the collection date; None if unknown zone."""
    zone = _zone(zone_name)
    if zone is None:
        return None
    day = _date(collected_at)
    hours, minutes = int(hhmm[:2]), int(hhmm[3:5])
    local = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)
    return (local - (local.utcoffset() or timedelta())).hour


def _date(collected_at: str | None) -> datetime:
    if collected_at:
        try:
            return datetime.fromisoformat(collected_at.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime(2000, 1, 1)
