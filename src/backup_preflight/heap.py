"""Give the C heap's free pages back to the system once a live collection's rows are let go.

CPython frees an object's memory to the C allocator, which keeps it: glibc returns pages from the middle of
its heap only when asked (`malloc_trim`). After a 100,000-VM live collection the rows' text, let go once it is
written out, stayed resident (about 0.7 GB), and every part forked afterwards shared it: the scan peaked at
1.4 GB instead of 1.0 (docs/performance.md). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the heap's free pages to the system; whether this C library can."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
