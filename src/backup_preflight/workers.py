"""Run a part's work in this process, or in child processes, several at once (`scan --jobs`).

A child is forked for each part, so the part's estate (millions of short-lived objects) never shares a
heap with what the run keeps from earlier parts, and parts run side by side on several cores. The child
sends its result back through a pipe and exits at once, without freeing anything (what it made is kept
by `keep_until_exit`): the kernel takes its pages back. Forking happens on the main thread only; the
children read the snapshot file the parent opened.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from backup_preflight.errors import InputError

Part = TypeVar("Part")

log = logging.getLogger(__name__)

_KEPT: list[Any] = []


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
