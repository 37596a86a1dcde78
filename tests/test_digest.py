"""A snapshot's SHA-256 hashed on a thread of its own (digest.py): the same hash, and no thread left once the
reading ends, however it ends (a part of a scan is forked after it)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backup_preflight import snapshot
from backup_preflight.digest import BackgroundSha256
from backup_preflight.errors import InputError
from scan_helpers import estate, write_snapshot


def hashing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sha256"]


@given(st.lists(st.binary(max_size=5000), max_size=30))
def test_the_hash_is_hashlib_s_of_the_chunks_in_order(chunks: list[bytes]) -> None:
    digest = BackgroundSha256()
    for chunk in chunks:
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest(), "asked again, the same"
    assert not hashing_threads()


class Failing:
    """A hash whose every update fails (as with no memory left), but which would still give a digest."""

    def update(self, chunk: bytes) -> None:
        raise MemoryError

    def hexdigest(self) -> str:
        return "0" * 64


def test_a_failure_on_the_thread_is_raised_where_the_hash_is_asked_for() -> None:
    digest = BackgroundSha256()
    digest._digest = Failing()  # type: ignore[assignment]
    for _ in range(100):  # more than the queue holds: the thread keeps taking them
        digest.update(b"x" * 4096)
    with pytest.raises(MemoryError):
        digest.hexdigest()
    assert not hashing_threads()


def test_reading_a_file_row_by_row_hashes_its_bytes_and_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    reader = snapshot.RowReader(path)
    assert hashing_threads()
    rows = sum(1 for _ in reader.rows())
    assert rows and not hashing_threads()
    assert reader.snapshot.sources[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    reader.close()


def test_no_thread_is_left_when_the_reading_fails_or_stops(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    snapshot.save(snapshot.load(write_snapshot(tmp_path / "in.json", estate())), path)
    broken = tmp_path / "broken.json"
    lines = path.read_bytes().split(b"\n")
    lines[3] = b'{"id": 5}' + (b"," if lines[3].endswith(b",") else b"")
    broken.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError):
        list(snapshot.RowReader(broken).rows())
    assert not hashing_threads()
    reader = snapshot.RowReader(path)
    next(iter(reader.rows()))
    reader.close()  # stopped after one row
    assert not hashing_threads()
    with pytest.raises(snapshot.row_lines.NotThisLayout):
        snapshot.RowReader(write_snapshot(tmp_path / "whole.json", estate()))  # not a row per line
    assert not hashing_threads()
