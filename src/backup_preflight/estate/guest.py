"""Facts from inside the guest and from monitoring: probe results, Machine Configuration, metrics."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from backup_preflight.estate.index import Index, Reader, has_type, props, row_name, strings
from backup_preflight.timestamps import utc_hour

CPU_METRIC = "percentage cpu"
MEMORY_AVAILABLE_METRIC = "available memory percentage"
#: String forms probes really emit for booleans: PowerShell and JSON text "true"/"false", and the
#: registry's REG_SZ "TRUE" / "1" for USEVSSCOPYBACKUP (`REG ADD ... /d TRUE`).
_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}


@cache
def guest_types() -> dict[str, str]:
    """The probe facts and their JSON types, read from facts.schema.json: the schema is the contract."""
    schema = json.loads(resources.files("backup_preflight.estate").joinpath("facts.schema.json").read_text("utf-8"))
    return {key: spec["type"] for key, spec in schema["properties"]["guest"]["properties"].items()
            if key != "collectedAt"}


def guest_facts(vm_id: str, index: Index, reasons: dict[str, str]) -> dict[str, Any] | None:
    """Known probe facts for the VM, each checked against its schema type; None when no probe reported.

    null means "not reported" and leaves the fact out (unknown); documented text forms of booleans
    are normalised; any other wrong type leaves the fact out with a reason naming the row.
    """
    row = index.guest_facts.get(vm_id)
    if row is None:
        return None
    reader = Reader("guestfacts", None, reasons)
    raw = reader.get(row, "facts", "object", "guest")
    if raw is None:
        return None
    facts: dict[str, Any] = {}
    for key, kind in guest_types().items():
        value = raw.get(key)
        if kind == "boolean" and isinstance(value, str):
            value = _BOOLEAN_TEXT.get(value.strip().lower(), value)
        if value is None:
            continue
        if has_type(value, kind):
            facts[key] = value
        else:
            reader.wrong(f"guest.{key}", f"facts.{key}", value, f"a {kind}" if kind != "boolean" else "true or false")
    collected = reader.get(row, "collectedAt", "string", "guest.collectedAt")
    if collected is not None:
        facts["collectedAt"] = collected
    return facts


def machine_configuration(vm_id: str, index: Index) -> list[dict[str, Any]] | None:
    """The VM's guest configuration assignments; None when the table was not collected.

    `configurationName` is the configuration (package) an assignment runs, whatever the assignment is called:
    its `properties.guestConfiguration.name`, else the assignment's name without the `$pid<hash>` that Azure
    Policy appends to the assignments it deploys (`[concat('<ConfigurationName>$pid', uniqueString(...))]` in
    Microsoft's GuestConfiguration module, New-GuestConfigurationPolicyGuestAssignmentNameReference.ps1).
    """
    if "guestconfigurationresources" not in index.collected:
        return None
    out = []
    for row in index.assignments.get(vm_id, ()):
        name = row_name(row)
        p = props(row)
        configuration = strings(p.get("guestConfiguration"), ("name",)).get("name")
        out.append({"name": name, "configurationName": configuration or _without_pid(name),
                    **strings(p, {"complianceStatus": "complianceStatus",
                                  "lastComplianceStatusChecked": "lastChecked"})})
    return out


def _without_pid(name: str) -> str:
    """An assignment name without the `$pid<hash>` suffix Azure Policy gives the assignments it deploys."""
    cut = name.lower().find("$pid")
    return name[:cut] if cut > 0 else name


#: Azure Backup triggers a scheduled VM backup within 2 hours of its scheduled time (Azure VM backup FAQ: "What
#: is the maximum delay I can expect in backup start time"), so the snapshot may start at any time in that window.
START_WINDOW_MINUTES = 120


def start_hours(slots: list[str]) -> list[int]:
    """Every UTC hour in which a backup scheduled at one of `slots` ("HH:MM UTC") may start, ascending.

    A backup scheduled at 02:00 starts by 04:00: the pressure of 03:00-03:59 counts as much as that
    of 02:00-02:59 (02:30 reaches into hour 04).
    """
    hours: set[int] = set()
    for slot in slots:
        start = int(slot[:2]) * 60 + int(slot[3:5])
        hours.update(h % 24 for h in range(start // 60, (start + START_WINDOW_MINUTES - 1) // 60 + 1))
    return sorted(hours)


def pressure_facts(vm_id: str, index: Index, backup_hours: list[int],
                   reasons: dict[str, str]) -> dict[str, Any] | None:
    """Peak CPU and memory use in every UTC hour in which a backup may start (`start_hours`: each start's hour and
    those up to 2 hours later, for a daily policy's time or each interval of an hourly one), over every collected day.

    The peak is each sample's maximum (CPU) or minimum (available memory); a series that carries
    only averages is read from them. A value of the wrong type makes that peak unknown, never
    replaced by the average.
    """
    series = index.metrics.get(vm_id)
    if not series or not backup_hours:
        return None
    facts: dict[str, Any] = {"backupHourUtc": backup_hours[0], "backupHoursUtc": backup_hours}
    hours = frozenset(backup_hours)
    samples = 0
    for row in series:
        name = row.get("name").lower() if isinstance(row.get("name"), str) else ""
        if name == CPU_METRIC:
            fact, key, pick = "cpuPeakPercent", "maximum", max
        elif name == MEMORY_AVAILABLE_METRIC:
            fact, key, pick = "memoryPeakPercent", "minimum", min
        else:
            continue
        reader = Reader(f"metrics '{row['name']}'", None, reasons)
        values = _hour_values(reader, row, hours, key, f"pressure.{fact}")
        if values:
            peak = pick(values)
            facts[fact] = peak if fact == "cpuPeakPercent" else round(100.0 - peak, 2)
            samples += len(values)
    facts["samples"] = samples
    return facts


def _hour_values(reader: Reader, row: dict[str, Any], hours: frozenset[int], key: str,
                 fact: str) -> list[float] | None:
    """The series' values in any of `hours` (UTC); None, with a reason, when a point cannot be read."""
    data = reader.get(row, "data", "array", fact) or []
    out: list[float] = []
    for i, point in enumerate(data):
        if not isinstance(point, dict):
            reader.wrong(fact, f"data[{i}]", point, "an object")
            return None
        hour = utc_hour(stamp := point.get("timeStamp"))
        if hour is None:
            reader.wrong(fact, f"data[{i}].timeStamp", stamp, "an ISO 8601 time")
            return None
        if hour not in hours:
            continue
        field = key if key in point else "average"  # series that carry only averages
        value = point.get(field)
        if value is None:
            continue  # no sample in that interval
        if not has_type(value, "number"):
            reader.wrong(fact, f"data[{i}].{field}", value, "a number")
            return None
        out.append(float(value))
    return out
