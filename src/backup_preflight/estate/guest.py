"""Facts from inside the guest and from monitoring: probe results, Machine Configuration, metrics."""

from __future__ import annotations

from typing import Any

from backup_preflight.estate.index import Index, props, row_name, strings

GUEST_KEYS = ("dhcpEnabled", "httpProxy", "useVssCopyBackup", "iaasVmProviderService")
CPU_METRIC = "percentage cpu"
MEMORY_AVAILABLE_METRIC = "available memory percentage"


def guest_facts(vm_id: str, index: Index) -> dict[str, Any] | None:
    """Known probe facts for the VM; None when no probe reported on it."""
    row = index.guest_facts.get(vm_id)
    if row is None:
        return None
    raw = row["facts"]
    facts = {key: raw[key] for key in GUEST_KEYS if key in raw}
    if isinstance(row.get("collectedAt"), str):
        facts["collectedAt"] = row["collectedAt"]
    return facts


def machine_configuration(vm_id: str, index: Index) -> list[dict[str, Any]] | None:
    """The VM's guest configuration assignments; None when the table was not collected."""
    if "guestconfigurationresources" not in index.collected:
        return None
    out = []
    for row in index.assignments.get(vm_id, ()):
        out.append({"name": row_name(row), **strings(props(row), {
            "complianceStatus": "complianceStatus", "lastComplianceStatusChecked": "lastChecked"})})
    return out


def pressure_facts(vm_id: str, index: Index, backup_hour: int | None) -> dict[str, Any] | None:
    """Peak CPU and memory use in the UTC hour the backup starts, over every collected day."""
    series = index.metrics.get(vm_id)
    if not series or backup_hour is None:
        return None
    facts: dict[str, Any] = {"backupHourUtc": backup_hour}
    samples = 0
    for row in series:
        name = str(row.get("name", "")).lower()
        points = [p for p in row.get("data") or () if isinstance(p, dict) and _hour(p) == backup_hour]
        if name == CPU_METRIC:
            peaks = [_num(p, "maximum", "average") for p in points]
            peaks = [v for v in peaks if v is not None]
            if peaks:
                facts["cpuPeakPercent"] = max(peaks)
                samples += len(peaks)
        elif name == MEMORY_AVAILABLE_METRIC:
            lows = [_num(p, "minimum", "average") for p in points]
            lows = [v for v in lows if v is not None]
            if lows:
                facts["memoryPeakPercent"] = round(100.0 - min(lows), 2)
                samples += len(lows)
    facts["samples"] = samples
    return facts


def _hour(point: dict[str, Any]) -> int | None:
    stamp = point.get("timeStamp")
    if isinstance(stamp, str) and "T" in stamp:
        clock = stamp.split("T", 1)[1]
        if clock[:2].isdigit():
            return int(clock[:2])
    return None


def _num(point: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = point.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
