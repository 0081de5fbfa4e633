"""The bounded pool in which codename derivations run (invariant 10).

Each Argon2id call holds 64 MiB for a few hundred milliseconds. However many requests ask at once,
at most ``max_concurrent`` derivations run, so the memory they can take is bounded by
``max_concurrent x 64 MiB``; the others wait their turn.

The derivations run in **processes of their own** (``max_concurrent`` of them, each started at
its first derivation), not in threads of the server. A flood of made-up codenames keeps the pool
busy, and in threads each derivation mapped, faulted in and unmapped 64 MiB of the server's own
address space, where the page faults and unmaps of the threads serving pages wait on the same
memory map lock (``bench/run``, benchmark 4). In a process of its own a derivation touches none of
the server's memory. Each is ``python -m sealdrop.services.kdf_child``: a fresh interpreter that
imports the derivation only (not a copy of the server: no session key or database handle is in
it; not ``multiprocessing``, whose children import the parent's main module, here the whole
command line and web app: 110 MiB and seconds per process). The codename goes there and the
keys come back through a pipe, never a file, so invariant 4 holds (the codename lives only in
memory, for the one request). A process that dies is replaced.

They also run at a lower CPU priority (``KDF_NICENESS``) than the server: without this, on a small
machine the derivations took every core and doubled the time other pages waited. The trade: under
load a genuine login waits longer for its derivation, and browsing, reading replies and submitting
stay quick for everyone already logged in.

``processes=False`` runs the same pool in threads of the caller (each at the same lower
priority), as before: for a caller that must not start processes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import SourceKeys, derive_source_keys
from sealdrop.crypto.keys import parse_identity
from sealdrop.services import kdf_child
from sealdrop.services.monitoring import Level

# How much nicer (lower priority) than the server a derivation runs: at 10, the Linux scheduler
# gives a busy thread of the server about ten times its share of a contended core.
KDF_NICENESS = 10


class KdfPool:
    def __init__(self, salt: bytes, max_concurrent: int, *, processes: bool = True) -> None:
        self._salt = salt
        self.capacity = max_concurrent
        # Derivations running or waiting for a slot (the metrics publish the peak).
        self.busy = Level()
        self._threads: ThreadPoolExecutor | None = None
        # The slots: each holds a derivation process, or None until its first derivation.
        self._slots: queue.Queue[_Child | None] | None = None
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        if processes:
            self._slots = queue.Queue()
            for _ in range(max_concurrent):
                self._slots.put(None)
        else:
            self._threads = ThreadPoolExecutor(
                max_workers=max_concurrent,
                thread_name_prefix="sealdrop-kdf",
                initializer=_lower_thread_priority,
            )

    def derive(self, codename: Codename) -> SourceKeys:
        """Derive a source's keys; blocks the caller until a pool slot has done it."""
        self.busy.enter()
        try:
            if self._threads is not None:
                return self._threads.submit(derive_source_keys, codename, self._salt).result()
            return self._derive_in_child(codename)
        finally:
            self.busy.leave()

    def _derive_in_child(self, codename: Codename) -> SourceKeys:
        assert self._slots is not None
        child = self._slots.get()  # at most max_concurrent derivations: the others wait here
        try:
            if child is None or not child.alive():
                child = self._start()
            try:
                lookup_id, identity, hybrid_seed = child.derive(codename)
            except OSError:
                # The process died (the kernel's OOM killer, an operator's kill): start another,
                # or every later login would fail, and try once more.
                child.stop()
                child = self._start()
                lookup_id, identity, hybrid_seed = child.derive(codename)
        except BaseException:
            # Whatever was cut short, this process may be halfway through an answer: never hand
            # it to the next derivation.
            if child is not None:
                child.stop()
            self._slots.put(None)
            raise
        self._slots.put(child)
        if not lookup_id:
            raise ValueError("the derivation process refused the codename")
        return SourceKeys(
            lookup_id=lookup_id,
            reply_identity=parse_identity(identity),
            hybrid_reply_seed=hybrid_seed,
        )

    def _start(self) -> _Child:
        child = _Child(self._salt)
        with self._lock:
            self._children = [c for c in self._children if c.alive()] + [child]
        return child

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.stop()

    def child_pids(self) -> list[int]:
        """The derivation processes running now (for tests and the operator's ``ps``)."""
        with self._lock:
            return [c.pid for c in self._children if c.alive()]


class _Child:
    """One derivation process, used by one derivation at a time."""

    def __init__(self, salt: bytes) -> None:
        # Only what locates the interpreter and the package: the server's environment may hold
        # secrets (SEALDROP_* settings), which a derivation has no use for.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", kdf_child.__name__, str(KDF_NICENESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.pid = self._process.pid
        kdf_child.write_fields(self._stdin(), salt)

    def _stdin(self) -> IO[bytes]:
        assert self._process.stdin is not None
        return self._process.stdin

    def alive(self) -> bool:
        return self._process.poll() is None

    def derive(self, codename: Codename) -> tuple[bytes, str, bytes]:
        kdf_child.write_fields(self._stdin(), codename.encode("utf-8"))
        assert self._process.stdout is not None
        lookup_id = kdf_child.read_field(self._process.stdout)
        identity = kdf_child.read_field(self._process.stdout)
        hybrid_seed = kdf_child.read_field(self._process.stdout)
        if lookup_id is None or identity is None or hybrid_seed is None:
            raise BrokenPipeError("the derivation process ended")
        return lookup_id, identity.decode("ascii"), hybrid_seed

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin().close()  # its read ends: the process exits
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _lower_thread_priority() -> None:
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
