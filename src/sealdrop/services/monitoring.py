"""What a running server tells a monitoring system, and when.

Counts and levels are kept in memory as requests happen (``IntakeTally``, ``Level``), but
nothing reads them live: ``SnapshotTimer`` copies them, with tor's state and the free space of the
storage folders, into a ``Snapshot`` at the start and then only at the multiples of
``[metrics] refresh_seconds`` since 1970-01-01 00:00 UTC, and the metrics listener publishes the
last snapshot (web/metrics.py). A scrape every few seconds therefore sees a counter move at most
once per interval, by the number of submissions of the whole interval: it cannot tell when within
it a single submission arrived (docs/design.md R37). For the same reason levels (connections,
uploads, derivations) are published as the peak since the previous snapshot, not as the value at
the moment of the snapshot, which would date an upload in progress to the second.

Nothing here is per source: totals only, and labels from fixed sets (a refusal's reason, a
listener's name, a folder's role), never an id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from sealdrop.errors import (
    ClientDisconnected,
    CsrfTokenInvalid,
    DuplicateMessage,
    EmptySubmission,
    FilesNotAccepted,
    MalformedUpload,
    MessageTooLong,
    NotAcceptingSubmissions,
    SessionRequired,
    StorageError,
    TooManyItems,
    TooManyRequests,
    UploadQuotaExceeded,
    UploadTooLarge,
)

log = logging.getLogger("sealdrop.monitoring")

# Why a submission was refused: the distinctions the source interface's error pages already make
# (web/errors.py), most specific first. A fixed set: a label value never comes from a request.
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (UploadQuotaExceeded, "quota"),
    (UploadTooLarge, "too_large"),
    (TooManyItems, "too_many_items"),
    (MessageTooLong, "message_too_long"),
    (FilesNotAccepted, "files_not_accepted"),
    (EmptySubmission, "empty"),
    (DuplicateMessage, "malformed"),
    (MalformedUpload, "malformed"),
    (CsrfTokenInvalid, "form_expired"),
    (NotAcceptingSubmissions, "not_accepting"),
    (SessionRequired, "no_session"),
    (TooManyRequests, "rate_limited"),
    (ClientDisconnected, "disconnected"),
    (StorageError, "storage"),
    # The request was cancelled: its client went away while it waited.
    (asyncio.CancelledError, "disconnected"),
)
REFUSAL_REASONS: tuple[str, ...] = (*dict.fromkeys(r for _, r in _REASONS), "other")


def refusal_reason(exc: BaseException) -> str:
    """The label of a refused submission's reason (one of ``REFUSAL_REASONS``)."""
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "other"


class Level:
    """How many of something are in use now, and the most at once since the last ``take``.

    Thread-safe: connections come and go on the event loop, uploads and derivations in worker
    threads, and the snapshot is taken in a thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self._peak = 0

    def enter(self) -> None:
        with self._lock:
            self._now += 1
            self._peak = max(self._peak, self._now)

    def leave(self) -> None:
        with self._lock:
            self._now -= 1

    def take_peak(self) -> int:
        """The peak since the previous call; the next one starts from the current level."""
        with self._lock:
            peak, self._peak = self._peak, self._now
            return peak


class IntakeTally:
    """Submissions accepted and refused (by reason) since the server started, and the uploads
    running at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = 0
        self._refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self.in_progress = Level()

    def accepted(self) -> None:
        with self._lock:
            self._accepted += 1

    def refused(self, exc: BaseException) -> None:
        with self._lock:
            self._refused[refusal_reason(exc)] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count the submission received in the block: accepted if it ends normally, else
        refused for the reason its exception gives."""
        self.in_progress.enter()
        try:
            yield
        except BaseException as exc:
            self.refused(exc)
            raise
        else:
            self.accepted()
        finally:
            self.in_progress.leave()

    def totals(self) -> tuple[int, dict[str, int]]:
        with self._lock:
            return self._accepted, dict(self._refused)


@dataclass(frozen=True, slots=True)
class FolderSpace:
    free_bytes: int
    total_bytes: int


def folder_space(path: Path) -> FolderSpace | None:
    """Free space (for an unprivileged writer) and size of the filesystem holding ``path``;
    None when it cannot be read (a folder not made yet, a permission problem)."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return FolderSpace(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


def storage_folders(
    blob_dir: Path, database_url: str, object_store: bool = False
) -> dict[str, Path]:
    """The folders whose free space matters, by role: the blob store's, and the SQLite database
    file's (a PostgreSQL database lives elsewhere; its server is monitored on its own). With the
    blobs in an object store (``object_store``) no local folder holds them: the store's space is
    the store's to report, and a local folder's would mislead."""
    folders = {} if object_store else {"blobs": blob_dir}
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        folders["database"] = Path(url.database).parent
    return folders


@dataclass(frozen=True, slots=True)
class TorState:
    enabled: bool
    running: bool
    bootstrap_percent: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the metrics show, as of ``taken_at``."""

    started_at: float
    taken_at: float
    tor: TorState
    accepted: int
    refused: Mapping[str, int]
    uploads_peak: int
    uploads_capacity: int
    kdf_peak: int
    kdf_capacity: int
    connections_peak: Mapping[str, int]
    connections_capacity: int
    storage: Mapping[str, FolderSpace]
    notices_sent: int
    notices_failed: int
    # Whether the server's last readiness check (GET /readyz, services/readiness.py) reached its
    # database and blob store, as of the snapshot.
    ready: bool


class SnapshotTimer:
    """Takes a snapshot now and then at every multiple of ``interval`` seconds since the epoch,
    in a thread of its own (a slow tor control port or disk never delays a request or a scrape).
    ``latest`` is what the metrics listener publishes."""

    def __init__(
        self,
        take: Callable[[], Snapshot],
        interval: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._take = take
        self._interval = interval
        self._now = now
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._thread = threading.Thread(target=self._loop, name="sealdrop-metrics", daemon=True)

    @property
    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._latest

    def refresh(self) -> None:
        """Take one snapshot now (at start, and at each scheduled time)."""
        snapshot = self._take()
        with self._lock:
            self._latest = snapshot

    def start(self) -> None:
        self._refresh_or_log()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        done = int(self._now() // self._interval)
        while True:
            due = (done + 1) * self._interval
            if self._stop.wait(max(0.0, due - self._now())):
                return
            if self._now() < due:
                continue  # woken a little early: never publish before the scheduled time
            done = int(self._now() // self._interval)
            self._refresh_or_log()

    def _refresh_or_log(self) -> None:
        try:
            self.refresh()
        except Exception as exc:
            # Monitoring must never end (or stop from starting) the server; the previous
            # snapshot stays published (its time says how old it is).
            log.warning("metrics snapshot failed: %s", type(exc).__name__)
