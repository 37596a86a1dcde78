"""Run a part's work in this process, or in child processes, several at once (`scan --jobs`).

A child is forked for each part, so the part's estate (millions of short-lived objects) never shares a
heap with what the run keeps from earlier parts, and parts run side by side on several cores. The child
sends its result back through a pipe and exits at once, without freeing anything (what it made is kept
by `keep_until_exit`): the kernel takes its pages back. Forking happens on the main thread only; the
children read the snapshot file the parent opened.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from backup_preflight.errors import InputError

Part = TypeVar("Part")

log = logging.getLogger(__name__)

_KEPT: list[Any] = []

#: The most parts `--jobs auto` judges at once. The file is read once, by at most two processes, each part reads
#: the rows every part needs, and there are five reports to write: beyond a few jobs they are the time.
AUTO_JOBS = 4


def auto_jobs(cgroups: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int:
    """`--jobs auto`: the CPUs this process may run on, within the CPU quota of its cgroup (what a container or
    a CI runner sets), at most AUTO_JOBS. 1 on any system but Linux: macOS can fork, but its system libraries
    are not safe in a forked child, so there more than one job is the user's choice (`--jobs N`)."""
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroups, own)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, min(cpus, AUTO_JOBS))


def cgroup_cpu_quota(cgroups: Path, own: Path) -> float | None:
    """The smallest CPU quota, in CPUs, of this process's cgroup and those above it (cgroup v2 `cpu.max`, or
    v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`); None when there is none or nothing is readable. Affinity
    does not show such a quota: a container limited to 2 CPUs on a 64-core host still sees 64."""
    quotas = [quota for folder, v2 in _cgroup_folders(cgroups, own, "cpu")
              if (quota := (_v2_quota if v2 else _v1_quota)(folder)) is not None]
    return min(quotas, default=None)


def memory_room(cgroups: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup"),
                meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this process and its children may still take: the least of the system's available memory
    (`MemAvailable`) and, for this process's cgroup and each above it with a memory limit, the limit less
    what the cgroup uses. Its file cache is counted as free, as `MemAvailable` counts it, but for the pages
    not yet written to disk: the kernel reclaims clean cache before it kills, and reading a snapshot fills
    the cache (9 GB at 1,000,000 VMs, most of it active, as a file read twice is). None when nothing is
    readable (any system but Linux)."""
    rooms = [room for folder, v2 in _cgroup_folders(cgroups, own, "memory")
             if (room := _cgroup_room(folder, v2)) is not None]
    try:
        available = _fields(meminfo.read_text(encoding="utf-8"), ":").get("MemAvailable")
        if available is not None:
            rooms.append(int(available.split()[0]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(rooms, default=None)


def resident(statm: Path = Path("/proc/self/statm")) -> int | None:
    """Bytes of memory this process holds now (its resident set); None when the system does not say."""
    try:
        return int(statm.read_text(encoding="ascii").split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_folders(cgroups: Path, own: Path, controller: str) -> Iterator[tuple[Path, bool]]:
    """The folders of this process's cgroups for `controller`, each with those above it up to the top (never
    further), and whether each is cgroup v2 (one hierarchy for every controller) or v1 (one per controller)."""
    try:
        entries = [line.split(":", 2) for line in own.read_text(encoding="utf-8").splitlines()]
    except OSError:
        return
    for _, controllers, path in (e for e in entries if len(e) == 3):
        if controllers == "":
            top, v2 = cgroups, True
        elif controller in controllers.split(","):
            top, v2 = cgroups / controller, False
        else:
            continue
        own_folder = top / path.strip("/")
        for folder in (own_folder, *own_folder.parents):
            yield folder, v2
            if folder == top:
                break


#: A cgroup v1 memory limit at or above this is no limit (the kernel shows "none" as about 2**63).
_NO_V1_LIMIT = 2 ** 62


def _cgroup_room(folder: Path, v2: bool) -> int | None:
    """The folder's memory limit less its usage, its clean file cache counted as free; None without a limit."""
    names = ("memory.max", "memory.current", "inactive_file", "active_file", "file_dirty", "file_writeback") if v2 \
        else ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file", "total_active_file",
              "total_dirty", "total_writeback")
    try:
        limit = int((folder / names[0]).read_text(encoding="utf-8"))  # v2 "max" (no limit) is a ValueError
        used = int((folder / names[1]).read_text(encoding="utf-8"))
        stat = _fields((folder / "memory.stat").read_text(encoding="utf-8"), " ")
        cache, unwritten = (sum(int(stat.get(name, "0")) for name in pair) for pair in (names[2:4], names[4:]))
    except (OSError, ValueError):
        return None
    if limit >= _NO_V1_LIMIT:
        return None
    return max(0, limit - max(0, used - max(0, cache - unwritten)))


def _fields(text: str, separator: str) -> dict[str, str]:
    """`name<separator>value` lines (/proc/meminfo, memory.stat) as a dict."""
    return {name.strip(): value.strip() for name, _, value in (line.partition(separator) for line in text.splitlines())}


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text(encoding="utf-8").split()
        return int(quota) / int(period) if int(period) > 0 else None  # "max" (no quota) is a ValueError
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def keep_until_exit(thing: Any) -> None:
    """In a child: keep `thing` alive until the child exits, so that it is never freed one object at a time."""
    _KEPT.append(thing)


class Workers(Generic[Part]):
    """Up to `jobs` parts' work at once. With one job, `here` does a part's work in this process when it is
    started; with more, `elsewhere` does it in a child of its own and must return what pickle can carry."""

    def __init__(self, jobs: int, here: Callable[[Part], Any], elsewhere: Callable[[Part], Any],
                 doing: str = "judging a part",
                 lighter: str = "fewer --jobs or a smaller --part-size need less") -> None:
        self._here = here
        self._elsewhere = elsewhere
        self._jobs = jobs
        #: What a child does and what needs less memory, for the errors that say why one gave no result.
        self._doing, self._lighter = doing, lighter
        self._done: list[tuple[Part, Any]] = []
        self._running: dict[Connection, tuple[Part, multiprocessing.process.BaseProcess]] = {}

    def __enter__(self) -> Workers[Part]:
        return self

    def __exit__(self, *exc: object) -> None:
        for connection in list(self._running):
            self._stop(connection, kill=True)

    @property
    def free(self) -> bool:
        return len(self._done) + len(self._running) < self._jobs

    @property
    def busy(self) -> bool:
        return bool(self._done or self._running)

    def start(self, part: Part) -> None:
        if self._jobs == 1:
            self._done.append((part, self._here(part)))
            return
        receiving, sending = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(target=_child, args=(self._elsewhere, part, sending),
                                                            daemon=True)
        child.start()
        sending.close()
        self._running[receiving] = (part, child)

    def next(self) -> tuple[Part, Any]:
        """The part whose work finished first (of those started in this process: the first started), and its
        result; an error of the work is raised here."""
        if self._done:
            return self._done.pop(0)
        ready = wait(list(self._running))[0]
        assert isinstance(ready, Connection)
        part = self._running[ready][0]
        try:
            kind, value = ready.recv()
        except EOFError:
            kind, value = "failed", _ended(self._stop(ready), self._lighter)
        else:
            self._stop(ready)
        if kind == "input":
            raise InputError(value)
        if kind == "failed":
            raise RuntimeError(f"the process {self._doing} {value}")
        return part, value

    def drop(self, unwanted: Callable[[Part], bool]) -> list[Part]:
        """Stop the running parts that are `unwanted` (joined into a larger part), and name them."""
        dropped = []
        for connection, (part, _) in list(self._running.items()):
            if unwanted(part):
                self._stop(connection, kill=True)
                dropped.append(part)
        if dropped:
            log.debug("stopped judging %d part(s) that were joined into a larger one", len(dropped))
        return dropped

    def _stop(self, connection: Connection, kill: bool = False) -> int | None:
        """Forget a child and reap it: one that sent its result is ending on its own; one still at work, `kill`."""
        _, child = self._running.pop(connection)
        connection.close()
        if not kill:
            child.join(timeout=5)
        if child.is_alive():
            child.kill()
        child.join()
        return child.exitcode


def _ended(code: int | None, lighter: str) -> str:
    """Why a child gave no result, as far as its exit code tells."""
    if code == -signal.SIGKILL:
        return f"was killed (SIGKILL; most often the kernel out of memory): {lighter}"
    return f"ended without a result (exit code {code})"


def _child(work: Callable[[Any], Any], part: Any, sending: Connection) -> None:
    try:
        message: tuple[str, Any] = ("done", work(part))
    except InputError as exc:
        message = ("input", list(exc.problems))
    except BaseException as exc:  # whatever it is goes back to the parent, which raises it
        message = ("failed", f"failed: {type(exc).__name__}: {exc}")
    sending.send(message)
    sending.close()
    os._exit(0)  # nothing to unwind: the child runs only this; freeing the part would only take time
