"""Snapshot loading: our format, gzip, az graph query output, merging, hashes and bad input."""

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from backup_preflight import snapshot
from backup_preflight.errors import InputError

from arg import rest_body, snapshot_doc, to_arg, vm_row


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def problem(path: Path) -> tuple[str, str]:
    with pytest.raises(InputError) as info:
        snapshot.load(path)
    [p] = info.value.problems
    assert p.file == str(path)
    return p.place, p.reason


def test_our_format_plain_and_gzip_hash_the_bytes_read(tmp_path: Path) -> None:
    doc = snapshot_doc([vm_row()])
    plain = write(tmp_path / "s.json", doc)
    packed = tmp_path / "s.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        snap = snapshot.load(path)
        assert len(snap.tables["resources"]) == 1
        assert snap.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert snap.collected_at == "2026-11-20T06:00:00Z"


def test_az_graph_query_output_is_split_into_tables_by_type(tmp_path: Path) -> None:
    item = to_arg(rest_body("Compute_ProtectedItem_Get"))
    policy = to_arg(rest_body("ProtectionPolicies_Get"))
    out = {"count": 3, "data": [vm_row(), item, policy], "skip_token": None, "total_records": 3}
    snap = snapshot.load(write(tmp_path / "az.json", out))
    assert [len(snap.tables[t]) for t in ("resources", "recoveryservicesresources")] == [1, 2]
    bare = snapshot.load(write(tmp_path / "rows.json", [vm_row()]))
    assert len(bare.tables["resources"]) == 1


def test_table_result_format_is_accepted(tmp_path: Path) -> None:
    out = {"data": {"columns": [{"name": "id", "type": "string"}, {"name": "type", "type": "string"}],
                    "rows": [["/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v",
                              "microsoft.compute/virtualmachines"]]}}
    snap = snapshot.load(write(tmp_path / "t.json", out))
    assert snap.tables["resources"][0]["type"] == "microsoft.compute/virtualmachines"


def test_merge_replaces_repeated_ids_case_insensitively(tmp_path: Path) -> None:
    first = vm_row("vm1", tags={"v": "1"})
    second = vm_row("vm1", tags={"v": "2"})
    second["id"] = second["id"].upper()
    a = write(tmp_path / "a.json", snapshot_doc([first]))
    b = write(tmp_path / "b.json", [second, vm_row("vm2")])
    merged = snapshot.load_many([a, b])
    assert sorted(r["tags"].get("v", "-") for r in merged.tables["resources"]) == ["-", "2"]
    assert len(merged.sources) == 2 and len(merged.sha256) == 64
    assert merged.sha256 != merged.sources[0].sha256


def test_merged_scopes_join_a_name_and_a_list_of_names(tmp_path: Path) -> None:
    """A scope value may be a name alone or a list of names; merging one with the other crashed (str.extend)."""
    docs = [{"subscriptions": "s1", "tenant": "t1"}, {"subscriptions": ["s2", "s1"], "managementGroups": ["mg"]},
            {"subscriptions": "s3", "tenant": "t1"}]
    paths = [write(tmp_path / f"{i}.json", {**snapshot_doc([vm_row()]), "scope": scope})
             for i, scope in enumerate(docs)]
    loaded = [snapshot.load(path) for path in paths]
    merged = snapshot.Snapshot()
    merged.merge(*loaded)
    assert merged.scope == {"subscriptions": ["s1", "s2", "s3"], "tenant": "t1", "managementGroups": ["mg"]}
    assert [s.scope for s in loaded] == docs  # the lists joined are copies: the snapshots merged stay as they were


def test_save_and_reload_round_trip(tmp_path: Path) -> None:
    snap = snapshot.from_document(snapshot_doc([vm_row()]), "x")
    for name in ("out.json", "out.json.gz"):
        digest = snapshot.save(snap, tmp_path / name)
        again = snapshot.load(tmp_path / name)
        assert again.tables == snap.tables and again.sha256 == digest


@pytest.mark.parametrize(("content", "place", "fragment"), [
    ("", "line 1 column 1", "empty"),
    ('{"schemaVersion": 1, "tables": {"resources": [', "line 1 column 47", "not valid JSON"),
    ("just text", "line 1 column 1", "not valid JSON"),
    ('"a string"', "/", "expected a JSON object or array"),
    ('{"foo": 1}', "/", "no 'tables'"),
    ('{"schemaVersion": 9, "tables": {}}', "/schemaVersion", "unsupported"),
    ('{"schemaVersion": true, "tables": {}}', "/schemaVersion", "unsupported snapshot schemaVersion true"),
    ('{"schemaVersion": "1", "tables": {}}', "/schemaVersion", 'unsupported snapshot schemaVersion "1"'),
    ('{"schemaVersion": 1, "tables": []}', "/tables", "expected an object"),
    ('{"schemaVersion": 1, "tables": {"resources": [{"type": "microsoft.compute/virtualmachines"}]}}',
     "/tables/resources/0", "no 'id'"),
    ('{"schemaVersion": 1, "tables": {"resources": [{"id": "/x", "type": 5}]}}',
     "/tables/resources/0/type", "non-empty string"),
    ('{"schemaVersion": 1, "tables": {"resources": [{"id": "/x", "type": "t", "properties": [1]}]}}',
     "/tables/resources/0/properties", "must be an object"),
    ('{"data": [{"id": "/x"}]}', "/data/0", "no 'type'"),
    ('{"schemaVersion": 1, "tables": {"instanceviews": [{"instanceView": {}}]}}',
     "/tables/instanceviews/0", "no 'id'"),
])
def test_bad_snapshots_name_the_place(tmp_path: Path, content: str, place: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    got_place, reason = problem(path)
    assert got_place == place
    assert fragment in reason


def test_truncated_gzip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(b'{"schemaVersion": 1, "tables": {}}')[:20])
    assert "gzip" in problem(path)[1]
    assert "no such file" in problem(tmp_path / "absent.json")[1]
    assert "is a directory" in problem(tmp_path)[1]  # a folder where a file was expected


def test_binary_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"schemaVersion": 1, "tables": {"x": "\xff\xfe"}}')
    place, reason = problem(path)
    assert place == "byte 38" and "not UTF-8" in reason
