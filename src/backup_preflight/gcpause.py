"""Pausing the cyclic garbage collector while millions of long-lived, acyclic objects are built.

Snapshot rows, fact records and findings never form reference cycles, but creating them triggers
full collections over an ever larger heap: parsing a 900 MB snapshot took twice as long with the
collector running. Reference counting still frees everything as usual.

When the pause ends, what was built is moved to the collector's permanent generation
(`gc.freeze`), so the next full collection does not walk millions of objects that cannot be
cyclic garbage: at 100,000 VMs that walk cost 3.3 s of a 43 s scan (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()
