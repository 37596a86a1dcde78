"""Time stamps, each kind read one way everywhere: instants (a snapshot's collectedAt, a job's start), and
the UTC hour of an Azure Monitor time stamp, read by the collector and by the estate.

Azure Monitor writes `2026-11-29T02:00:00Z`, but a snapshot is any tool's JSON: a stamp with an offset
(`2026-11-29T03:00:00+01:00`) is the same instant, and its hour in UTC is 2, not the 3 its text shows.
Backup schedules are in UTC hours, so the pressure policies compare UTC hours. A stamp with no offset is
taken as UTC, as Azure Monitor's are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache


def parse_instant(text: str | None) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive means UTC); None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def latest(stamps: Iterable[str | None]) -> str | None:
    """The stamp naming the latest instant (the first of equal ones), not the greatest text: 06:00+02:00 is
    before 05:00Z; None when no stamp can be read."""
    return _by_instant(max, stamps)


def earliest(stamps: Iterable[str | None]) -> str | None:
    """The stamp naming the earliest instant (the first of equal ones), not the least text; None when no stamp
    can be read."""
    return _by_instant(min, stamps)


def _by_instant(pick: Callable[..., tuple[datetime, str]], stamps: Iterable[str | None]) -> str | None:
    dated = [(moment, stamp) for stamp in stamps if (moment := parse_instant(stamp))]
    return pick(dated, key=lambda d: d[0])[1] if dated else None


def utc_hour(stamp: object) -> int | None:
    """The stamp's hour in UTC, or None when it is not an ISO 8601 date and time."""
    return _hour(stamp) if isinstance(stamp, str) else None


@lru_cache(maxsize=4096)  # a run's series share a few hundred distinct stamps
def _hour(stamp: str) -> int | None:
    if len(stamp) < 13 or stamp[10] not in "Tt":
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment.astimezone(UTC).hour if moment.tzinfo is not None else moment.hour
