"""SQLAlchemy implementations of the repository Protocols in ``interfaces``.

Every method returns the frozen records of ``interfaces``, never ORM objects: nothing outside the
repository modules can lazily load, mutate or flush a row behind the transaction's back. Records
and iterators are only valid inside the ``transaction()`` block that produced them.

``SqlRepositories`` is the single entry point. Sources, submissions and replies live in
``repositories_sources``; journalist accounts (users, their keys, tokens, seen marks, the audit
log, settings) in ``repositories_accounts``; organisation recipients and source sessions here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from sealdrop.ids import RecipientId, new_id
from sealdrop.storage.interfaces import RecipientRecord, SessionRecord
from sealdrop.storage.models import Recipient, SourceSession
from sealdrop.storage.repositories_accounts import (
    SqlAuditRepository,
    SqlSeenRepository,
    SqlSettingRepository,
    SqlTokenRepository,
    SqlUserRecipientRepository,
    SqlUserRepository,
)
from sealdrop.storage.repositories_notifications import SqlNotificationRepository
from sealdrop.storage.repositories_retention import SqlRetentionRepository
from sealdrop.storage.repositories_sources import (
    SqlReplyRepository,
    SqlSourceRepository,
    SqlSubmissionRepository,
)
from sealdrop.storage.repositories_triage import SqlTriageRepository
from sealdrop.storage.sqlhelpers import execute_dml, flush

__all__ = [
    "SqlAuditRepository",
    "SqlNotificationRepository",
    "SqlRecipientRepository",
    "SqlReplyRepository",
    "SqlRepositories",
    "SqlSeenRepository",
    "SqlSessionRepository",
    "SqlSettingRepository",
    "SqlSourceRepository",
    "SqlSubmissionRepository",
    "SqlTokenRepository",
    "SqlTriageRepository",
    "SqlUserRecipientRepository",
    "SqlUserRepository",
]


def _session(row: SourceSession) -> SessionRecord:
    return SessionRecord(
        id_hash=row.id_hash,
        sealed_identity=row.sealed_identity,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        confirmed=row.confirmed,
    )


class SqlRecipientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, public_key: str, name: str) -> RecipientRecord:
        row = Recipient(id=new_id(), public_key=public_key, name=name)
        self._session.add(row)
        flush(self._session)
        return RecipientRecord(id=RecipientId(row.id), public_key=row.public_key, name=row.name)

    def list(self) -> Sequence[RecipientRecord]:
        rows = self._session.scalars(select(Recipient).order_by(Recipient.name, Recipient.id))
        return [RecipientRecord(RecipientId(r.id), r.public_key, r.name) for r in rows]

    def remove(self, recipient_id: RecipientId) -> bool:
        return execute_dml(self._session, delete(Recipient).where(Recipient.id == recipient_id)) > 0


class SqlSessionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: SessionRecord) -> None:
        self._session.add(
            SourceSession(
                id_hash=record.id_hash,
                sealed_identity=record.sealed_identity,
                created_at=record.created_at,
                last_seen_at=record.last_seen_at,
                confirmed=record.confirmed,
            )
        )
        flush(self._session)

    def get(self, id_hash: bytes) -> SessionRecord | None:
        row = self._session.get(SourceSession, id_hash)
        return None if row is None else _session(row)

    def touch(self, id_hash: bytes, now: int) -> None:
        stmt = update(SourceSession).where(SourceSession.id_hash == id_hash)
        self._session.execute(stmt.values(last_seen_at=now))

    def confirm(self, id_hash: bytes) -> None:
        stmt = update(SourceSession).where(SourceSession.id_hash == id_hash)
        self._session.execute(stmt.values(confirmed=True))

    def delete(self, id_hash: bytes) -> None:
        execute_dml(self._session, delete(SourceSession).where(SourceSession.id_hash == id_hash))

    def purge(self, idle_before: int, created_before: int) -> int:
        stmt = delete(SourceSession).where(
            or_(
                SourceSession.last_seen_at < idle_before,
                SourceSession.created_at < created_before,
            )
        )
        return execute_dml(self._session, stmt)


class SqlRepositories:
    """Every repository, all bound to one Session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self._sources = SqlSourceRepository(session)
        self._submissions = SqlSubmissionRepository(session)
        self._replies = SqlReplyRepository(session)
        self._recipients = SqlRecipientRepository(session)
        self._sessions = SqlSessionRepository(session)
        self._users = SqlUserRepository(session)
        self._user_recipients = SqlUserRecipientRepository(session)
        self._tokens = SqlTokenRepository(session)
        self._seen = SqlSeenRepository(session)
        self._audit = SqlAuditRepository(session)
        self._settings = SqlSettingRepository(session)
        self._triage = SqlTriageRepository(session)
        self._notifications = SqlNotificationRepository(session)
        self._retention = SqlRetentionRepository(session)

    @property
    def sources(self) -> SqlSourceRepository:
        return self._sources

    @property
    def submissions(self) -> SqlSubmissionRepository:
        return self._submissions

    @property
    def replies(self) -> SqlReplyRepository:
        return self._replies

    @property
    def recipients(self) -> SqlRecipientRepository:
        return self._recipients

    @property
    def sessions(self) -> SqlSessionRepository:
        return self._sessions

    @property
    def users(self) -> SqlUserRepository:
        return self._users

    @property
    def user_recipients(self) -> SqlUserRecipientRepository:
        return self._user_recipients

    @property
    def tokens(self) -> SqlTokenRepository:
        return self._tokens

    @property
    def seen(self) -> SqlSeenRepository:
        return self._seen

    @property
    def audit(self) -> SqlAuditRepository:
        return self._audit

    @property
    def settings(self) -> SqlSettingRepository:
        return self._settings

    @property
    def triage(self) -> SqlTriageRepository:
        return self._triage

    @property
    def notifications(self) -> SqlNotificationRepository:
        return self._notifications

    @property
    def retention(self) -> SqlRetentionRepository:
        return self._retention
