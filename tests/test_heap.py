"""heap.give_back returns freed memory that the C allocator would otherwise keep resident."""

from __future__ import annotations

import os

import pytest

from backup_preflight import heap

MB = 1024 * 1024


def resident() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")
def test_freed_rows_of_text_leave_the_process_once_given_back() -> None:
    if not heap.give_back():
        pytest.skip("this C library cannot give freed pages back (not glibc)")
    rows = [bytes(2000) for _ in range(60_000)]  # rows of text, as a live collection keeps them: 120 MB
    pin = bytes(2000)  # allocated above them, so that freeing them leaves a hole, not a shorter heap
    held = resident()
    del rows
    kept = resident()
    assert held - kept < 60 * MB, "the C allocator kept most of what was freed (else this test shows nothing)"
    assert heap.give_back()
    assert kept - resident() > 80 * MB
    assert pin == bytes(2000)
