"""The bounded pool in which codename derivations run (invariant 10).

Each Argon2id call holds 64 MiB for a few hundred milliseconds. However many requests ask at once,
at most ``max_concurrent`` derivations run, so the memory they can take is bounded by
``max_concurrent x 64 MiB``; the others wait their turn.

The pool's threads also run at a lower CPU priority (``KDF_NICENESS``) than the threads that serve
pages. A flood of made-up codenames keeps the pool busy; without this, on a small machine the
derivations took every core and doubled the time other pages waited (measured by ``bench/run``,
benchmark 4). The trade: under load a genuine login waits longer for its derivation, and
browsing, reading replies and submitting stay quick for everyone already logged in.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import SourceKeys, derive_source_keys
from sealdrop.services.monitoring import Level

# How much nicer (lower priority) than the server a derivation thread runs: at 10, the Linux
# scheduler gives a busy thread of the server about ten times its share of a contended core.
KDF_NICENESS = 10


class KdfPool:
    def __init__(self, salt: bytes, max_concurrent: int) -> None:
        self._salt = salt
        self.capacity = max_concurrent
        # Derivations running or waiting for a slot (the metrics publish the peak).
        self.busy = Level()
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix="sealdrop-kdf",
            initializer=_lower_priority,
        )

    def derive(self, codename: Codename) -> SourceKeys:
        """Derive a source's keys; blocks the caller until a pool slot has done it."""
        self.busy.enter()
        try:
            return self._executor.submit(derive_source_keys, codename, self._salt).result()
        finally:
            self.busy.leave()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _lower_priority() -> None:
    """Make the calling thread nicer. On Linux the nice value is per thread (PRIO_PROCESS with a
    thread id), so the rest of the server keeps its priority; libargon2 runs the hash in this
    thread (parallelism 1). Raising one's own niceness needs no privilege; where it fails (not
    Linux, a sandbox forbidding it), derivations simply run at normal priority."""
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + KDF_NICENESS))
    except (OSError, AttributeError):
        pass
