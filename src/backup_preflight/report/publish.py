"""Publish a report set all or nothing: staged beside the output folder, swapped in in one step.

A scan writes its reports into a staging folder next to the output folder (so on the same
filesystem), then exchanges the two folders with one `renameat2(RENAME_EXCHANGE)`: a reader sees
the old set or the new one, never a mix, and the folder never disappears. Where that call is
missing (not Linux, or a filesystem without it) two renames do the same with a moment in which
the folder is absent, never mixed. Files in the output folder that are not reports (a README, a
.gitignore) are carried over by hard link. An advisory lock (`fcntl.flock` on `.NAME.lock` beside
the folder) makes a second scan into the same folder refuse at once (exit 2) rather than
interleave; SIGTERM and SIGINT remove the staging folder before the process ends; a staging
folder left by a killed run is swept by the next run (only the lock holder ever creates one).

Everything the user has to fix (the folder is a file, not writable, a mount point, holds
sub-folders, is the current folder) is found by `claim`, before the scan runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from backup_preflight.errors import InputError, Interrupted

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


class Staged:
    """A claimed output folder: the lock is held and `staging` receives the new set."""

    def __init__(self, shown: Path, target: Path, staging: Path, lock_fd: int, lock_path: Path) -> None:
        self.shown = shown  # the folder as the user named it, for messages
        self.target = target
        self.staging = staging
        self._lock_fd = lock_fd
        self._lock_path = lock_path

    def publish(self, keep: frozenset[str]) -> None:
        """Make the staged set the folder's content in one step; files not in `keep` that the old
        folder held (a README) come along, except stale temp files of older versions."""
        mode = 0o777 & ~_umask()
        if self.target.exists():
            mode = self.target.stat().st_mode & 0o7777
            for entry in self.target.iterdir():
                if entry.name not in keep and not _is_litter(entry.name, keep):
                    _carry(entry, self.staging / entry.name)
        os.chmod(self.staging, mode)
        if self.target.exists():
            exchange(self.staging, self.target)  # the old set is now at `staging`, removed by release()
        else:
            os.rename(self.staging, self.target)

    def release(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._lock_path.unlink()
        os.close(self._lock_fd)


def _carry(entry: Path, dest: Path) -> None:
    """The same file under the new folder: a hard link, or a copy where links are not allowed."""
    try:
        os.link(entry, dest, follow_symlinks=False)
    except OSError:
        shutil.copy2(entry, dest, follow_symlinks=False)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_litter(name: str, reports: frozenset[str]) -> bool:
    """Temp files that versions before staging folders left in the output folder when killed."""
    return name.endswith(".tmp") and any(name.startswith(f".{r}.") for r in reports)


def exchange(new: Path, old: Path) -> None:
    """Swap two folders' names: one atomic call where the kernel has it, else two renames."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(err, f"cannot swap in the new report set: {os.strerror(err)}", str(old))
    aside = new.with_name(f"{new.name}-previous")
    os.rename(old, aside)
    try:
        os.rename(new, old)
    except BaseException:
        os.rename(aside, old)
        raise
    os.rename(aside, new)


@contextlib.contextmanager
def claim(target: Path) -> Iterator[Staged]:
    """Check, lock and stage `target` before any work; release (and clean up) whatever happens."""
    folder = _check(target)
    lock_path = folder.parent / f".{folder.name}.lock"
    lock_fd = _lock(lock_path, target)
    staged: Staged | None = None
    previous = {}
    try:
        _sweep(folder)
        staging = folder.parent / f".{folder.name}.staging-{os.getpid()}"
        staging.mkdir(mode=0o700)
        staged = Staged(target, folder, staging, lock_fd, lock_path)
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, _interrupt)
        yield staged
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if staged is not None:
            staged.release()
        else:
            os.close(lock_fd)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _check(target: Path) -> Path:
    """The folder to publish into, resolved; every problem the user must fix is an InputError (exit 2)."""
    label = f"--output-dir {target}"
    if target.exists() and not target.is_dir():
        raise InputError.one(label, "", "is a file, not a folder")
    folder = target.resolve()
    cwd = Path.cwd().resolve()
    if folder == cwd or folder in cwd.parents:
        raise InputError.one(label, "", "is the current folder or holds it; reports need a folder of their own "
                                        "(the whole folder is replaced when a new set is published)")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.one(label, "", f"cannot create {folder.parent}: {exc.strerror or exc}") from None
    if not os.access(folder.parent, os.W_OK | os.X_OK):
        raise InputError.one(label, "", f"the folder holding it ({folder.parent}) is not writable; reports are "
                                        "staged there and swapped in")
    if folder.exists():
        subfolders = sorted(e.name for e in folder.iterdir() if e.is_dir() and not e.is_symlink())
        if subfolders:
            raise InputError.one(label, "", f"holds folders ({', '.join(subfolders[:5])}); reports need a folder "
                                            "of their own (the whole folder is replaced when a new set is published)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError.one(label, "", "is not writable")
        if folder.stat().st_dev != folder.parent.stat().st_dev:
            raise InputError.one(label, "", "is a mount point, which cannot be swapped for a new report set; "
                                            "mount the folder above it and point --output-dir inside")
    return folder


def _lock(path: Path, target: Path) -> int:
    """An exclusive lock on `path`, or exit 2 saying which process holds it; never waits."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError.one(f"--output-dir {target}", "", f"cannot create the lock {path}: "
                                                               f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError.one(f"--output-dir {target}", "", f"another backup-preflight run (pid {holder}) is "
                                 "writing reports there; refusing rather than mixing two sets: wait for it to "
                                 "finish or choose another --output-dir") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its previous holder removed while we were opening it
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return fd
        os.close(fd)


def _sweep(folder: Path) -> None:
    """Staging folders of runs that were killed (we hold the lock, so none of them is alive)."""
    for stale in folder.parent.glob(f".{folder.name}.staging-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
