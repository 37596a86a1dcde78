"""A file's SHA-256 computed on a thread of its own while its text is decoded.

hashlib lets go of the interpreter lock for large chunks, so the hash of a snapshot read a row at a time
(about 1.7 GB/s: 5 s for a 9 GB file of 1,000,000 VMs) runs on another core beside the decoding instead
of before it. The thread has ended once the digest is read or `close` is called, before any part of a
scan is forked.
"""

from __future__ import annotations

import hashlib
import queue
import threading

#: Chunks waiting to be hashed at most (1 MiB each as snapshot.py reads them): the reading waits beyond.
_WAITING = 8


class BackgroundSha256:
    """`update` hands a chunk to the thread; `hexdigest` waits for the thread and gives the hash."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_WAITING)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._hash, name="sha256", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        """Hash every chunk until the end; a failure is kept for `hexdigest` and the thread goes on taking
        chunks, so that `update` never waits for a thread that has stopped."""
        while (chunk := self._chunks.get()) is not None:
            try:
                self._digest.update(chunk)
            except BaseException as exc:  # raised by hexdigest, on the reading thread
                self._failed = exc

    def update(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def hexdigest(self) -> str:
        self.close()
        if self._failed is not None:
            raise self._failed
        return self._digest.hexdigest()

    def close(self) -> None:
        """End the thread (what was handed to it is hashed first)."""
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()
