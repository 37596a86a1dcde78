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
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from backup_preflight.errors import InputError

Part = TypeVar("Part")

log = logging.getLogger(__name__)

_KEPT: list[Any] = []

#: The most parts `--jobs auto` judges at once. Reading the file and writing the reports happen once, in the
#: scan's process, and each part reads the rows every part needs: beyond a few jobs they are the time.
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
    try:
        entries = [line.split(":", 2) for line in own.read_text(encoding="utf-8").splitlines()]
    except OSError:
        return None
    quotas = []
    for _, controllers, path in (e for e in entries if len(e) == 3):
        if controllers == "":
            top, read = cgroups, _v2_quota
        elif "cpu" in controllers.split(","):
            top, read = cgroups / "cpu", _v1_quota
        else:
            continue
        own_folder = top / path.strip("/")
        for folder in (own_folder, *own_folder.parents):  # up to the top, and never further
            quota = read(folder)
            if quota is not None:
                quotas.append(quota)
            if folder == top:
                break
    return min(quotas, default=None)


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

    def __init__(self, jobs: int, here: Callable[[Part], Any], elsewhere: Callable[[Part], Any]) -> None:
        self._here = here
        self._elsewhere = elsewhere
        self._jobs = jobs
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
            kind, value = "failed", _ended(self._stop(ready))
        else:
            self._stop(ready)
        if kind == "input":
            raise InputError(value)
        if kind == "failed":
            raise RuntimeError(f"the process judging a part {value}")
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


def _ended(code: int | None) -> str:
    """Why a child gave no result, as far as its exit code tells."""
    if code == -signal.SIGKILL:
        return ("was killed (SIGKILL; most often the kernel out of memory): fewer --jobs or a smaller "
                "--part-size need less")
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
