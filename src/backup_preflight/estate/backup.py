"""Backup facts: the VM's active protected item, its policy, and the UTC instants it is snapshotted at.

Protection: a protected item protects only in a state in which scheduled backups run
(`ACTIVE_STATES`); a stopped, paused, suspended or soft-deleted item (`INACTIVE_STATES`) does not.
A VM moved to another vault keeps its old, stopped item: the VM is judged on its active item,
whatever the row order. A state nobody documented is not guessed: `protected` stays unknown.

Schedules: V1 policies keep run times in `schedulePolicy.scheduleRunTimes` (a weekly one its days in
`scheduleRunDays`); V2 (Enhanced) policies in `schedulePolicy.dailySchedule` / `weeklySchedule` or an
`hourlySchedule` window. The times are read in the policy's `timeZone` (a Windows zone name), and turned into
UTC instants at a reference instant (the snapshot's collectedAt) so that daylight saving is the one
in force when the estate was collected. VMs whose snapshots start at the same UTC instant share a
slot, whatever zone their policies are written in. A weekly policy runs only on its days, so its slots
are days of the week as well (`weeklySlots`): a start late on Sunday in Berlin is a Saturday slot in UTC.

Consistency: an Enhanced policy may take only crash-consistent snapshots (`snapshotConsistencyType`
OnlyCrashConsistent): agentless restore points that use no VM agent, snapshot extension or VSS, so the
in-guest preconditions of an application-consistent snapshot do not apply to a VM it actively protects
(`agentless`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from backup_preflight.estate.index import Index, Reader, Row, props, strings, vault_name

#: Scheduled backups run: configured (or being configured or updated), or failing but still scheduled
#: (ProtectionError: "error during protection"). RetentionSchedulesSuspended, a state of Backup vaults'
#: CurrentProtectionState and no ProtectionState of a VM's item in the Recovery Services API, is in neither set:
#: no document says whether backups run in it, so an item in it is unknown, never counted as protecting.
ACTIVE_STATES = frozenset({"protected", "irpending", "protectionerror", "protectionconfigured",
                           "configuringprotection", "updatingprotection"})
#: No scheduled backup runs: stopped (BackupsSuspended is "stop backup, retain data"), paused,
#: soft-deleted or being soft-deleted, never configured.
INACTIVE_STATES = frozenset({"protectionstopped", "protectionpaused", "backupssuspended", "backupschedulessuspended",
                             "softdeleted", "softdeleting", "configuringprotectionfailed", "notprotected",
                             "invalid"})


def backup_facts(vm_id: str, index: Index, reasons: dict[str, str]) -> dict[str, Any] | None:
    """Protection facts for one VM; None when recoveryservicesresources was not collected.

    An item whose first backup has not run reports lastBackupStatus "" (Azure's example of a VM just protected:
    protectionState IRPending, lastBackupStatus "", lastBackupTime 2001-01-01T00:00:00Z): that is no status, so
    the fact stays absent and `reasons` says why, never a status a check could pass.
    """
    if "recoveryservicesresources" not in index.collected:
        return None
    items = index.protected_items.get(vm_id)
    if not items:
        return {"protected": False, "state": "no protected item in any vault in scope"}
    judged = _judged(items)
    (active, _), item = judged[0]
    p = props(item)
    facts: dict[str, Any] = {"itemId": item["id"], **strings(p, (
        "policyId", "policyName", "lastBackupStatus", "lastBackupTime", "protectionState", "healthStatus"))}
    if active is not None:
        facts["protected"] = active
    if facts.get("lastBackupStatus") == "":
        del facts["lastBackupStatus"]
        state = facts.get("protectionState") or "not reported"
        reasons.setdefault("backup.lastBackupStatus", Reader("recoveryservicesresources", item["id"], reasons).say(
            f"properties.lastBackupStatus is empty: no backup has run yet (protectionState {state})"))
    vault = vault_name(item["id"])
    if vault:
        facts["vault"] = vault
    facts["state"] = "; ".join(f"{s} in vault {vault_name(i['id']) or '?'}"
                               for (_, s), i in judged)
    policy_id = p.get("policyId")
    key = policy_id.lower() if isinstance(policy_id, str) else None
    policy = index.backup_policies.get(key) if key else None
    if policy is not None:
        schedule = index.schedules.get(key)  # a few policies serve thousands of VMs: derive once
        if schedule is None:
            schedule = index.schedules[key] = schedule_facts(policy, index.reference)
        facts.update(schedule)
        if active:
            facts["agentless"] = str(schedule.get("snapshotConsistencyType", "")).lower() == "onlycrashconsistent"
    return facts


def item_state(item: Row) -> tuple[bool | None, str]:
    """(protects?, state name) of one protected item; None when its state is missing or undocumented.

    Both `protectionState` (REST) and `currentProtectionState` (added by Resource Graph) are read;
    either one saying the item does not protect wins, and `isScheduledForDeferredDelete` means soft-deleted.
    """
    p = props(item)
    states = [s for s in (p.get("currentProtectionState"), p.get("protectionState")) if isinstance(s, str) and s]
    if p.get("isScheduledForDeferredDelete") is True:
        return False, "SoftDeleted"
    stopped = next((s for s in states if s.lower() in INACTIVE_STATES), None)
    if stopped:
        return False, stopped
    if states and all(s.lower() in ACTIVE_STATES for s in states):
        return True, states[0]
    return None, states[0] if states else "no protection state reported"


def _judged(items: list[Row]) -> list[tuple[tuple[bool | None, str], Row]]:
    """Each item with its state, the one to judge first: active, then undecided, then inactive;
    the latest backup, then the id, break ties, so the row order never matters."""
    judged = sorted(((item_state(i), i) for i in items), key=lambda j: j[1]["id"].lower())
    judged.sort(key=lambda j: str(props(j[1]).get("lastBackupTime") or ""), reverse=True)
    judged.sort(key=lambda j: 0 if j[0][0] else 1 if j[0][0] is None else 2)
    return judged


def schedule_facts(policy: Row, reference: datetime | None) -> dict[str, Any]:
    """Frequency, time zone, local start, a readable schedule and the UTC slots of a backup policy."""
    p = props(policy)
    schedule = p.get("schedulePolicy") if isinstance(p.get("schedulePolicy"), dict) else {}
    facts: dict[str, Any] = {}
    v2 = p.get("policyType") == "V2" or str(schedule.get("schedulePolicyType", "")).endswith("V2")
    facts["policyType"] = "V2" if v2 else "V1"
    consistency = p.get("snapshotConsistencyType")
    if isinstance(consistency, str) and consistency:
        facts["snapshotConsistencyType"] = consistency
    frequency = schedule.get("scheduleRunFrequency")
    if isinstance(frequency, str):
        facts["frequency"] = frequency
    zone = p.get("timeZone") if isinstance(p.get("timeZone"), str) and p.get("timeZone") else "UTC"
    facts["timeZone"] = zone
    starts, description = local_starts(schedule)
    if not starts:
        return facts
    facts["scheduleTime"] = starts[0]
    facts["schedule"] = f"{description} {zone}"
    days = run_days(schedule, frequency)
    if days is not None and len(days) < len(WEEKDAYS):
        facts["schedule"] = f"on {', '.join(WEEKDAYS[d] for d in days)} {description} {zone}"
    instants = [utc_instant(zone, start, reference) for start in starts]
    if None in instants:  # zone unknown, or no reference instant to take daylight saving at
        return facts
    known = [t for t in instants if t is not None]
    facts["slots"] = sorted({f"{t:%H:%M} UTC" for t in known})
    if days is not None:  # a weekly policy whose days cannot be read: on which days its slots fall is not known
        facts["weeklySlots"] = week_slots(known, zone, days)
    facts["scheduleHourUtc"] = known[0].hour
    return facts


#: Azure's names of the days of the week (DayOfWeek), Monday first as `datetime.weekday()` counts them.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_NUMBERS = {name.lower(): number for number, name in enumerate(WEEKDAYS)}


def run_days(schedule: dict[str, Any], frequency: Any) -> tuple[int, ...] | None:
    """The local days of the week (0 is Monday) a policy runs on: every day unless it is weekly, else the days of
    its `weeklySchedule` (V2) or `scheduleRunDays` (V1); None for a weekly policy with no day that reads as one."""
    weekly = schedule.get("weeklySchedule")
    is_weekly = (frequency.lower() == "weekly" if isinstance(frequency, str)
                 else isinstance(weekly, dict) and not isinstance(schedule.get("dailySchedule"), dict))
    if not is_weekly:
        return tuple(range(len(WEEKDAYS)))
    named = (weekly if isinstance(weekly, dict) else schedule).get("scheduleRunDays")
    if not isinstance(named, list):
        return None
    if any(not isinstance(d, str) or d.lower() not in _DAY_NUMBERS for d in named):
        return None  # a day Azure does not name: which days it runs on is not guessed
    days = tuple(sorted({_DAY_NUMBERS[d.lower()] for d in named}))
    return days or None


def week_slots(instants: list[datetime], zone_name: str, days: tuple[int, ...]) -> list[str]:
    """'Sunday 01:00 UTC' for every start on every local run day, in the order of the week: a start whose UTC
    date is not its local date (late on Sunday in Berlin, early on Monday in Sydney) moves to that day."""
    zone = _zone(zone_name) or UTC  # the instants were taken in it, so it is known
    slots = {((day + (t.date() - t.astimezone(zone).date()).days) % 7, f"{t:%H:%M}") for t in instants
             for day in days}
    return [f"{WEEKDAYS[day]} {hhmm} UTC" for day, hhmm in sorted(slots)]


def local_starts(schedule: dict[str, Any]) -> tuple[list[str], str]:
    """Local HH:MM of every snapshot start in a day, and a readable description of the schedule.

    An hourly window starting at S with interval I and duration D starts a snapshot at S + k·I
    for every k with k·I < D (a 24-hour window every 4 hours is six snapshots).
    """
    hourly = schedule.get("hourlySchedule")
    if isinstance(hourly, dict):
        start = _hhmm(hourly.get("scheduleWindowStartTime"))
        interval, duration = hourly.get("interval"), hourly.get("scheduleWindowDuration")
        if start is None or not _positive(interval) or not _positive(duration):
            return [], ""
        minutes = int(start[:2]) * 60 + int(start[3:])
        starts = [(minutes + k * interval * 60) % 1440 for k in range(-(-duration // interval))]
        return ([f"{m // 60:02d}:{m % 60:02d}" for m in starts],
                f"every {interval}h for {duration}h from {start}")
    for holder in (schedule.get("dailySchedule"), schedule.get("weeklySchedule"), schedule):
        if isinstance(holder, dict):
            times = holder.get("scheduleRunTimes")
            if isinstance(times, list) and times:
                starts = [t for t in (_hhmm(v) for v in times) if t is not None]
                return starts, f"at {', '.join(starts)}"
    return [], ""


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 24


def _hhmm(value: Any) -> str | None:
    """'2018-01-24T02:00:00Z' or '02:00' → '02:00'."""
    if not isinstance(value, str):
        return None
    clock = value.split("T", 1)[1] if "T" in value else value
    parts = clock.split(":")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1][:2].isdigit()):
        return None
    hours, minutes = int(parts[0]), int(parts[1][:2])
    return f"{hours:02d}:{minutes:02d}" if hours < 24 and minutes < 60 else None


@cache
def _zone(name: str) -> ZoneInfo | None:
    iana = "UTC" if name.upper() in ("UTC", "COORDINATED UNIVERSAL TIME") else win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc_instant(zone_name: str, hhmm: str, reference: datetime | None) -> datetime | None:
    """The UTC instant of `hhmm` in `zone_name` on the reference instant's local date.

    None when the zone is unknown or there is no reference instant (daylight saving cannot be decided).
    """
    zone = _zone(zone_name)
    if zone is None or reference is None:
        return None
    day = reference.astimezone(zone)
    local = datetime(day.year, day.month, day.day, int(hhmm[:2]), int(hhmm[3:5]), tzinfo=zone)
    return (local - (local.utcoffset() or timedelta())).replace(tzinfo=UTC)

