"""Merging many snapshots gives what merging them one by one, the slow and obvious way, gives.

The oracle searches the merged table row by row for the last row with the same key (id compared
case-insensitively; metrics rows also by metric name) and replaces it, else appends; a file's
rows going into an empty table are taken as they are.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.snapshot import Snapshot

IDS = ("/subscriptions/s/vm-1", "/SUBSCRIPTIONS/S/VM-1", "/subscriptions/s/vm-2", "/subscriptions/s/VM-3")


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {"id": draw(st.sampled_from((*IDS, None, 7))), "n": draw(st.integers(0, 9))}
    if draw(st.booleans()):  # a metrics row: the id repeats once per metric name
        row.update(name=draw(st.sampled_from(("Percentage CPU", "Available Memory Bytes"))), data=[])
    return row


tables = st.dictionaries(st.sampled_from(("resources", "metrics", "instanceviews")), st.lists(rows(), max_size=6),
                         max_size=3)


def key(row: dict[str, Any]) -> tuple[str, str | None]:
    rid = row["id"]
    return (rid.lower() if isinstance(rid, str) else repr(rid), row.get("name") if "data" in row else None)


def oracle(files: list[dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    merged: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        for name, new in file.items():
            mine = merged.setdefault(name, [])
            if not mine:
                mine.extend(new)
                continue
            for row in new:
                same = [i for i, old in enumerate(mine) if key(old) == key(row)]
                if same:
                    mine[same[-1]] = row
                else:
                    mine.append(row)
    return merged


@settings(max_examples=300, deadline=None)
@given(st.lists(tables, max_size=6))
def test_merge_equals_the_one_by_one_definition(files: list[dict[str, list[dict[str, Any]]]]) -> None:
    expected = oracle(files)
    merged = Snapshot()
    merged.merge(*(Snapshot(tables={name: list(rows) for name, rows in file.items()}) for file in files))
    assert merged.tables == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(tables, min_size=1, max_size=6))
def test_merging_in_several_calls_is_merging_in_one(files: list[dict[str, list[dict[str, Any]]]]) -> None:
    def snaps() -> list[Snapshot]:
        return [Snapshot(tables={name: list(rows) for name, rows in file.items()}) for file in files]

    once, stepwise = Snapshot(), Snapshot()
    once.merge(*snaps())
    for snap in snaps():
        stepwise.merge(snap)
    assert stepwise.tables == once.tables


def test_the_merged_collection_time_is_the_latest_instant_not_the_greatest_text() -> None:
    """06:00 at +02:00 is 04:00 UTC, before 05:00Z; compared as text it looked later."""
    merged = Snapshot()
    merged.merge(Snapshot(collected_at="2026-11-24T05:00:00Z"), Snapshot(collected_at="2026-11-24T06:00:00+02:00"),
                 Snapshot(collected_at="2026-11-24T04:30:00"))  # naive: UTC
    assert merged.collected_at == "2026-11-24T05:00:00Z"
    merged.merge(Snapshot(collected_at="2026-11-24T07:00:00+01:00"))
    assert merged.collected_at == "2026-11-24T07:00:00+01:00"
