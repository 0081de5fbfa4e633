"""The audit trail of journalist and admin actions: who, what, which source, which day.

No IP address, no time finer than the day (invariant 6). Entries are written inside the same
transaction as the action they record, so an action is never done without its entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from sealdrop.services.clock import Clock, utc_day
from sealdrop.storage.interfaces import Database, Repositories
from sealdrop.storage.interfaces_accounts import AuditRecord


class AuditTrail:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def record(
        self, repos: Repositories, actor: str, action: str, source_pseudonym: str | None
    ) -> None:
        repos.audit.add(utc_day(self._clock), actor, action, source_pseudonym)

    def page(self, before_id: int | None, limit: int) -> Sequence[AuditRecord]:
        with self._db.transaction() as repos:
            return repos.audit.page(before_id=before_id, limit=limit)
