"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from backup_preflight.errors import InputError


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO]:
    """Yield a temp file beside `path`; rename it over `path` only if the block finishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_target(path: Path, label: str) -> None:
    """Refuse, as an input error (exit 2) before any work, a file `atomic_writer` could not write: a folder or
    another file that is no regular file, or one whose folder cannot be created or written to."""
    if path.exists() and not path.is_file():
        raise InputError.one(label, "", "is a folder; give the name of a file" if path.is_dir()
                             else "is not a regular file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.one(label, "", f"cannot create {path.parent}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError.one(label, "", f"the folder holding it ({path.parent}) is not writable")
