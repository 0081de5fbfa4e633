"""Periodic housekeeping while a server runs.

- Expired sessions are deleted promptly rather than only when their cookie comes back: a row left
  behind would keep, tied to a source, the second at which that source was last active.
- Sources that never sent anything are deleted once ``[sources] pending_purge_hours`` have
  passed, so that abandoned "start" clicks do not pile up (and a flood of them is undone).
- Retention (``[retention]``, services/retention.py) runs at the first round and then at the
  first round of each new UTC day. Nothing is stored about when it last ran: a server restarted
  every few hours runs it again at each start (harmless: a run deletes only what is due today),
  so it runs every day whatever the restarts, and a server stopped over midnight catches up when
  it starts.

With several workers on one PostgreSQL database, only the worker that holds the housekeeping lock
(``leader``: storage/leadership.py, a PostgreSQL advisory lock) runs a round; the others check
at each round whether the lock is free, so a dead holder's work is taken over within a round
(plus the time PostgreSQL takes to notice its connection is gone).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sealdrop.errors import SealdropError
from sealdrop.services.auth import AuthService
from sealdrop.services.periodic import Periodic
from sealdrop.services.retention import Retention
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.upload_quota import SharedUploadQuota, UploadQuota

log = logging.getLogger("sealdrop.maintenance")

INTERVAL_SECONDS = 60.0


class Maintenance:
    def __init__(
        self,
        sessions: SessionService,
        sources: SourceService,
        auth: AuthService | None = None,
        interval: float = INTERVAL_SECONDS,
        retention: Retention | None = None,
        leader: Callable[[], bool] | None = None,
        quota: UploadQuota | None = None,
    ) -> None:
        """``leader``: whether this process may run the round now (None: always). ``quota``:
        the upload quota, whose finished days' counts a round deletes (PostgreSQL)."""
        self._sessions = sessions
        self._sources = sources
        self._auth = auth
        self._retention = retention
        self._leader = leader
        self._quota = quota if isinstance(quota, SharedUploadQuota) else None
        self._retention_day: dt.date | None = None  # the UTC day retention last ran, this process
        self._rounds = Periodic(self._round, interval, "sealdrop-maintenance", at_once=True)

    def run_once(self) -> tuple[int, int]:
        """One round of housekeeping; returns (sessions removed, pending sources removed)."""
        if self._auth is not None:
            self._auth.purge_expired()
        removed = self._sessions.purge_expired(), self._sources.purge_pending()
        if self._quota is not None:
            self._quota.purge()
        self.run_retention_if_due()
        return removed

    def run_retention_if_due(self) -> bool:
        """Run retention if it has not run yet today (UTC) in this process; whether it ran."""
        if self._retention is None or not self._retention.rules.any:
            return False
        today = self._retention.today()
        if today == self._retention_day:
            return False
        self._retention.run()
        # Only once it succeeded: a failed run is tried again at the next round.
        self._retention_day = today
        return True

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def _round(self) -> None:
        try:
            if self._leader is None or self._leader():
                self.run_once()
        except SealdropError as exc:
            # A database outage must not end housekeeping; the next round tries again.
            log.warning("housekeeping failed: %s", type(exc).__name__)
