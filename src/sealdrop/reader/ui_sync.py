"""Syncing while the local web interface is open: a task in the interface's own process.

Every ``interval`` seconds (and when the journalist asks) the queued replies go out and the local
copy is brought up to date, one sync at a time. What the pages show of it lives in
:class:`SyncStatus`: whether the server answered the last attempt (offline otherwise), whether the
login has expired, the progress of a sync under way, and the items that arrived during this run
(marked as new until their conversation is opened). Nothing in it is written to disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from sealdrop.errors import SealdropError, ServerUnreachable, TokenExpired
from sealdrop.reader.client import ApiClient
from sealdrop.reader.profile import Profile
from sealdrop.reader.reader import Reader
from sealdrop.reader.store import LocalItem
from sealdrop.reader.sync import SyncReport

__all__ = ["SyncStatus", "Syncer"]

DEFAULT_INTERVAL = 30.0
_log = logging.getLogger(__name__)


@dataclass
class SyncStatus:
    running: bool = False
    online: bool | None = None  # None: not tried yet in this run
    needs_login: bool = False
    error: str | None = None  # the last attempt's failure, if any
    last_synced: int | None = None  # epoch seconds (also kept in the local database)
    downloaded: int = 0  # items downloaded by the sync under way
    received: int = 0  # bytes of the item being downloaded
    expected: int = 0
    last_report: SyncReport | None = None
    # Items that arrived during this run and whose conversation was not opened since.
    fresh: dict[str, set[str]] = field(default_factory=dict)  # source id -> item ids

    def fresh_count(self) -> int:
        return sum(len(ids) for ids in self.fresh.values())

    def opened(self, source_id: str) -> set[str]:
        """The conversation of ``source_id`` is being shown: its new items are new no more
        (after this page); returns them."""
        return self.fresh.pop(source_id, set())


class Syncer:
    """One sync at a time, for the interface's pages and its background task."""

    def __init__(
        self,
        profile: Profile,
        status: SyncStatus,
        client_factory: Callable[[], ApiClient] | None,
    ) -> None:
        self._profile = profile
        self._status = status
        self._client_factory = client_factory
        self._lock = asyncio.Lock()

    async def sync(self) -> SyncReport | None:
        """Send the queued replies and sync; None when the server could not be used (the
        status says why: offline, login expired, or the error)."""
        status = self._status
        async with self._lock:
            status.running, status.downloaded, status.received, status.expected = True, 0, 0, 0
            try:
                report, items = await run_in_threadpool(self._work)
            except ServerUnreachable as exc:
                status.online, status.error = False, str(exc)
                return None
            except TokenExpired:
                status.online, status.needs_login, status.error = True, True, None
                return None
            except SealdropError as exc:
                status.error = str(exc)
                return None
            finally:
                status.running = False
            status.online, status.needs_login, status.error = True, False, None
            status.last_synced, status.last_report = int(time.time()), report
            for item in items:
                status.fresh.setdefault(item.source_id, set()).add(item.id)
            return report

    def _work(self) -> tuple[SyncReport, list[LocalItem]]:
        status = self._status

        def progress(item: LocalItem, done: int, total: int) -> None:
            status.received, status.expected = done, total
            if done >= total:
                status.downloaded += 1

        with Reader.open(self._profile, self._client_factory) as reader:
            report = reader.sync(progress)
            arrived = [reader.store.item(i) for i in report.downloaded]
            return report, [i for i in arrived if i is not None]

    async def run_every(self, interval: float) -> None:
        """The background task: a sync now, then every ``interval`` seconds, until cancelled.
        While the login is expired it waits for the journalist to log in again in the page."""
        while True:
            if not self._status.needs_login:
                try:
                    await self.sync()
                except Exception:  # a bug: to the terminal; the next round tries again
                    _log.exception("background sync failed")
            await asyncio.sleep(interval)
