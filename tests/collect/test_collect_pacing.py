"""The quota pacer, header parsing and the progress display, without any server."""

from __future__ import annotations

import io
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from backup_preflight.collect.progress import Progress
from backup_preflight.collect.throttle import Quota, QuotaPacer, backoff, parse_duration, retry_after
from collect.fakeazure import FakeClock


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:05", 5.0), ("00:01:02", 62.0), ("01:00:00", 3600.0), ("00:00:03.5", 3.5), ("4", 4.0),
    ("", None), (None, None), ("soon", None), ("1:2:3:4", None), ("-00:00:01", None)])
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (retry_after({"retry-after": later}) or 0) <= 30
    assert retry_after({"retry-after": "garbage"}) is None
    assert retry_after({}) is None


def test_quota_from_headers() -> None:
    quota = Quota.from_headers({"x-ms-user-quota-remaining": "3", "x-ms-user-quota-resets-after": "00:00:02"})
    assert quota == Quota(3, 2.0)
    assert Quota.from_headers({"x-ms-user-quota-remaining": "x"}) == Quota(None, None)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 1.0, 10.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_pacer_spends_the_budget_then_waits_for_the_reset() -> None:
    clock = FakeClock()
    waits: list[float] = []
    pacer = QuotaPacer(clock, on_wait=waits.append)
    for remaining in range(14, -1, -1):
        pacer.release(pacer.acquire(), Quota(remaining, 5.0))
    start = clock.now()
    pacer.acquire()
    assert clock.now() - start == pytest.approx(5.0 + QuotaPacer.SAFETY)
    assert waits == [pytest.approx(5.05)]


def test_pacer_takes_the_earliest_reset_of_a_window() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock)
    pacer.release(pacer.acquire(), Quota(1, 5.0))  # resets within 5 s from now
    clock.wait_until(clock.now() + 0.7)
    pacer.release(pacer.acquire(), Quota(0, 5.0))  # rounded up again: the first bound is tighter
    start = clock.now()
    pacer.acquire()
    assert clock.now() - start == pytest.approx(5.0 - 0.7 + QuotaPacer.SAFETY)


def test_pacer_counts_requests_in_flight_against_the_budget() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock)
    first = pacer.acquire()
    pacer.release(first, Quota(2, 5.0))
    second, third = pacer.acquire(), pacer.acquire()  # budget 2, both in flight now
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(pacer.acquire()))
    waiter.start()
    waiter.join(0.2)
    assert got == [] and waiter.is_alive()  # no budget while the two may still be uncounted
    pacer.release(second, Quota(1, 5.0))
    pacer.release(third, Quota(0, 5.0))
    waiter.join(5)
    assert got == [4]
    assert clock.waits == [pytest.approx(5.05)]


def test_pacer_ignores_answers_from_a_window_that_is_gone() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock)
    pacer.release(pacer.acquire(), Quota(1, 1.0))
    old = pacer.acquire()
    clock.wait_until(clock.now() + 2)
    fresh = pacer.acquire()  # the window has rolled over
    pacer.release(old, Quota(0, 1.0))  # stale: must not stop the next request
    pacer.release(fresh, Quota(14, 5.0))
    start = clock.now()
    pacer.acquire()
    assert clock.now() == start


def test_pacer_hold_stops_everyone_until_the_deadline() -> None:
    clock = FakeClock()
    pacer = QuotaPacer(clock)
    pacer.hold_until(clock.now() + 9)
    start = clock.now()
    pacer.acquire()
    assert clock.now() - start == 9


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def live_output(columns: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a terminal of this width shows: the screen lines, escape codes removed."""
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = io.StringIO()
    progress = Progress(live=True, stream=stream)
    progress.start_queries(3, 1)
    progress.page(1000)
    progress.throttle_wait(2.5)
    progress.start_views(5000)
    progress.finish()
    return [ANSI.sub("", part) for part in re.split(r"[\r\n]", stream.getvalue())]


def test_live_progress_is_one_updating_line_that_fits_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = live_output(200, monkeypatch)
    final = [line for line in wide if line.startswith("collect: ")]
    assert final and "1,000 rows" in final[-1] and "1 quota waits (2.5 s)" in final[-1]
    narrow = live_output(40, monkeypatch)
    assert max(len(line) for line in narrow) <= 40  # cut with an ellipsis, never wrapped
    assert any(line.endswith("…") for line in narrow)
    assert not any(line.startswith(("rows", "views")) for line in narrow)  # no wrapped remainder


def test_plain_progress_logs_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backup_preflight.collect")
    stream = io.StringIO()
    progress = Progress(live=False, stream=stream)
    progress.start_queries(1, 1)
    progress.page(10)
    progress.query_done("resources over subscription s", 1, 10)
    progress.error({"scope": "subscription s", "table": "resources", "status": 403, "message": "denied"})
    progress.finish()
    assert stream.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert "resources over subscription s: 10 rows in 1 pages" in messages
    assert any("subscription s, resources: denied (status 403)" in m for m in messages)
    assert messages[-1].startswith("collection finished: queries 1/1")
