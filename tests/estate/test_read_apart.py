"""A snapshot file read by two processes (`parts.read_split` with more than one job) is placed exactly as one
reader places it, and whatever one reader would say of a file, two say by reading it again alone.

The oracle is `Split(RowReader(path))`, the one reader every other test of parts pins down. The second
reader starts where `row_lines.table_near` finds a table; here it is also made to start at every table of
the file in turn, so the joining of the two halves is checked at each place it can happen.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import signal
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backup_preflight import demo, row_lines
from backup_preflight.errors import InputError
from backup_preflight.estate import parts
from backup_preflight.estate.parts import Split, read_split
from backup_preflight.snapshot import RowReader
from scan_helpers import write_row_lines

from cli_helpers import run

APART = "was read by two processes"
AGAIN = "is read again by one process"


@pytest.fixture(autouse=True)
def any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts, "APART_BYTES", 0)


def placed(split: Split) -> dict[str, Any]:
    """Everything a Split keeps of the file, with each row's place (offset, length, line) by subscription and
    table name; closed once read."""
    try:
        return {"places": {unit: {split.tables[t]: sorted(zip(p.offsets, p.lengths, p.lines, strict=True))
                                  for t, p in by_table.items()} for unit, by_table in split._places.items()},
                "vms": dict(split.vms), "classes": split.classes(), "tables": split.tables, "counts": split.counts,
                "header": msgspec.to_builtins(split.header.to_document()),
                "sources": msgspec.to_builtins(split.header.sources)}
    finally:
        split.close()


def one_reader(path: Path) -> dict[str, Any]:
    return placed(Split(RowReader(path)))


def table_starts(path: Path) -> list[int]:
    """Where each table's line starts, but the first table's."""
    data = path.read_bytes()
    return [m.start() + 1 for m in re.finditer(b'\n"', data)][1:]


def estate(**kwargs: Any) -> dict[str, Any]:
    return demo.generate(40, seed=3, subscriptions=4, **kwargs)


def test_two_readers_place_the_rows_as_one_does(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")
    with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"):
        two = placed(read_split(path, 2))
    size = path.stat().st_size
    with path.open("rb") as handle:
        start = row_lines.table_near(handle.fileno(), size)
    assert start is not None and path.read_bytes()[start - 1:start + 1] == b'\n"'
    assert caplog.messages == [f"{path} was read by two processes, the second from byte {start:,} of {size:,}"]
    assert two == one_reader(path)
    assert two["places"] and len(two["tables"]) > 2
    assert sum(two["vms"].values()) == 40  # each VM counted once, in its subscription


def test_the_second_reader_may_start_at_any_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    doc = estate()
    # The same rows again under another spelling of a table's name: one table to one reader, and rows that
    # name VMs (backup items, jobs) with copies in both halves, each copy's VM in another subscription.
    recovery = doc["tables"]["recoveryservicesresources"]
    moved = [json.loads(json.dumps(r).replace(r["id"].split("/")[2], "0" * 8 + r["id"].split("/")[2][8:], 1))
             for r in recovery[:5]]
    doc["tables"]["RecoveryServicesResources"] = [*recovery[5:8], *moved]
    vms = [r for r in doc["tables"]["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines"]
    doc["tables"]["Resources"] = [json.loads(json.dumps(vm).replace(vm["id"].split("/")[2], "f" * 36))
                                  for vm in vms[:3]]  # VMs of a subscription only the second reader sees
    path = write_row_lines(doc, tmp_path / "s.json")
    expected = one_reader(path)
    starts = table_starts(path)
    assert len(starts) == len(doc["tables"]) - 1
    for start in starts:
        monkeypatch.setattr(parts, "table_near", lambda fd, size, start=start: start)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"):
            assert placed(read_split(path, 2)) == expected, start
        assert APART in caplog.text


@pytest.mark.parametrize("where", ["in both halves", "both in the second half"])
def test_copies_join_their_subscriptions_as_one_reader_joins_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  where: str) -> None:
    doc = estate()
    protected = next(r for r in doc["tables"]["recoveryservicesresources"]
                     if r["type"].lower().endswith("/protecteditems"))
    vms = [r for r in doc["tables"]["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines"]
    mine = protected["properties"]["sourceResourceId"].split("/")[2]
    other = next(vm for vm in vms if vm["id"].split("/")[2] != mine)
    copy = json.loads(json.dumps(protected))
    copy["properties"]["sourceResourceId"] = other["id"]
    # the same row, by its lowercase table and id; a copy that names its own VM first joins nothing by itself
    doc["tables"]["RECOVERYSERVICESRESOURCES"] = [copy] if where == "in both halves" else [protected, copy]
    path = write_row_lines(doc, tmp_path / "s.json")
    expected = one_reader(path)
    assert any({mine, other["id"].split("/")[2]} <= c for c in expected["classes"])
    monkeypatch.setattr(parts, "table_near", lambda fd, size: table_starts(path)[-1])
    assert placed(read_split(path, 2)) == expected


def broken(doc: dict[str, Any], table: str) -> dict[str, Any]:
    doc["tables"][table][1] = {"id": 7, "type": "microsoft.compute/virtualmachines"}
    doc["tables"][table][2] = ["not", "a", "row"]
    return doc


def test_a_row_that_looks_like_a_table_to_the_second_reader_is_reported_as_one_reader_reports_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that is a JSON string starts its line as a table does: the second reader takes it for another
    layout, one reader for a row that is not an object."""
    doc = estate()
    doc["tables"]["metrics"][3] = "not a row"
    path = write_row_lines(doc, tmp_path / "s.json")
    data = path.read_bytes()
    monkeypatch.setattr(parts, "table_near", lambda fd, size: data.index(b'"not a row"'))
    with pytest.raises(InputError) as alone:
        one_reader(path)
    with pytest.raises(InputError) as two:
        read_split(path, 2)
    assert two.value.problems == alone.value.problems


@pytest.mark.parametrize("table", ["resources", "metrics"], ids=["in the first half", "in the second"])
def test_a_row_with_problems_is_reported_as_one_reader_reports_it(tmp_path: Path, table: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = write_row_lines(broken(estate(), table), tmp_path / "s.json")
    with pytest.raises(InputError) as alone:
        one_reader(path)
    with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"), pytest.raises(InputError) as two:
        read_split(path, 2)
    assert two.value.problems == alone.value.problems and len(alone.value.problems) == 2
    assert AGAIN in caplog.text


@pytest.mark.parametrize("damage", [
    "a table named twice", "a table closed without the comma before another", "a blank line between tables",
    "text after the end", "a row that is not JSON"])
def test_another_layout_is_found_as_one_reader_finds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture, damage: str) -> None:
    """Each damaged where the second reader starts (the metrics table), which neither reader sees alone."""
    path = write_row_lines(estate(), tmp_path / "s.json")
    data = path.read_bytes()
    table = data.index(b'"metrics":[')
    if damage == "a table named twice":
        data = data.replace(b'"metrics":[', b'"guestfacts":[')  # rows any side table takes
    elif damage == "a table closed without the comma before another":
        data = data[:table - 3] + b"]\n" + data[table:]
    elif damage == "a blank line between tables":
        data = data[:table] + b"\n" + data[table:]
    elif damage == "text after the end":
        data += b"{}\n"
    else:
        at = data.index(b"\n", table) + 1
        data = data[:at] + b"{oops" + data[at:]
    path.write_bytes(data)
    start = data.rindex(b'"guestfacts":[') if damage == "a table named twice" else data.index(b'"metrics":[')
    with pytest.raises(row_lines.NotThisLayout):
        one_reader(path)
    monkeypatch.setattr(parts, "table_near", lambda fd, size: start)
    with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"), \
            pytest.raises(row_lines.NotThisLayout):
        read_split(path, 2)
    if damage == "a table closed without the comma before another":  # found by this process's reader
        assert caplog.messages == [f"{path} is read again by one process: NotThisLayout"]


def test_a_second_reader_that_dies_leaves_the_file_to_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")

    def killed(*_: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(parts, "_read_tail", killed)
    with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"):
        assert placed(read_split(path, 2)) == one_reader(path)
    assert caplog.messages == [
        f"{path} is read again by one process: the process reading the second half of a snapshot file was killed "
        "(SIGKILL; most often the kernel out of memory): fewer --jobs read a file in one process"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_job_or_a_gzip_file_is_read_by_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    plain = write_row_lines(estate(), tmp_path / "s.json")
    path = plain if jobs == 1 else tmp_path / "s.json.gz"
    path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0) if jobs == 2 else plain.read_bytes())
    monkeypatch.setattr(parts, "table_near", lambda fd, size: size // 2)  # as if a table began there
    with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"):
        assert placed(read_split(path, jobs)) == one_reader(path)
    assert APART not in caplog.text and AGAIN not in caplog.text


def test_a_row_broken_past_its_quick_check_names_its_line_in_the_second_half(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")
    data = path.read_bytes()
    at = data.index(b"\n", data.index(b'"metrics":[')) + 1
    line = data[:at].count(b"\n") + 1
    row = data[at:data.index(b"\n", at)]
    bad = re.sub(rb'("average":)[0-9.]+', rb"\g<1>1e999", row, count=1)
    assert bad != row
    path.write_bytes(data[:at] + bad + data[at + len(row):])
    monkeypatch.setattr(parts, "table_near", lambda fd, size: table_starts(path)[-3])  # before metrics
    split = read_split(path, 2)
    try:
        with pytest.raises(InputError) as caught:
            split.whole()
    finally:
        split.close()
    assert f"line {line}" in str(caught.value)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_naming_property_out_of_range_is_an_input_error_naming_its_line(tmp_path: Path, jobs: int) -> None:
    """A row placed by the VM it names is decoded only as far as its naming properties (parts._naming); one of
    them out of range, past the row's quick check, is said of the file as loading it whole says it: its line and
    column, exit 2, no report (it was an internal error, exit 4, before)."""
    path = write_row_lines(estate(), tmp_path / "s.json")
    data = path.read_bytes()
    at = data.index(b'"sourceResourceId":"')
    line = data[:at].count(b"\n") + 1
    path.write_bytes(data[:at] + re.sub(rb'^"sourceResourceId":"[^"]*"', b'"sourceResourceId":1e999', data[at:]))
    whole = run("scan", "--snapshot", path, "--output-dir", tmp_path / "whole", "--part-size", "0")
    done = run("scan", "--snapshot", path, "--output-dir", tmp_path / "out", "--part-size", "1", "--jobs", str(jobs))
    assert (done.returncode, whole.returncode) == (2, 2), done.stderr
    assert f"line {line} column" in done.stderr and "1e999 is not a JSON number" in done.stderr
    assert done.stderr == whole.stderr.replace(str(tmp_path / "whole"), str(tmp_path / "out"))
    assert "internal error" not in done.stderr and not (tmp_path / "out").exists()


# What table_near may give: a table line's start within a quarter of the file's size around its middle,
# one of the nearest to within a window; None only when there is none.
@given(st.lists(st.sampled_from([b"\n", b'"', b"x"]), max_size=120), st.integers(1, 9))
def test_a_table_line_is_found_near_the_middle(tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes],
                                               window: int) -> None:
    data = b"".join(pieces)
    path = tmp_path_factory.mktemp("near") / "f"
    path.write_bytes(data)
    size = len(data)
    middle, reach = size // 2, size // 4
    low, high = max(1, middle - reach), min(size, middle + reach)
    starts = [q + 1 for q in range(low, high) if data[q:q + 2] == b'\n"']
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(row_lines, "_WINDOW", window)
        fd = os.open(path, os.O_RDONLY)
        try:
            found = row_lines.table_near(fd, size)
        finally:
            os.close(fd)
    if not starts:
        assert found is None
    else:
        assert found in starts
        assert abs(found - middle) <= min(abs(s - middle) for s in starts) + window


def test_scan_reads_a_large_file_with_two_processes(tmp_path: Path) -> None:
    """The scan as a user runs it, on a file over APART_BYTES (64 MB): the same results as with one job."""
    path = tmp_path / "big.json"
    made = run("demo-estate", "--vms", "8000", "--output", path)
    assert made.returncode == 0, made.stderr
    assert path.stat().st_size > 64 << 20
    results = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        done = run("scan", "--snapshot", path, "--jobs", jobs, "--output-dir", out, "--fail-on", "never", "-v")
        assert done.returncode == 0, done.stderr
        assert (APART in done.stderr) == (jobs == "2")
        doc = json.loads((out / "results.json").read_text())
        del doc["scan"]["startedAt"], doc["scan"]["finishedAt"]
        results[jobs] = doc
    assert results["1"] == results["2"]


def test_a_closed_split_is_not_taken_for_an_empty_one(tmp_path: Path) -> None:
    """A scan closes the split once every part is judged (its places are 0.3 GB at 1,000,000 VMs); any use
    after that is an error, never an estate without rows."""
    split = read_split(write_row_lines(estate(), tmp_path / "s.json"), 1)
    assert split.units() and split.has(next(iter(split.units())))
    split.close()
    for use in (split.units, split.classes, lambda: split.has("x"), lambda: split.snapshot(["x"])):
        with pytest.raises(ValueError, match="closed"):
            use()
    assert split.counts["resources"] > 0


def test_a_file_of_apart_bytes_or_more_is_read_by_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")
    size = path.stat().st_size
    for least, apart in ((size, True), (size + 1, False)):
        monkeypatch.setattr(parts, "APART_BYTES", least)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="backup_preflight.estate.parts"):
            placed(read_split(path, 2))
        assert (APART in caplog.text) == apart, least


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the open files in /proc")
@pytest.mark.parametrize("least", [0, 1 << 40], ids=["read by two", "too small for two"])
def test_the_file_is_opened_once_and_closed_with_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           least: int) -> None:
    path = write_row_lines(estate(), tmp_path / "s.json")
    monkeypatch.setattr(parts, "APART_BYTES", least)
    before = open_files()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        split = read_split(path, 2)  # a file opened again and left to the collector would warn here
        assert open_files() == before + 1  # the snapshot file, which rows are read back from
        split.close()
    assert open_files() == before
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
