"""The one-row-per-line snapshot layout: a JSON document every reader takes, read back a line at a time.

The oracle is the standard library's `json.loads` of the whole text: the line reader must give the
same document, or decline (None) and leave the file to the whole-file reader, never another one.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backup_preflight import row_lines, scan, snapshot
from backup_preflight.errors import InputError
from backup_preflight.policy.loader import bundled_policy_dir, load_policies
from backup_preflight.results import Gate
from scan_helpers import estate, write_snapshot

scalars = st.none() | st.booleans() | st.integers() | st.text(alphabet='ab,]}{[:"\\\n\u2028 ', max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(alphabet="ab,]\n", max_size=3), inner, max_size=3), max_leaves=12)
rows = st.lists(values, max_size=5)
headers = st.dictionaries(st.sampled_from(["schemaVersion", "scope", "errors", "x,\n"]), values, min_size=1)
tables = st.dictionaries(st.text(alphabet='rs":[],\n', max_size=4), rows, max_size=4)


def text(header: dict[str, Any], tables: dict[str, list[Any]]) -> bytes:
    return b"".join(row_lines.encode(header, tables))


@given(headers, tables)
def test_the_layout_is_the_document_and_reads_back_line_by_line(header: dict[str, Any],
                                                                tables: dict[str, list[Any]]) -> None:
    data = text(header, tables)
    assert json.loads(data) == {**header, "tables": tables}
    assert row_lines.decode(data.split(b"\n")) == {**header, "tables": tables}


@given(headers, tables, st.data())
def test_an_edited_file_reads_as_json_reads_it_or_not_at_all(header: dict[str, Any], tables: dict[str, list[Any]],
                                                             data: st.DataObject) -> None:
    lines = text(header, tables).split(b"\n")
    at = data.draw(st.integers(0, len(lines) - 1))
    edit = data.draw(st.sampled_from(["drop", "repeat", "blank", "comma", "uncomma", "join", "garbage"]))
    line = lines[at]
    replaced = {"drop": [], "repeat": [line, line], "blank": [line, b""], "comma": [line + b","],
                "uncomma": [line.removesuffix(b",")], "join": [line + (lines[at + 1] if at + 1 < len(lines) else b"")],
                "garbage": [line + b" 1"]}[edit]
    edited = lines[:at] + replaced + lines[at + 1 + (edit == "join"):]
    try:
        expected = json.loads(b"\n".join(edited))
    except ValueError:
        expected = None
    got = row_lines.decode(edited)
    assert got is None or got == expected


@pytest.mark.parametrize("lines", [
    [b'{"schemaVersion":1}'],  # no tables line
    [b'{"schemaVersion":1,"tables":{', b'"resources":[', b"{},", b"]", b"}}"],  # comma before the end
    [b'{"schemaVersion":1,"tables":{', b'"resources":[', b"{}", b"{}", b"]", b"}}"],  # no comma between rows
    [b'{"schemaVersion":1,"tables":{', b'"a":[', b"],", b'"a":[', b"]", b"}}"],  # a table twice
    [b'{"schemaVersion":1,"tables":{', b'"a":[', b"]", b"}}", b"{}"],  # something after the end
    [b'{"schemaVersion":1,"tables":{', b'"a":[', b"],", b"}}"],  # a comma after the last table
    [b'{"schemaVersion":1,"tables":{', b'"a":[', b"]", b'"b":[', b"]", b"}}"],  # no comma between tables
    [b'{"tables":1,"tables":{', b"}}"],  # tables in the header too
    [b'{"schemaVersion":1,"tables":{', b'"a":[', b"{", b"}", b"]", b"}}"],  # a row over two lines
])
def test_anything_else_is_declined(lines: list[bytes]) -> None:
    assert row_lines.decode(lines) is None


def test_saved_snapshots_are_read_a_line_at_a_time_gzipped_or_not(tmp_path: Path) -> None:
    snap = snapshot.load(write_snapshot(tmp_path / "in.json", estate()))
    for name in ("out.json", "out.json.gz"):
        digest = snapshot.save(snap, tmp_path / name)
        streamed = snapshot._read_row_lines(tmp_path / name)
        assert streamed is not None and streamed[1] == digest
        again = snapshot.load(tmp_path / name)
        assert again.tables == snap.tables and again.sha256 == digest and again.sources[0].kind == "snapshot"


def test_gzip_members_one_after_another_are_one_text(tmp_path: Path) -> None:
    data = b"".join(snapshot.pieces(snapshot.load(write_snapshot(tmp_path / "in.json", estate()))))
    path = tmp_path / "two.json.gz"
    path.write_bytes(gzip.compress(data[:100]) + gzip.compress(data[100:]))
    assert snapshot._read_row_lines(path) is not None
    assert snapshot.load(path).tables == snapshot.load(tmp_path / "in.json").tables


def test_other_layouts_and_long_first_lines_are_read_whole(tmp_path: Path) -> None:
    pretty = write_snapshot(tmp_path / "pretty.json", estate())
    pretty.write_text(json.dumps(json.loads(pretty.read_bytes()), indent=2))
    one_line = tmp_path / "one.json"
    one_line.write_text(json.dumps(json.loads(pretty.read_bytes())) + " " * row_lines.MAX_HEADER)
    for path in (pretty, one_line):
        assert snapshot._read_row_lines(path) is None
        assert snapshot.load(path).tables == snapshot.load(tmp_path / "pretty.json").tables


def test_a_broken_row_is_named_by_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    lines = path.read_bytes().split(b"\n")
    column = lines[2].index(b'"id":') + len(b'"id" ') + 1  # where the colon should be, counted from 1
    lines[2] = lines[2].replace(b'"id":', b'"id" ', 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as caught:
        snapshot.load(path)
    assert [(p.place, p.reason) for p in caught.value.problems] == [
        (f"line 3 column {column}", "not valid JSON: Expecting ':' delimiter")]


def test_the_size_bound_holds_while_streaming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json.gz"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    stored, text = path.stat().st_size, len(gzip.decompress(path.read_bytes()))
    monkeypatch.setattr(snapshot.LIMITS, "max_input_size", (stored + text) // 2)
    with pytest.raises(InputError, match=r"decompresses to more than .* KiB"):
        snapshot._read_row_lines(path)


def test_read_a_row_at_a_time_the_bound_is_on_each_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    lines = path.read_bytes().split(b"\n")
    longest = max(len(line) for line in lines)
    monkeypatch.setattr(snapshot.LIMITS, "max_input_size", longest)  # the file is larger: rows are read anyway
    assert path.stat().st_size > longest
    assert sum(1 for _ in snapshot.RowReader(path).rows()) == sum(1 for line in lines[2:] if line.startswith(b"{"))
    monkeypatch.setattr(snapshot.LIMITS, "max_input_size", longest - 1)
    row = next(n for n, line in enumerate(lines, 1) if len(line) == longest)
    with pytest.raises(InputError, match=f"line {row}: longer than"):
        list(snapshot.RowReader(path).rows())


VM = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v9"


@pytest.mark.parametrize("line", [
    b'{"id":"' + VM.encode() + b'","type":"Microsoft.Compute/virtualMachines","properties":{"a":1}}',
    b'{"id":"' + VM.encode() + b'","type":"x","properties":null}',
    b'{"id":"' + VM.encode() + b'","type":"x"}',
    b'[1,2]', b'"text"', b"null", b"{}",
    b'{"id":"","type":"x"}', b'{"id":5,"type":"x"}', b'{"id":"/x","type":""}', b'{"id":"/x","type":7}',
    b'{"id":"/x","type":"t","properties":[1]}', b'{"id":"/x","type":"t","properties":"p"}',
    b'{"id":"/x","type":"t","properties":{"a":"\xc3\xa9"}}',
    b'{"id":"/x","type":"t","other":"\xff"}',
    b'{"id":"/x","type":"t","other":1e999}',
    b'{"id":"/x","type":"t","properties":{"a":1e999}}',
])
@pytest.mark.parametrize("table", ["resources", "instanceviews"])
def test_a_row_read_a_row_at_a_time_is_checked_as_a_whole_read_checks_it(tmp_path: Path, line: bytes,
                                                                         table: str) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.from_document({"schemaVersion": 1, "tables": {table: []}}, "x"), path)
    lines = path.read_bytes().split(b"\n")
    if table == "instanceviews":
        line = line.replace(b'"properties"', b'"instanceView"')
    path.write_bytes(b"\n".join([*lines[:2], line, *lines[2:]]))
    whole = outcome(lambda: snapshot.load_many([path]))
    assert outcome(lambda: scan.snapshot_source([path], 1).snapshot) == whole


def outcome(read: Any) -> Any:
    """The rows read, or the problems reported."""
    try:
        snap = read()
    except InputError as exc:
        return sorted((p.place, p.reason) for p in exc.problems)
    return snap.tables if snap.tables and any(snap.tables.values()) else "no rows"


def test_a_row_in_a_later_table_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    lines = path.read_bytes().split(b"\n")
    last = max(n for n, line in enumerate(lines) if line.startswith(b"{"))  # the last table's last row
    assert lines[last].endswith(b"}") and lines[:last].count(b"]") + lines[:last].count(b"],") >= 1
    lines[last] = lines[last][:-1] + b',"x":1e999}'
    path.write_bytes(b"\n".join(lines))
    whole = outcome(lambda: snapshot.load_many([path]))
    assert whole == [(f"line {last + 1} column {lines[last].index(b'1e999') + 1}",
                      "1e999 is not a JSON number (strict JSON has no NaN or Infinity)")]
    source = scan.snapshot_source([path], 1)
    assert source.split is not None  # the row passed the quick check: it is found when its part is read
    assert outcome(lambda: scan.run_scan(source, load_policies([bundled_policy_dir()]), Gate())) == whole
