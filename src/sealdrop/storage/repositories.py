"""SQLAlchemy implementations of the repository Protocols in ``interfaces``.

Every method returns the frozen records of ``interfaces``, never ORM objects: nothing outside this
module can lazily load, mutate or flush a row behind the transaction's back. Records and
iterators are only valid inside the ``transaction()`` block that produced them.

Deleting a source relies on the database's ON DELETE CASCADE (SQLite included: ``database.py``
turns foreign keys on for every connection) to remove its submissions, replies and sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, RecipientId, ReplyId, SourceId, SubmissionId, new_id
from sealdrop.storage.interfaces import (
    NewSubmission,
    RecipientRecord,
    ReplyRecord,
    SessionRecord,
    SourceRecord,
    SubmissionKind,
    SubmissionRecord,
)
from sealdrop.storage.models import Recipient, Reply, Source, SourceSession, Submission
from sealdrop.storage.sqlerrors import translated_errors


def _flush(session: Session) -> None:
    # Flush now, so that a constraint violation raises StorageError at the call that caused it.
    with translated_errors():
        session.flush()


def _delete(session: Session, stmt: Delete) -> int:
    """Run a DELETE; return how many rows it removed."""
    # Session.execute is typed as returning a plain Result; a DELETE always yields a CursorResult.
    result = cast(CursorResult[Any], session.execute(stmt))
    return result.rowcount


def _delete_sources(session: Session, stmt: Delete) -> int:
    """Run a DELETE on sources in one statement; return how many sources it removed.

    The database cascades to submissions, replies and sessions behind the ORM's back. The
    identity map holds objects weakly and this module keeps none, so a deleted row is normally
    not cached; expiring everything guarantees that ``Session.get`` goes to the database and
    never serves a row deleted here, whatever still references it. Safe because every write here
    is flushed at once (and the DELETE autoflushes first): no unflushed change can be lost.
    """
    # synchronize_session=False: no SELECT before the DELETE, and no attempt to evaluate the
    # subquery in Python; the expiry below does the synchronising.
    removed = _delete(session, stmt.execution_options(synchronize_session=False))
    session.expire_all()
    return removed


def _source(row: Source) -> SourceRecord:
    return SourceRecord(
        id=SourceId(row.id),
        lookup_id=row.lookup_id,
        reply_recipient=row.reply_recipient,
        created_day=row.created_day,
        pseudonym=row.pseudonym,
        pending_since=row.pending_since,
    )


def _submission(row: Submission) -> SubmissionRecord:
    return SubmissionRecord(
        id=SubmissionId(row.id),
        source_id=SourceId(row.source_id),
        seq=row.seq,
        kind=cast(SubmissionKind, row.kind),
        arrival_day=row.arrival_day,
        blob_key=BlobKey(row.blob_key),
        size=row.size,
        metadata_ciphertext=row.metadata_ciphertext,
    )


def _reply(row: Reply) -> ReplyRecord:
    return ReplyRecord(
        id=ReplyId(row.id),
        source_id=SourceId(row.source_id),
        seq=row.seq,
        arrival_day=row.arrival_day,
        blob_key=BlobKey(row.blob_key),
        size=row.size,
    )


def _session(row: SourceSession) -> SessionRecord:
    return SessionRecord(
        id_hash=row.id_hash,
        source_id=SourceId(row.source_id),
        sealed_identity=row.sealed_identity,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        confirmed=row.confirmed,
    )


class SqlSourceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        lookup_id: bytes,
        reply_recipient: str,
        created_day: dt.date | None,
        pseudonym: str,
        pending_since: int | None,
    ) -> SourceRecord:
        row = Source(
            id=new_id(),
            lookup_id=lookup_id,
            reply_recipient=reply_recipient,
            created_day=created_day,
            pseudonym=pseudonym,
            pending_since=pending_since,
            last_seq=0,
        )
        self._session.add(row)
        _flush(self._session)
        return _source(row)

    def mark_active(self, source_id: SourceId) -> None:
        # Metadata minimisation: once a source has sent something, the second it was created is
        # no longer needed, so it is not kept.
        stmt = update(Source).where(Source.id == source_id).values(pending_since=None)
        self._session.execute(stmt)

    def purge_pending(self, created_before: int) -> int:
        # One DELETE with a correlated NOT EXISTS, not a loop over candidates that would leave a
        # window between the check and the delete. NULL pending_since (active) never matches.
        # A race with a source's first submission: SQLite serialises writers, so the purge sees
        # all or nothing of it. PostgreSQL (READ COMMITTED), when the DELETE waited for a row
        # lock, re-checks only the source row's own columns, not the subquery: the submission's
        # transaction must therefore also call mark_active() (clearing pending_since on this row)
        # before it commits, or the purge would delete the source and, by cascade, the
        # submission just accepted. If the purge wins the lock instead, the submission's insert
        # fails its foreign-key check and nothing is accepted.
        has_submission = exists().where(Submission.source_id == Source.id)
        stmt = delete(Source).where(Source.pending_since < created_before, ~has_submission)
        return _delete_sources(self._session, stmt)

    def delete(self, source_id: SourceId) -> bool:
        return _delete_sources(self._session, delete(Source).where(Source.id == source_id)) > 0

    def get(self, source_id: SourceId) -> SourceRecord | None:
        row = self._session.get(Source, source_id)
        return None if row is None else _source(row)

    def by_lookup_id(self, lookup_id: bytes) -> SourceRecord | None:
        row = self._session.scalars(select(Source).where(Source.lookup_id == lookup_id)).first()
        return None if row is None else _source(row)

    def reserve_sequence(self, source_id: SourceId, count: int) -> int:
        if count < 1:
            raise ValueError("count must be at least 1")
        # One statement that increments and returns: the row lock (PostgreSQL) or the write lock
        # (SQLite) makes concurrent reservations queue, so two submissions never share a number.
        # A read-then-write would let two transactions read the same last_seq.
        stmt = (
            update(Source)
            .where(Source.id == source_id)
            .values(last_seq=Source.last_seq + count)
            .returning(Source.last_seq)
        )
        with translated_errors():
            last = self._session.execute(stmt).scalar_one_or_none()
        if last is None:
            raise StorageError("no such source")
        return last - count + 1


class SqlSubmissionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self, source_id: SourceId, seq: int, arrival_day: dt.date | None, new: NewSubmission
    ) -> SubmissionRecord:
        row = Submission(
            id=new_id(),
            source_id=source_id,
            seq=seq,
            kind=new.kind,
            arrival_day=arrival_day,
            blob_key=new.blob_key,
            size=new.size,
            metadata_ciphertext=new.metadata_ciphertext,
        )
        self._session.add(row)
        _flush(self._session)
        return _submission(row)

    def get(self, submission_id: SubmissionId) -> SubmissionRecord | None:
        row = self._session.get(Submission, submission_id)
        return None if row is None else _submission(row)

    def for_source(self, source_id: SourceId) -> Sequence[SubmissionRecord]:
        stmt = select(Submission).where(Submission.source_id == source_id).order_by(Submission.seq)
        return [_submission(row) for row in self._session.scalars(stmt)]

    def all(self) -> Iterator[SubmissionRecord]:
        stmt = select(Submission).order_by(Submission.source_id, Submission.seq)
        # Stream in batches: a large instance need not fit in memory at once.
        for row in self._session.scalars(stmt.execution_options(yield_per=500)):
            yield _submission(row)

    def blob_keys(self) -> set[BlobKey]:
        return {BlobKey(key) for key in self._session.scalars(select(Submission.blob_key))}


class SqlReplyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        source_id: SourceId,
        seq: int,
        arrival_day: dt.date | None,
        blob_key: BlobKey,
        size: int,
    ) -> ReplyRecord:
        row = Reply(
            id=new_id(),
            source_id=source_id,
            seq=seq,
            arrival_day=arrival_day,
            blob_key=blob_key,
            size=size,
        )
        self._session.add(row)
        _flush(self._session)
        return _reply(row)

    def get(self, reply_id: ReplyId) -> ReplyRecord | None:
        row = self._session.get(Reply, reply_id)
        return None if row is None else _reply(row)

    def for_source(self, source_id: SourceId) -> Sequence[ReplyRecord]:
        stmt = select(Reply).where(Reply.source_id == source_id).order_by(Reply.seq)
        return [_reply(row) for row in self._session.scalars(stmt)]

    def delete(self, reply_id: ReplyId) -> bool:
        return _delete(self._session, delete(Reply).where(Reply.id == reply_id)) > 0

    def blob_keys(self) -> set[BlobKey]:
        return {BlobKey(key) for key in self._session.scalars(select(Reply.blob_key))}


class SqlRecipientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, public_key: str, name: str) -> RecipientRecord:
        row = Recipient(id=new_id(), public_key=public_key, name=name)
        self._session.add(row)
        _flush(self._session)
        return RecipientRecord(id=RecipientId(row.id), public_key=row.public_key, name=row.name)

    def list(self) -> Sequence[RecipientRecord]:
        rows = self._session.scalars(select(Recipient).order_by(Recipient.name, Recipient.id))
        return [RecipientRecord(RecipientId(r.id), r.public_key, r.name) for r in rows]

    def remove(self, recipient_id: RecipientId) -> bool:
        return _delete(self._session, delete(Recipient).where(Recipient.id == recipient_id)) > 0


class SqlSessionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: SessionRecord) -> None:
        self._session.add(
            SourceSession(
                id_hash=record.id_hash,
                source_id=record.source_id,
                sealed_identity=record.sealed_identity,
                created_at=record.created_at,
                last_seen_at=record.last_seen_at,
                confirmed=record.confirmed,
            )
        )
        _flush(self._session)

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
        _delete(self._session, delete(SourceSession).where(SourceSession.id_hash == id_hash))

    def delete_for_source(self, source_id: SourceId) -> None:
        _delete(self._session, delete(SourceSession).where(SourceSession.source_id == source_id))

    def purge(self, idle_before: int, created_before: int) -> int:
        stmt = delete(SourceSession).where(
            or_(
                SourceSession.last_seen_at < idle_before,
                SourceSession.created_at < created_before,
            )
        )
        return _delete(self._session, stmt)


class SqlRepositories:
    """The five repositories, all bound to one Session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self._sources = SqlSourceRepository(session)
        self._submissions = SqlSubmissionRepository(session)
        self._replies = SqlReplyRepository(session)
        self._recipients = SqlRecipientRepository(session)
        self._sessions = SqlSessionRepository(session)

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
