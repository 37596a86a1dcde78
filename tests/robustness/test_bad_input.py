"""Hostile and broken inputs end to end: each one is a one-line input error (exit 2), never a hang,
a traceback or a report (docs/robustness.md lists them)."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import row_lines, snapshot

from arg import snapshot_doc, vm_row
from cli_helpers import run


def scan(tmp_path: Path, *args: str | Path) -> tuple[int, str]:
    out = tmp_path / "reports"
    proc = run("scan", *args, "--output-dir", out, cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert not out.exists(), "an input error must leave no report"
    return proc.returncode, proc.stderr



def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "snap.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    code, err = scan(tmp_path, "--snapshot", fifo)
    assert code == 2 and f"{fifo}: is a FIFO (named pipe)" in err
    assert time.monotonic() - started < 60  # no writer ever comes: it must not wait for one


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), (".", "a directory")])
def test_devices_and_folders_are_refused(tmp_path: Path, path: str, kind: str) -> None:
    code, err = scan(tmp_path, "--snapshot", path)
    assert code == 2 and f"is {kind}" in err


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.json.gz"
    # 64 MiB of blanks inside a valid JSON array compresses to about 64 KiB.
    with gzip.open(bomb, "wb") as out:
        out.write(b"[")
        for _ in range(64):
            out.write(b" " * (1 << 20))
        out.write(b"]")
    assert bomb.stat().st_size < 1 << 20
    code, err = scan(tmp_path, "--snapshot", bomb, "--max-input-size", "8M")
    assert code == 2 and "decompresses to more than 8 MiB (--max-input-size)" in err
    # The same file under the default limit is read (an empty array of rows: nothing to assess).
    code, _ = scan(tmp_path, "--snapshot", bomb)
    assert code == 3


def test_max_input_size_applies_to_plain_files_and_before_the_command(tmp_path: Path) -> None:
    snap = tmp_path / "big.json"
    snap.write_text(json.dumps(snapshot_doc([vm_row(f"vm{i}") for i in range(200)])))
    assert snap.stat().st_size > 64 * 1024  # the bundled policies are far smaller
    proc = run("--max-input-size", "64K", "scan", "--snapshot", snap, "--output-dir", tmp_path / "r")
    assert proc.returncode == 2
    assert proc.stderr == f"backup-preflight: error: {snap}: larger than 64 KiB (--max-input-size)\n"
    proc = run("scan", "--snapshot", snap, "--max-input-size", "lots", "--output-dir", tmp_path / "r")
    assert proc.returncode == 2 and "expected a size like 4GiB" in proc.stderr


def test_deep_nesting_is_an_input_error(tmp_path: Path) -> None:
    doc = snapshot_doc([vm_row("vm1")])
    text = json.dumps(doc).replace('"errors": []', '"errors": [' + "[" * 100_000 + "]" * 100_000 + "]")
    path = tmp_path / "deep.json"
    path.write_text(text)
    code, err = scan(tmp_path, "--snapshot", path)
    assert code == 2 and f"{path}: nested too deeply" in err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_with_their_place(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "metrics.json"
    doc = snapshot_doc([vm_row("vm1")], metrics=[{"id": vm_row("vm1")["id"], "name": "Percentage CPU",
                                                  "data": [{"timeStamp": "2026-11-20T02:00:00Z", "maximum": 1}]}])
    text = json.dumps(doc, indent=1).replace('"maximum": 1', f'"maximum": {literal}')
    path.write_text(text)
    line = text[:text.index(literal)].count("\n") + 1
    code, err = scan(tmp_path, "--snapshot", path)
    assert code == 2 and f"{path}: line {line} column" in err and f"{literal} is not a JSON number" in err


def test_non_finite_numbers_in_policies_and_parameters_are_refused(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"maximumCpuPercent": NaN}')
    code, err = scan(tmp_path, "--demo", "--parameters", params)
    assert code == 2 and f"{params}: line 1 column 23: NaN is not a JSON number" in err
    for text in ("nan", "inf", "-Infinity"):
        code, err = scan(tmp_path, "--demo", "--param", f"maximumCpuPercent={text}")
        assert code == 2 and "NaN and infinities cannot be compared; give a finite number" in err, text
    code, err = scan(tmp_path, "--demo", "--param", "VMBK-NET-001.ports=[443, NaN]")
    assert code == 2 and "NaN" in err


def test_a_lone_surrogate_is_an_input_error_naming_its_place(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    text = json.dumps(snapshot_doc([vm_row("vm1")]), indent=1).replace('"vm1"', '"vm\\ud800x"', 1)
    path.write_text(text)
    line = text[:text.index("\\ud800")].count("\n") + 1
    code, err = scan(tmp_path, "--snapshot", path)
    assert code == 2 and f"{path}: line {line} column" in err and "lone UTF-16 surrogate \\ud800" in err
    # A proper pair (an emoji) is text like any other.
    path.write_text(text.replace("\\ud800x", "\\ud83d\\ude00"))
    code, _ = scan(tmp_path, "--snapshot", path)
    assert code in (0, 1)


def test_error_entries_that_are_not_objects_are_input_errors(tmp_path: Path) -> None:
    doc = snapshot_doc([vm_row("vm1")])
    doc["errors"] = ["boom", {"scope": "sub", "message": "throttled"}]
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    code, err = scan(tmp_path, "--snapshot", path)
    assert code == 2 and f"{path}: /errors/0: expected an error object, found a string" in err


def both_layouts(tmp_path: Path, **header: Any) -> list[Path]:
    """A snapshot whose header fields are replaced by `header`, as one document read whole and as a file laid
    out one row per line (read a row at a time): both must refuse the same header the same way."""
    doc = {**snapshot_doc([vm_row("vm1")]), **header}
    whole, rows = tmp_path / "whole.json", tmp_path / "rows.json"
    whole.write_text(json.dumps(doc, indent=1))
    tables = doc.pop("tables")
    rows.write_bytes(b"".join(row_lines.encode(doc, tables)))
    assert snapshot._read_row_lines(rows) is not None and snapshot._read_row_lines(whole) is None
    return [whole, rows]


@pytest.mark.parametrize(("value", "found"), [("yesterday", "'yesterday'"), ("2026-13-45T00:00:00Z", "'2026-13-45"),
                                              ("", "''"), (5, "a number")])
def test_a_collected_at_that_is_no_time_is_an_input_error(tmp_path: Path, value: Any, found: str) -> None:
    """It was ignored: the scan's clock stood in for it (VMBK-SCHED-001's daylight saving with it) and the reports
    printed the bogus value as the collection time."""
    for path in both_layouts(tmp_path, collectedAt=value):
        code, err = scan(tmp_path, "--snapshot", path)
        assert code == 2 and err.count("\n") == 1
        assert err.startswith(f"backup-preflight: error: {path}: /collectedAt: expected an ISO 8601 date and time")
        assert f"found {found}" in err


@pytest.mark.parametrize("value", [None, "2026-11-20T07:00:00+01:00", "2026-11-20T06:00:00"])
def test_a_collected_at_that_is_null_or_a_time_is_read(tmp_path: Path, value: Any) -> None:
    for path in both_layouts(tmp_path, collectedAt=value):
        code, err = scan(tmp_path, "--snapshot", path)
        assert code in (0, 1, 3), err


@pytest.mark.parametrize(("scope", "problem"), [
    ({"subscriptions": None}, "/scope/subscriptions: expected a string or an array of strings, found null"),
    ({"managementGroups": 5}, "/scope/managementGroups: expected a string or an array of strings, found a number"),
    ({"subscriptions": ["s1", -1.5]}, "/scope/subscriptions/1: expected a string, found a number"),
    (5, "/scope: expected an object, found a number"),
    ([], "/scope: expected an object, found an array"),
])
def test_a_scope_of_the_wrong_shape_is_an_input_error(tmp_path: Path, scope: Any, problem: str) -> None:
    """A value inside the scope that is not a name or a list of names crashed report.html (exit 4); an empty
    array or another empty value stood for no scope."""
    for path in both_layouts(tmp_path, scope=scope):
        code, err = scan(tmp_path, "--snapshot", path)
        assert (code, err) == (2, f"backup-preflight: error: {path}: {problem}\n")


@pytest.mark.parametrize("scope", [None, {}, {"subscriptions": "s1"},
                                   {"subscriptions": ["s1"], "managementGroups": [], "tenant": "t1"}])
def test_a_scope_of_names_or_lists_of_names_is_read(tmp_path: Path, scope: Any) -> None:
    for path in both_layouts(tmp_path, scope=scope):
        code, err = scan(tmp_path, "--snapshot", path)
        assert code in (0, 1, 3), err
        assert json.loads((tmp_path / "reports" / "results.json").read_text())["scan"]["scope"] == (scope or {})


def test_a_schema_version_of_true_is_refused(tmp_path: Path) -> None:
    """true == 1 in Python: a snapshot of version `true` was read as version 1."""
    for path in both_layouts(tmp_path, schemaVersion=True):
        code, err = scan(tmp_path, "--snapshot", path)
        assert (code, err) == (2, f"backup-preflight: error: {path}: /schemaVersion: unsupported snapshot "
                                  "schemaVersion true, expected 1\n")
