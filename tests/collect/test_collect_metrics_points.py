"""What the collector keeps of a metric series: per UTC hour of the day, the worst point over the days.

The oracle is the pressure policies' own reading, written out simply: the highest CPU maximum (the
lowest available-memory minimum; the average where a point lacks it) among the points in a set of
UTC hours. It must be the same over the kept points as over every point Azure sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_preflight.collect.metrics import _points

START = datetime(2026, 11, 20, tzinfo=UTC)
KEYS = {"Percentage CPU": ("maximum", max), "Available Memory Percentage": ("minimum", min)}

values = st.one_of(st.none(), st.integers(0, 100), st.floats(0, 100, allow_nan=False))
points = st.lists(st.tuples(st.integers(0, 24 * 10 - 1), st.dictionaries(
    st.sampled_from(["maximum", "minimum", "average"]), values)), max_size=120)


def series(raw: list[tuple[int, dict[str, Any]]], offsets: list[int]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Points at the given hours (sorted, as Azure sends them; an hour may repeat), with what aggregates they
    carry, each stamp written in a time zone of the given offsets (minutes; Azure writes `Z`, other tools may
    not); and each stamp's UTC hour, known from how it was made rather than read back from its text."""
    data, hour_of = [], {}
    for n, (h, aggregates) in enumerate(sorted(raw, key=lambda p: p[0])):
        at = (START + timedelta(hours=h)).astimezone(timezone(timedelta(minutes=offsets[n % len(offsets)])))
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ") if at.utcoffset() == timedelta(0) else at.isoformat()
        hour_of[stamp] = h % 24
        data.append({"timeStamp": stamp, **aggregates})
    return data, hour_of


def peak(data: list[dict[str, Any]], name: str, hours: set[int], hour_of: dict[str, int]) -> float | None:
    key, pick = KEYS[name]
    found = [p.get(key if key in p else "average") for p in data if hour_of[p["timeStamp"]] in hours]
    found = [v for v in found if v is not None]
    return pick(found) if found else None


@settings(max_examples=300, deadline=None)
@given(points, st.sampled_from(sorted(KEYS)), st.sets(st.integers(0, 23)),
       st.lists(st.sampled_from([0, 0, 60, -300, 330, 345, -570, 840]), min_size=1, max_size=3))
def test_the_peak_in_any_hours_is_the_same_over_the_kept_points(raw: list[Any], name: str, hours: set[int],
                                                                offsets: list[int]) -> None:
    data, hour_of = series(raw, offsets)
    kept = _points({"timeseries": [{"metadatavalues": [], "data": data}]}, name)
    assert peak(kept, name, hours, hour_of) == peak(data, name, hours, hour_of)
    assert len({hour_of[p["timeStamp"]] for p in kept}) == len(kept) <= 24  # one per UTC hour of the day at most
    assert all(p in data for p in kept) and kept == sorted(kept, key=lambda p: data.index(p))  # Azure's, in order


def test_points_the_estate_cannot_read_are_kept_for_it_to_say_so() -> None:
    data = [{"timeStamp": "2026-11-20T02:00:00Z", "maximum": 50.0, "total": 9},
            {"timeStamp": "2026-11-21T02:00:00Z", "maximum": 70.0},
            {"timeStamp": "2026-11-22T02:00:00Z", "maximum": 60.0},
            {"timeStamp": "not a time", "maximum": 99.0},
            {"timeStamp": "2026-11-22T03:00:00Z", "maximum": "high"},
            {"timeStamp": "2026-11-22T04:00:00Z", "maximum": True},
            "garbled"]
    kept = _points({"timeseries": [{"data": data}]}, "Percentage CPU")
    assert kept == [{"timeStamp": "2026-11-21T02:00:00Z", "maximum": 70.0}, *data[3:]]
    assert _points({"timeseries": []}, "Percentage CPU") == []
    assert _points({"timeseries": [{"data": "garbled"}]}, "Available Memory Percentage") == []
