"""Parts' work in child processes (`scan --jobs`): results come back, and so does every way a child can fail,
as the run would see it in one process."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from backup_preflight import cli, workers
from backup_preflight.errors import InputError, Problem
from backup_preflight.estate.parts import PART_VMS
from backup_preflight.workers import AUTO_JOBS, Workers, auto_jobs, cgroup_cpu_quota, memory_room, resident


def where(part: str) -> tuple[str, int]:
    if part == "bad input":
        raise InputError.one("s.json", "line 3", "not JSON")
    if part == "bug":
        raise KeyError("vm")
    if part == "sys.exit":
        sys.exit(5)  # not an Exception: it still goes back as a failure, not as a silent end
    if part == "exited":
        os._exit(3)  # no result sent
    if part == "killed":
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer ends it
    if part == "slow":
        time.sleep(60)
    if part == "brief":
        time.sleep(2)
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
    ("sys.exit", RuntimeError, "the process judging a part failed: SystemExit: 5"),
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


def test_dropped_and_abandoned_children_are_stopped(caplog: pytest.LogCaptureFixture) -> None:
    """At once: killed, not waited for (a part of two seconds would have ended on its own, exit 1 on the closed
    pipe); and children are daemons, which multiprocessing ends if the run itself ends."""
    caplog.set_level("DEBUG", logger="backup_preflight.workers")
    with Workers(3, where, where) as workers:
        workers.start("slow")
        workers.start("brief")
        workers.start("a")
        running = dict(workers._running.values())
        assert all(child.daemon for child in running.values())
        assert workers.drop(lambda part: part in ("slow", "brief")) == ["slow", "brief"]
        assert not running["slow"].is_alive()
        assert running["slow"].exitcode == running["brief"].exitcode == -signal.SIGKILL
        assert "stopped judging 2 part(s) that were joined into a larger one" in caplog.messages
        assert workers.next()[0] == "a"
        workers.start("brief")
        left = next(iter(workers._running.values()))[1]
    assert not left.is_alive(), "leaving the block stops what still runs"
    assert left.exitcode == -signal.SIGKILL


def test_more_than_one_job_where_processes_cannot_fork_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with pytest.raises(SystemExit) as caught:
        cli.main(["scan", "--demo", "--jobs", "2"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "more than one job forks child processes (a part or reports each), which this platform cannot do" in err
    assert cli.build_parser().parse_args(["scan", "--demo", "--jobs", "1"]).jobs == 1


def cgroup(tmp_path: Path, lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup holding `files` (path → content) and a /proc/self/cgroup of `lines`."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    own = tmp_path / "self-cgroup"
    own.write_text(lines, encoding="utf-8")
    return root, own


@pytest.mark.parametrize(("lines", "files", "quota"), [
    ("0::/\n", {"cpu.max": "200000 100000\n"}, 2.0),  # a container's own namespace: its limit at the top
    ("0::/\n", {"cpu.max": "max 100000\n"}, None),
    ("0::/ci/job\n", {"cpu.max": "max 100000\n", "ci/cpu.max": "400000 100000\n",
                      "ci/job/cpu.max": "150000 100000\n"}, 1.5),
    ("0::/ci/job\n", {"ci/cpu.max": "50000 100000\n", "ci/job/cpu.max": "max 100000\n"}, 0.5),  # the parent's
    ("0::/gone/away\n", {"cpu.max": "300000 100000\n"}, 3.0),  # a path not mounted here: the top still counts
    ("0::/\n", {}, None),
    ("0::/\n", {"cpu.max": "many 100000\n"}, None),
    ("0::/\n", {"cpu.max": "100000 0\n"}, None),
    ("4:memory:/x\n3:cpu,cpuacct:/docker/abc\n", {"cpu/docker/abc/cpu.cfs_quota_us": "250000\n",
                                                  "cpu/docker/abc/cpu.cfs_period_us": "100000\n"}, 2.5),
    ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ("1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n",
                         "cpu.max": "100000 100000\n"}, 1.0),
    ("2:memory:/\n", {"memory.max": "max\n"}, None),
    ("5:cpuset:/pinned\n1:cpu:/\n", {"cpu/pinned/cpu.cfs_quota_us": "100000\n",  # cpuset is not cpu
                                      "cpu/pinned/cpu.cfs_period_us": "100000\n", "cpu/cpu.cfs_quota_us": "-1\n",
                                      "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ("0::/ci/run:1.scope\n", {"ci/run:1.scope/cpu.max": "150000 100000\n"}, 1.5),  # a colon in the path
    ("0::/X1/X\n", {"X1/X/cpu.max": "250000 100000\n"}, 2.5),
    ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "0\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "0\n"}, None),
    ("0::/../up\n", {"cpu.max": "200000 100000\n"}, 2.0),  # walks up to the top, not past it
])
def test_the_cpu_quota_of_a_cgroup_and_those_above_it(tmp_path: Path, lines: str, files: dict[str, str],
                                                     quota: float | None) -> None:
    assert cgroup_cpu_quota(*cgroup(tmp_path, lines, files)) == quota


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path, tmp_path / "missing") is None


@pytest.mark.parametrize(("cpus", "limit", "jobs"), [
    (2, None, 2), (1, None, 1), (16, None, AUTO_JOBS), (64, "200000 100000", 2), (8, "150000 100000", 2),
    (8, "50000 100000", 1), (3, "800000 100000", 3), (8, "0 100000", 1)])
def test_auto_jobs_are_the_cpus_this_process_may_use_at_most_four(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 cpus: int, limit: str | None, jobs: int) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    root, own = cgroup(tmp_path, "0::/\n", {"cpu.max": limit} if limit else {})
    assert auto_jobs(root, own) == jobs


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_auto_is_one_job_but_on_linux(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert auto_jobs() == 1
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert auto_jobs() == 1


def test_jobs_default_to_auto_and_parts_share_the_default_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """About PART_VMS VMs are judged at a time with any number of jobs, unless --part-size says otherwise."""
    monkeypatch.setattr(workers, "auto_jobs", lambda: 3)
    parse = cli.build_parser().parse_args
    for argv, jobs, size in ((["scan", "--demo"], 3, PART_VMS // 3), (["scan", "--demo", "--jobs", "AUTO"], 3, 8333),
                             (["scan", "--demo", "--jobs", "2"], 2, 12_500), (["scan", "--demo", "--jobs", "1"], 1,
                                                                              PART_VMS),
                             (["scan", "--demo", "--jobs", "2", "--part-size", "40"], 2, 40),
                             (["scan", "--demo", "--part-size", "0"], 3, 0)):
        args = parse(argv)
        assert (args.jobs, cli._part_size(args)) == (jobs, size), argv


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GIB = 1 << 30
MEMINFO = "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20971520 kB\n"  # 20 GiB


@pytest.mark.parametrize(("lines", "files_", "room"), [
    ("0::/\n", {}, 20 * GIB),  # no cgroup file: the system's available memory
    ("0::/ci/job\n", {"ci/job/memory.max": f"{7 * GIB}\n", "ci/job/memory.current": f"{3 * GIB}\n",
                      "ci/job/memory.stat": f"anon 1\ninactive_file {GIB}\nactive_file 5\n"}, 5 * GIB + 5),
    ("0::/ci/job\n", {"ci/job/memory.max": f"{7 * GIB}\n", "ci/job/memory.current": f"{6 * GIB}\n",
                      "ci/job/memory.stat": f"inactive_file {GIB}\nactive_file {3 * GIB}\nfile_dirty {GIB}\n"
                                            f"file_writeback 2\n"}, 4 * GIB - 2),  # cache not yet written: used
    ("0::/ci/job\n", {"ci/job/memory.max": "max\n", "ci/job/memory.current": f"{3 * GIB}\n",
                      "ci/job/memory.stat": "inactive_file 0\n",
                      "ci/memory.max": f"{4 * GIB}\n", "ci/memory.current": f"{3 * GIB}\n",
                      "ci/memory.stat": "inactive_file 0\n"}, GIB),  # the parent's limit
    ("0::/\n", {"memory.max": f"{2 * GIB}\n", "memory.current": f"{GIB}\n",
                "memory.stat": f"inactive_file {3 * GIB}\n"}, 2 * GIB),  # more cache than use: the limit
    ("0::/\n", {"memory.max": f"{GIB}\n", "memory.current": f"{2 * GIB}\n", "memory.stat": "inactive_file 0\n"}, 0),
    ("0::/\n", {"memory.max": f"{GIB}\n", "memory.current": "lots\n", "memory.stat": ""}, 20 * GIB),
    ("4:memory:/docker/abc\n", {"memory/docker/abc/memory.limit_in_bytes": f"{7 * GIB}\n",
                                "memory/docker/abc/memory.usage_in_bytes": f"{6 * GIB}\n",
                                "memory/docker/abc/memory.stat": f"cache 9\ntotal_inactive_file {2 * GIB}\n"},
     3 * GIB),
    ("4:memory:/docker/abc\n", {"memory/docker/abc/memory.limit_in_bytes": f"{7 * GIB}\n",
                                "memory/docker/abc/memory.usage_in_bytes": f"{6 * GIB}\n",
                                "memory/docker/abc/memory.stat": f"total_inactive_file {GIB}\ntotal_active_file "
                                                                 f"{2 * GIB}\ntotal_dirty {GIB}\ntotal_writeback 4\n"
                                                                 "inactive_file 7\n"},
     3 * GIB - 4),  # v1: the hierarchy's totals, pages not yet written less
    ("4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
                      "memory/memory.usage_in_bytes": f"{6 * GIB}\n", "memory/memory.stat": ""}, 20 * GIB),
    ("0::/\n", {"memory.max": f"{7 * GIB}\n", "memory.current": f"{3 * GIB}\n", "memory.stat": "anon 5\n"},
     4 * GIB),  # no file cache said: none counted as free
    ("4:cpu:/\n", {"cpu/memory.limit_in_bytes": f"{GIB}\n", "cpu/memory.usage_in_bytes": "0\n",
                   "cpu/memory.stat": ""}, 20 * GIB),  # not the memory controller
])
def test_memory_room_is_the_least_left_by_the_system_and_each_cgroup(
        tmp_path: Path, lines: str, files_: dict[str, str], room: int) -> None:
    root, own = cgroup(tmp_path, lines, files_)
    root.mkdir(exist_ok=True)
    assert memory_room(root, own, write(tmp_path / "meminfo", MEMINFO)) == room


def test_memory_room_is_unknown_when_nothing_says(tmp_path: Path) -> None:
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", tmp_path / "no-meminfo") is None
    unlimited = tmp_path / "cgroup" / "memory"
    write(unlimited / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit" is no room figure
    write(unlimited / "memory.usage_in_bytes", "0\n")
    write(unlimited / "memory.stat", "total_inactive_file 0\n")
    assert memory_room(tmp_path / "cgroup", write(tmp_path / "own", "4:memory:/\n"), tmp_path / "no-meminfo") is None
    write(unlimited / "memory.limit_in_bytes", f"{2 ** 62}\n")  # where "no limit" starts
    assert memory_room(tmp_path / "cgroup", tmp_path / "own", tmp_path / "no-meminfo") is None
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", write(tmp_path / "m", "MemAvailable: x kB\n")) is None
    assert memory_room(tmp_path / "none", tmp_path / "no-cgroup", write(tmp_path / "n", "MemFree: 5 kB\n")) is None


def test_resident_is_the_second_field_of_statm_in_pages(tmp_path: Path) -> None:
    assert resident(write(tmp_path / "statm", "900 25 7 1 0 50 0\n")) == 25 * os.sysconf("SC_PAGE_SIZE")
    assert resident(write(tmp_path / "bad", "900\n")) is None
    assert resident(tmp_path / "absent") is None
    if Path("/proc/self/statm").exists():
        assert 10 * 2 ** 20 < (resident() or 0) < 64 * GIB  # this test process, as it is now
