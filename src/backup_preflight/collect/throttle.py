"""Pacing for Resource Graph's per-user quota, and the delays of our own retries.

Resource Graph lets a user send about 15 queries per 5-second window and reports the budget
left on every response (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`). The SDK's
retry policy knows nothing of that budget, so we switch it off and pace from the headers: spend
the budget, wait exactly until the window resets, never provoke a 429 storm.

Time comes from an injectable `Clock`, so tests pace through virtual seconds in no real time.
"""

from __future__ import annotations

import email.utils
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
    if not text:
        return None
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        return None
    if len(parts) > 3 or any(p < 0 for p in parts):
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

    Each request takes a ticket. A response's `remaining` counts every request the server saw up
    to it, so the budget now is `remaining` minus the tickets issued after that request. The reset
    time is the earliest `received + resets-after` seen in the window: `resets-after` has whole
    seconds only, and the earliest bound is the tightest. Responses to tickets from before the
    last reset describe a window that is gone and are ignored. Until the first response of a
    window arrives the budget is unknown and workers may go (at most the pool size in flight).
    Without quota headers (Compute) the pacer is just a shared pause after a 429.
    """

    #: Margin after the reported reset before the next request, against clock skew.
    SAFETY = 0.05

    def __init__(self, clock: Clock, on_wait: Callable[[float], None] | None = None) -> None:
        self._clock = clock
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._issued = 0
        self._window_first = 1
        self._newest_seen = 0
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._hold = float("-inf")
        self._reported_deadline: float | None = None

    def acquire(self) -> int:
        """Block until the quota allows one more request; return its ticket."""
        while True:
            with self._lock:
                now = self._clock.now()
                if self._reset_at is not None and now >= self._reset_at:
                    self._reset_at = None
                    self._remaining = None
                    self._window_first = self._issued + 1
                if now >= self._hold and (self._remaining is None or self._remaining > 0):
                    if self._remaining is not None:
                        self._remaining -= 1
                    self._issued += 1
                    return self._issued
                # remaining is only 0 with a known reset time
                deadline = self._hold if now < self._hold else self._reset_at
                assert deadline is not None
                report = deadline != self._reported_deadline
                self._reported_deadline = deadline
            if report and self._on_wait:
                self._on_wait(deadline - now)
            self._clock.wait_until(deadline)

    def observe(self, ticket: int, quota: Quota) -> None:
        """Take in the budget reported by the response to `ticket`, received just now."""
        if quota.remaining is None or quota.resets_after is None:
            return
        with self._lock:
            now = self._clock.now()
            reset = now + quota.resets_after + self.SAFETY
            if ticket < self._window_first or reset <= now:
                return
            estimate = max(quota.remaining - (self._issued - ticket), 0)
            if self._reset_at is None or reset > self._reset_at + 1.0:
                self._reset_at = reset
                self._remaining = estimate
                self._newest_seen = ticket
                return
            self._reset_at = min(self._reset_at, reset)
            if ticket > self._newest_seen:
                self._newest_seen = ticket
                self._remaining = estimate

    def hold_until(self, deadline: float) -> None:
        """Stop every worker until `deadline` (after a 429), whatever the quota headers say."""
        with self._lock:
            self._hold = max(self._hold, deadline)
