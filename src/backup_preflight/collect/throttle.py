"""Pacing for Resource Graph's per-user quota, and the delays of our own retries.

Resource Graph lets a user send about 15 queries per 5-second window and reports the budget
left on every response (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`). The SDK's
retry policy knows nothing of that budget, so we switch it off and pace from the headers: spend
the budget, wait exactly until the window resets, never provoke a 429 storm.

Time comes from an injectable `Clock`, so tests pace through virtual seconds in no real time.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

QUOTA_REMAINING = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER = "x-ms-user-quota-resets-after"


class Clock(Protocol):
    """Monotonic time and waiting; the real one sleeps, the tests' one only advances."""

    def now(self) -> float: ...

    def wait_until(self, deadline: float) -> None: ...


class RealClock:
    """Wall-clock waits on `time.monotonic`."""

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def parse_duration(text: str | None) -> float | None:
    """Seconds in an `hh:mm:ss[.fff]` (or plain seconds) header value; None when unreadable."""
    if not text or "-" in text:
        return None
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        return None
    if len(parts) > 3 or not all(math.isfinite(p) for p in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `Retry-After` seconds or HTTP date)."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) / 1000, 0.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Quota:
    """The budget one response reported: queries left and seconds until the window resets."""

    remaining: int | None
    resets_after: float | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Quota:
        raw = headers.get(QUOTA_REMAINING)
        try:
            remaining = int(raw) if raw is not None else None
        except ValueError:
            remaining = None
        return cls(remaining, parse_duration(headers.get(QUOTA_RESETS_AFTER)))


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential delay before retry number `attempt` (1-based)."""
    return min(cap, base * 2 ** (attempt - 1))


class QuotaPacer:
    """Shared by all workers: hands out request slots within the quota window the server reports.

    Every request holds a ticket from `acquire` until `release` hands back what its response said.
    The server's `remaining` only falls within a window, so the smallest one seen is its latest
    count; requests still in flight may not be in it yet, so the budget is that minimum less the
    requests in flight. At zero a worker waits for an in-flight response (it may have been counted
    already) or, with none left, for the reset. The reset time is the earliest `received +
    resets-after` seen: `resets-after` has whole seconds only and every reading is an upper bound.
    Responses to tickets from before the last reset are ignored. Until the first response of a
    window the budget is unknown and workers go (at most the pool size in flight). Without quota
    headers (Compute) the pacer is only the shared pause after a 429.
    """

    #: Margin after the reported reset before the next request, against clock skew.
    SAFETY = 0.05
    #: Longest wait for an in-flight response before looking again (real seconds).
    RECHECK = 0.5

    def __init__(self, clock: Clock, on_wait: Callable[[float], None] | None = None) -> None:
        self._clock = clock
        self._on_wait = on_wait
        self._cond = threading.Condition()
        self._issued = 0
        self._in_flight: set[int] = set()
        self._window_first = 1
        self._lowest: int | None = None
        self._reset_at: float | None = None
        self._hold = float("-inf")
        self._reported_deadline: float | None = None

    def acquire(self) -> int:
        """Block until the quota allows one more request; return its ticket."""
        while True:
            with self._cond:
                now = self._clock.now()
                if now >= self._hold:
                    if self._reset_at is not None and now >= self._reset_at:
                        self._reset_at = None
                        self._lowest = None
                        self._window_first = self._issued + 1
                    if self._lowest is None or self._lowest - len(self._in_flight) > 0:
                        self._issued += 1
                        self._in_flight.add(self._issued)
                        return self._issued
                    if self._in_flight:
                        self._cond.wait(self.RECHECK)
                        continue
                deadline = self._hold if now < self._hold else self._reset_at
                assert deadline is not None  # a known budget of zero always has a reset time
                report = deadline != self._reported_deadline
                self._reported_deadline = deadline
            if report and self._on_wait:
                self._on_wait(deadline - now)
            self._clock.wait_until(deadline)

    def release(self, ticket: int, quota: Quota) -> None:
        """End `ticket`'s request, taking in the budget its response (received just now) reported."""
        with self._cond:
            self._in_flight.discard(ticket)
            self._cond.notify_all()
            if quota.remaining is None or quota.resets_after is None or ticket < self._window_first:
                return
            reset = self._clock.now() + quota.resets_after + self.SAFETY
            if self._reset_at is None or reset > self._reset_at + 1.0:
                self._reset_at = reset
                self._lowest = quota.remaining
                return
            self._reset_at = min(self._reset_at, reset)
            self._lowest = quota.remaining if self._lowest is None else min(self._lowest, quota.remaining)

    def hold_until(self, deadline: float) -> None:
        """Stop every worker until `deadline` (after a 429), whatever the quota headers say."""
        with self._cond:
            self._hold = max(self._hold, deadline)
