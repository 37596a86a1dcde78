"""A live scan's snapshot: hashed as `collect` would save it, and past a part's size set aside in an unnamed
temporary file and judged a part at a time (scan.live_source), with the same findings as held whole."""

from __future__ import annotations

import errno
import io
import tempfile
from pathlib import Path

import pytest

from backup_preflight import demo, scan, snapshot
from backup_preflight.errors import InputError
from backup_preflight.results import Gate
from backup_preflight.snapshot import GRAPH_TABLES
from scan_helpers import policies

VMS = 60


def collected(as_text: bool = False) -> snapshot.Snapshot:
    """A snapshot as the collector hands it over: rows in memory, no source yet; with `as_text`, the Resource
    Graph tables' rows kept as their JSON text, as `collect` and live scans keep them."""
    snap = snapshot.from_document(demo.generate(VMS, seed=11, subscriptions=3), "<collector>")
    if as_text:
        for name in GRAPH_TABLES:
            snap.tables[name] = snapshot.compact(snap.tables[name])
    return snap


@pytest.mark.parametrize("as_text", [False, True], ids=["rows as dicts", "rows as text"])
def test_the_hash_is_that_of_the_saved_file_held_whole_or_in_parts(tmp_path: Path, as_text: bool) -> None:
    saved = snapshot.save(collected(), tmp_path / "saved.json")
    whole = scan.live_source(collected(as_text), 0)
    snap = collected(as_text)
    parts = scan.live_source(snap, 1)
    assert whole.split is None and parts.split is not None
    assert whole.sha256 == parts.sha256 == saved
    for source in (whole, parts):
        assert source.kind == "live" and source.files == []
        assert source.describe() == {"kind": "live", "sha256": saved, "files": []}
        assert source.snapshot.sources == [snapshot.SourceFile("<live collection>", saved, "live")]
    assert snap.tables == {} and snap.queries == {}  # the collected rows are let go once set aside
    assert whole.snapshot.tables == collected().tables  # held whole: rows as `load` gives them
    parts.split.close()


def test_more_vms_than_a_part_and_no_more() -> None:
    """A part's size in VMs is the most held whole, and then nothing is set aside; one VM more is judged in
    parts; 0 always holds it whole."""
    snap = collected()
    assert scan.live_source(snap, VMS).split is None and snap.tables["resources"]
    assert scan.live_source(collected(), 0).split is None
    source = scan.live_source(collected(), VMS - 1)
    assert source.split is not None and sum(source.split.vms.values()) == VMS
    source.split.close()
    source = scan.live_source(collected(as_text=True), VMS - 1)  # VM rows counted in text too
    assert source.split is not None
    source.split.close()


@pytest.mark.parametrize(("jobs", "as_text"), [(1, False), (2, False), (2, True)])
def test_findings_in_parts_equal_those_held_whole(jobs: int, as_text: bool) -> None:
    whole = scan.run_scan(scan.live_source(collected(as_text), 0), policies(), Gate())
    source = scan.live_source(collected(as_text), 7)
    source.jobs = jobs
    parts = scan.run_scan(source, policies(), Gate())
    assert whole.findings and parts.findings == whole.findings
    assert parts.coverage == whole.coverage and parts.exit_code == whole.exit_code
    assert parts.run["source"] == whole.run["source"]


class _Full(io.BytesIO):
    """A temporary file on a full disk: `fails` (write or flush) raises ENOSPC, once."""

    def __init__(self, fails: str) -> None:
        super().__init__()
        self.fails = fails

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._fail("write")
        return super().write(data)

    def flush(self) -> None:
        self._fail("flush")

    def _fail(self, step: str) -> None:
        if self.fails == step:
            self.fails = ""
            raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("fails", ["open", "write", "flush"])
def test_a_temporary_folder_that_cannot_take_the_rows_is_a_clear_error(tmp_path: Path, fails: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[_Full] = []
    if fails == "open":
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    else:
        monkeypatch.setattr(tempfile, "TemporaryFile", lambda: opened.append(_Full(fails)) or opened[-1])
    with pytest.raises(InputError) as raised:
        scan.live_source(collected(), 1)
    message = str(raised.value)
    assert "<live collection>" in message and "temporary folder" in message and "--part-size 0" in message
    assert ("No space left" in message) == (fails != "open")
    assert all(spill.closed for spill in opened) and len(opened) == (fails != "open")
