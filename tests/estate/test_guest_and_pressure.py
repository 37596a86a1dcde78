"""Guest probe facts and the CPU/memory pressure in the hours backups may start (estate/guest.py), from
rows in the shapes the probes and Azure Monitor return, including the odd ones."""

from __future__ import annotations

from typing import Any

import pytest

from backup_preflight.estate.guest import start_hours

from arg import backup_policy_v1, facts_by_name, protected_item, snapshot_doc, vm_row


def guest_of(facts: Any, collected_at: Any = "2026-11-20T05:00:00Z") -> dict[str, Any]:
    vm = vm_row("vm1")
    row: dict[str, Any] = {"id": vm["id"].upper(), "facts": facts}
    if collected_at is not None:
        row["collectedAt"] = collected_at
    return facts_by_name(snapshot_doc([vm], guestfacts=[row]))["vm1"]


def test_every_known_probe_fact_is_kept_by_its_schema_type_and_unknown_ones_are_dropped() -> None:
    probe = {"dhcpEnabled": " False ", "httpProxy": "http://proxy:3128", "useVssCopyBackup": "1",
             "iaasVmProviderService": "Running", "dhcpSource": "10.0.0.1", "defaultRouteInterface": "eth0",
             "agentServiceState": "Running", "agentVersion": "2.11.1.4", "wireServerReachable": True,
             "storageReachable": "0", "storageEndpoint": "x.blob.core.windows.net", "somethingElse": 1}
    f = guest_of(probe)
    assert f["guest"] == {**{k: v for k, v in probe.items() if k != "somethingElse"}, "dhcpEnabled": False,
                          "useVssCopyBackup": True, "storageReachable": False, "collectedAt": "2026-11-20T05:00:00Z"}
    assert "unknownReasons" not in f or not any(k.startswith("guest") for k in f["unknownReasons"])


def test_wrong_types_are_left_out_naming_the_row_and_the_expected_type() -> None:
    f = guest_of({"dhcpEnabled": "maybe", "httpProxy": 3128, "storageReachable": True}, collected_at=20261120)
    row = "the VM's guestfacts row"
    assert f["guest"] == {"storageReachable": True}
    assert f["unknownReasons"] == {
        "guest.dhcpEnabled": f"{row}: facts.dhcpEnabled is a string, expected true or false",
        "guest.httpProxy": f"{row}: facts.httpProxy is a number, expected a string",
        "guest.collectedAt": f"{row}: collectedAt is a number, expected a string",
        "backupExtension.installed": f["unknownReasons"]["backupExtension.installed"]}


def test_a_probe_row_without_facts_is_no_guest_fact() -> None:
    assert "guest" not in guest_of(None)
    assert "guest" not in facts_by_name(snapshot_doc([vm_row("vm1")]))["vm1"]


def pressure(cpu: list[Any], memory: list[Any] | None = None, time: str = "02:00") -> dict[str, Any]:
    vm = vm_row("vm1")
    policy = backup_policy_v1(time=f"2018-01-24T{time}:00Z", zone="UTC")
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": cpu}]
    if memory is not None:
        metrics.append({"id": vm["id"].lower(), "name": "AVAILABLE MEMORY PERCENTAGE", "data": memory})
    metrics.append({"id": vm["id"], "name": "Disk Read Bytes", "data": [{"timeStamp": 5}]})  # not read
    doc = snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy],
                       metrics=metrics)
    return facts_by_name(doc)["vm1"]


@pytest.mark.parametrize("stamp", ["2026-11-19 02:00:00Z", "2026-11-19T2", "2026-11-19Txx:00:00Z", None, 7])
def test_a_point_without_a_readable_hour_makes_the_peak_unknown(stamp: Any) -> None:
    f = pressure([{"timeStamp": "2026-11-19T02:00:00Z", "maximum": 10.0}, {"timeStamp": stamp, "maximum": 99.0}])
    assert "cpuPeakPercent" not in f["pressure"]
    assert f["unknownReasons"]["pressure.cpuPeakPercent"].startswith(
        "the VM's metrics 'Percentage CPU' row: data[1].timeStamp is ")
    assert f["unknownReasons"]["pressure.cpuPeakPercent"].endswith(", expected an ISO 8601 time")


def test_peaks_averages_and_samples() -> None:
    cpu = [{"timeStamp": "2026-11-19T02:00:00Z", "average": 35.0},  # a series with averages only
           {"timeStamp": "2026-11-18T02:59:00Z", "average": 20.0, "maximum": None},  # no sample in that interval
           {"timeStamp": "2026-11-18T04:00:00Z", "maximum": 99.0}]  # after the 2-hour start window
    memory = [{"timeStamp": "2026-11-19T02:00:00Z", "minimum": 12.333},
              {"timeStamp": "2026-11-18T02:00:00Z", "minimum": 40.0}]
    p = pressure(cpu, memory)["pressure"]
    assert p == {"backupHourUtc": 2, "backupHoursUtc": [2, 3], "cpuPeakPercent": 35.0, "memoryPeakPercent": 87.67,
                 "samples": 3}


def test_no_point_in_the_backup_hour_gives_no_peak_and_no_sample() -> None:
    p = pressure([{"timeStamp": "2026-11-19T04:00:00Z", "maximum": 99.0}], [], time="02:00")["pressure"]
    assert p == {"backupHourUtc": 2, "backupHoursUtc": [2, 3], "samples": 0}


@pytest.mark.parametrize(("time", "hours", "last", "after"), [
    ("02:00", [2, 3], 3, 4), ("02:30", [2, 3, 4], 4, 5), ("23:15", [0, 1, 23], 1, 2)])
def test_the_pressure_of_every_hour_a_backup_may_start_in_counts(time: str, hours: list[int], last: int,
                                                                 after: int) -> None:
    """Azure triggers a scheduled VM backup within 2 hours of its scheduled time (Azure VM backup FAQ): a
    peak in the last hour of that window can meet the snapshot, one in the hour after it cannot."""
    cpu = [{"timeStamp": f"2026-11-19T{hour:02}:00:00Z", "maximum": 97.0 if hour == last else 10.0}
           for hour in hours]
    cpu.append({"timeStamp": f"2026-11-19T{after:02}:00:00Z", "maximum": 99.0})
    memory = [{"timeStamp": f"2026-11-19T{last:02}:00:00Z", "minimum": 3.0},
              {"timeStamp": f"2026-11-19T{after:02}:00:00Z", "minimum": 1.0}]
    p = pressure(cpu, memory, time=time)["pressure"]
    assert p == {"backupHourUtc": hours[0], "backupHoursUtc": hours, "cpuPeakPercent": 97.0,
                 "memoryPeakPercent": 97.0, "samples": len(hours) + 1}


def test_a_point_that_is_not_an_object_makes_the_peak_unknown() -> None:
    f = pressure([{"timeStamp": "2026-11-19T02:00:00Z", "maximum": 10.0}], ["2026-11-19T02:00:00Z"])
    assert f["pressure"] == {"backupHourUtc": 2, "backupHoursUtc": [2, 3], "cpuPeakPercent": 10.0, "samples": 1}
    assert f["unknownReasons"]["pressure.memoryPeakPercent"] == (
        "the VM's metrics 'AVAILABLE MEMORY PERCENTAGE' row: data[0] is a string, expected an object")


def test_without_a_schedule_or_metrics_there_is_no_pressure_fact() -> None:
    vm = vm_row("vm1")
    metrics = [{"id": vm["id"], "name": "Percentage CPU", "data": [{"timeStamp": "2026-11-19T02:00:00Z",
                                                                   "maximum": 10.0}]}]
    assert "pressure" not in facts_by_name(snapshot_doc([vm], metrics=metrics))["vm1"]  # no backup, no hour
    policy = backup_policy_v1(zone="UTC")
    doc = snapshot_doc([vm], recoveryservicesresources=[protected_item(vm["id"], policy["id"]), policy], metrics=[])
    assert "pressure" not in facts_by_name(doc)["vm1"]


def test_hours_are_read_in_utc_whatever_offset_the_stamp_is_written_in() -> None:
    # 03:30+01:00 is 02:30 UTC, in the 02:00 UTC backup hour; 02:10+01:00 is 01:10 UTC, outside it although its
    # text says 02; 21:00-05:00 is 02:00 UTC the next day.
    cpu = [{"timeStamp": "2026-11-19T03:30:00+01:00", "maximum": 61.0},
           {"timeStamp": "2026-11-19T02:10:00+01:00", "maximum": 99.0},
           {"timeStamp": "2026-11-18T21:00:00.0000000-05:00", "maximum": 70.0},
           {"timeStamp": "2026-11-19T02:00:00.1234567Z", "maximum": 12.0}]
    p = pressure(cpu)["pressure"]
    assert (p["cpuPeakPercent"], p["samples"]) == (70.0, 3)
    assert pressure([{"timeStamp": "2026-11-19T02:10:00+01:00", "maximum": 99.0}])["pressure"]["samples"] == 0


def test_the_shortest_readable_time_stamp_and_a_boolean_sample() -> None:
    p = pressure([{"timeStamp": "2026-11-19T02", "maximum": 42.0}])["pressure"]
    assert (p["cpuPeakPercent"], p["samples"]) == (42.0, 1)
    f = pressure([{"timeStamp": "2026-11-19T02:00:00Z", "maximum": True}])
    assert "cpuPeakPercent" not in f["pressure"]
    assert f["unknownReasons"]["pressure.cpuPeakPercent"].endswith("data[0].maximum is a boolean, expected a number")


@pytest.mark.parametrize(("slots", "hours"), [
    (["02:00 UTC"], [2, 3]),          # started by 04:00: 02:00-03:59
    (["02:01 UTC"], [2, 3, 4]),       # by 04:01, a minute of hour 4
    (["02:59 UTC"], [2, 3, 4]),
    (["23:30 UTC"], [0, 1, 23]),      # past midnight
    (["08:00 UTC", "12:00 UTC"], [8, 9, 12, 13]),
    ([], []),
])
def test_the_hours_a_backup_may_start_in(slots: list[str], hours: list[int]) -> None:
    assert start_hours(slots) == hours
