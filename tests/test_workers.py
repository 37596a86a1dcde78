"""Parts' work in child processes (`scan --jobs`): results come back, and so does every way a child can fail,
as the run would see it in one process."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from backup_preflight import cli
from backup_preflight.errors import InputError, Problem
from backup_preflight.workers import Workers


def where(part: str) -> tuple[str, int]:
    if part == "bad input":
        raise InputError.one("s.json", "line 3", "not JSON")
    if part == "bug":
        raise KeyError("vm")
    if part == "exited":
        os._exit(3)  # no result sent
    if part == "killed":
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer ends it
    if part == "slow":
        time.sleep(60)
    return part, os.getpid()


def test_one_job_runs_here_and_more_run_each_part_in_a_child_of_its_own() -> None:
    with Workers(1, where, where) as here:
        here.start("a")
        assert not here.free and here.next() == ("a", ("a", os.getpid()))
    with Workers(2, where, where) as workers:
        workers.start("a")
        workers.start("b")
        assert not workers.free
        got = dict([workers.next(), workers.next()])
        assert not workers.busy
    assert sorted(got) == ["a", "b"]
    assert {pid for _, pid in got.values()}.isdisjoint({os.getpid()}) and len({pid for _, pid in got.values()}) == 2


@pytest.mark.parametrize(("part", "error", "says"), [
    ("bad input", InputError, "s.json: line 3: not JSON"),
    ("bug", RuntimeError, "the process judging a part failed: KeyError: 'vm'"),
    ("exited", RuntimeError, "the process judging a part ended without a result (exit code 3)"),
    ("killed", RuntimeError, "the process judging a part was killed (SIGKILL; most often the kernel out of "
                             "memory): fewer --jobs or a smaller --part-size need less"),
])
def test_a_child_s_failure_is_raised_in_the_run(part: str, error: type[Exception], says: str) -> None:
    with Workers(2, where, where) as workers:
        workers.start(part)
        with pytest.raises(error) as caught:
            workers.next()
    assert str(caught.value) == says
    if isinstance(caught.value, InputError):
        assert caught.value.problems == [Problem("s.json", "line 3", "not JSON")]


def test_dropped_and_abandoned_children_are_stopped() -> None:
    with Workers(3, where, where) as workers:
        workers.start("slow")
        workers.start("a")
        running = dict(workers._running.values())
        assert workers.drop(lambda part: part == "slow") == ["slow"]
        assert not running["slow"].is_alive()
        assert workers.next()[0] == "a"
        workers.start("slow")
        left = next(iter(workers._running.values()))[1]
    assert not left.is_alive(), "leaving the block stops what still runs"


def test_more_than_one_job_where_processes_cannot_fork_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with pytest.raises(SystemExit) as caught:
        cli.main(["scan", "--demo", "--jobs", "2"])
    assert caught.value.code == 2
    assert "more than one job forks a process per part, which this platform cannot do" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["scan", "--demo", "--jobs", "1"]).jobs == 1
