"""Whether this server can serve sources now: ``GET /readyz`` (web/health.py).

``/healthz`` says only that the process answers. Behind Onionbalance that is not enough: a worker
whose database or blob store cannot be reached (a network partition between its host and
PostgreSQL or the object store, a disk no longer mounted) still answers ``/healthz``, so the
watcher (``sealdrop balance --watch``) kept it in the front's descriptor while every source sent
to it failed (docs/design.md, R41). ``/readyz`` answers 200 only while the last check of both
succeeded.

A thread checks every ``interval`` seconds (10): one ``SELECT 1`` and one cheap request to the
store (``BlobStore.probe``: a ``stat`` of its folders, or one S3 HeadBucket). Requests only read
the last result: a flood of ``/readyz`` costs nothing more, and a database that hangs holds the
checking thread (for the driver's connect timeout), never a request. The first check is made
as the server starts, before it serves (not ready until then).

What it says is a bit and a reason kept in this process (logged when it changes, never
answered): nothing a visitor could not learn from a failing page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sealdrop.errors import StorageError
from sealdrop.services.periodic import Periodic

log = logging.getLogger("sealdrop.readiness")

INTERVAL_SECONDS = 10.0
_NOT_CHECKED = "not checked yet"


class Readiness:
    """The last readiness check's result, and the thread that makes one every interval."""

    def __init__(
        self,
        ping_database: Callable[[], None],
        probe_store: Callable[[], None],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self._checks = (("database", ping_database), ("blob store", probe_store))
        self._problem: str | None = _NOT_CHECKED
        self._rounds = Periodic(self.check, interval, "sealdrop-readiness", at_once=False)

    def ready(self) -> bool:
        """Whether the last check succeeded (a read of one attribute: safe from any thread)."""
        return self._problem is None

    @property
    def problem(self) -> str | None:
        """Why the server is not ready (what the log says); None when it is."""
        return self._problem

    def check(self) -> str | None:
        """Check both now; remember and return the problem (None: ready)."""
        problem = None
        for name, probe in self._checks:
            try:
                probe()
            except StorageError as exc:  # DatabaseUnavailable is one
                problem = f"{name}: {exc}"
                break
            except Exception as exc:  # a driver's or a client's own error: still not ready
                problem = f"{name}: {type(exc).__name__}"
                break
        if problem != self._problem:
            if problem is None:
                log.info("ready: the database and the blob store answer")
            else:
                log.warning("not ready (GET /readyz answers 503): %s", problem)
        self._problem = problem
        return problem

    def start(self) -> None:
        """Check once now (``serve`` has just reached the database to migrate it: this is quick),
        so that the server is ready as it starts serving and the metrics' first snapshot says
        so; then every interval in the thread."""
        self.check()
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
