"""SQLAlchemy repositories for sources and their conversation: submissions and replies.

Deleting a source relies on the database's ON DELETE CASCADE (SQLite included: ``database.py``
turns foreign keys on for every connection) to remove its submissions and replies. Its sessions
are not linked to it (``models.SourceSession``): they stop resolving once the source is gone, and
are deleted then or when they expire.
Journalists' "seen" marks name submissions and replies without a foreign key (``models.Seen``):
the delete methods here remove the marks of what they delete, in the same transaction. A mark
that escapes (``purge_pending`` deletes sources that never sent anything, so they have none; a
mark written concurrently with a delete) is harmless: ids are random and never reused.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator, Sequence
from typing import cast

from sqlalchemy import Delete, delete, exists, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, ReplyId, SourceId, SubmissionId, UserId, new_id
from sealdrop.storage.interfaces import (
    NewSubmission,
    ReplyRecord,
    SourceRecord,
    SubmissionKind,
    SubmissionRecord,
)
from sealdrop.storage.models import Reply, Seen, Source, Submission
from sealdrop.storage.sqlerrors import translated_errors
from sealdrop.storage.sqlhelpers import execute_dml, flush, next_counter_value

# The name of the counters row that source versions come from.
SOURCE_VERSION = "source_version"
SESSION_EPOCH_BYTES = 16


def _delete_sources(session: Session, stmt: Delete) -> int:
    """Run a DELETE on sources in one statement; return how many sources it removed.

    The database cascades to submissions and replies behind the ORM's back. The
    identity map holds objects weakly and this module keeps none, so a deleted row is normally
    not cached; expiring everything guarantees that ``Session.get`` goes to the database and
    never serves a row deleted here, whatever still references it. Safe because every write here
    is flushed at once (and the DELETE autoflushes first): no unflushed change can be lost.
    """
    # synchronize_session=False: no SELECT before the DELETE, and no attempt to evaluate the
    # subquery in Python; the expiry below does the synchronising.
    removed = execute_dml(session, stmt.execution_options(synchronize_session=False))
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
        starred=row.starred,
        version=row.version,
        session_epoch=row.session_epoch or b"",
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
        digest=row.digest,
    )


def _reply(row: Reply) -> ReplyRecord:
    return ReplyRecord(
        id=ReplyId(row.id),
        source_id=SourceId(row.source_id),
        seq=row.seq,
        arrival_day=row.arrival_day,
        blob_key=BlobKey(row.blob_key),
        size=row.size,
        digest=row.digest,
        author_id=None if row.author_id is None else UserId(row.author_id),
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
            starred=False,
            version=0,
            session_epoch=secrets.token_bytes(SESSION_EPOCH_BYTES),
        )
        self._session.add(row)
        flush(self._session)
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
        # The seen marks first, while the ids of the source's items can still be found.
        submission_ids = select(Submission.id).where(Submission.source_id == source_id)
        reply_ids = select(Reply.id).where(Reply.source_id == source_id)
        marks = delete(Seen).where(
            or_(Seen.item_id.in_(submission_ids), Seen.item_id.in_(reply_ids))
        )
        # No session synchronising: seen marks are never loaded as ORM objects.
        execute_dml(self._session, marks.execution_options(synchronize_session=False))
        return _delete_sources(self._session, delete(Source).where(Source.id == source_id)) > 0

    def page(
        self, *, after_version: int, limit: int, starred: bool | None = None
    ) -> Sequence[SourceRecord]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Listed: every source that has ever sent something (pending_since cleared), even after
        # journalists deleted all its submissions, so that it can still be found and deleted.
        stmt = select(Source).where(Source.version > after_version, Source.pending_since.is_(None))
        if starred is not None:
            stmt = stmt.where(Source.starred == starred)
        stmt = stmt.order_by(Source.version).limit(limit)
        return [_source(row) for row in self._session.scalars(stmt)]

    def bump_version(self, source_id: SourceId) -> int:
        """Give the source the next value of the instance-wide change counter; return it.

        Versions become visible in the order they were taken (see ``models.Counter``): the
        counter's row lock is held until commit, so call this late in the transaction. Locks are
        taken source row first, then the counter, as after ``reserve_sequence``; bump one source
        per transaction, or two transactions bumping the same two sources in opposite orders can
        deadlock on PostgreSQL (one of them then fails with ``DatabaseUnavailable``).
        """
        # Lock (and check) the source before the counter: a missing source burns no value, and
        # the lock order matches a transaction that reserved a sequence number first.
        found = select(Source.id).where(Source.id == source_id).with_for_update()
        if self._session.execute(found).scalar_one_or_none() is None:
            raise StorageError("no such source")
        version = next_counter_value(self._session, SOURCE_VERSION)
        execute_dml(
            self._session, update(Source).where(Source.id == source_id).values(version=version)
        )
        return version

    def set_starred(self, source_id: SourceId, starred: bool) -> bool:
        """Star or unstar; whether the source exists. Does not bump the version: the caller
        does, as for a submission or a reply, so that each change bumps exactly once."""
        stmt = update(Source).where(Source.id == source_id).values(starred=starred)
        return execute_dml(self._session, stmt) > 0

    def get(self, source_id: SourceId) -> SourceRecord | None:
        row = self._session.get(Source, source_id)
        return None if row is None else _source(row)

    def by_lookup_id(self, lookup_id: bytes) -> SourceRecord | None:
        row = self._session.scalars(select(Source).where(Source.lookup_id == lookup_id)).first()
        return None if row is None else _source(row)

    def session_epoch(self, source_id: SourceId) -> bytes | None:
        stmt = select(Source.session_epoch).where(Source.id == source_id)
        found = self._session.execute(stmt).one_or_none()
        return None if found is None else (found[0] or b"")

    def renew_session_epoch(self, source_id: SourceId) -> bytes | None:
        # Random, not a counter (a counter would count logins), and written in place: the row
        # says only that the source logged in at some time, not when.
        epoch = secrets.token_bytes(SESSION_EPOCH_BYTES)
        stmt = update(Source).where(Source.id == source_id).values(session_epoch=epoch)
        return epoch if execute_dml(self._session, stmt) > 0 else None

    def set_reply_recipient(self, source_id: SourceId, reply_recipient: str) -> bool:
        stmt = update(Source).where(Source.id == source_id).values(reply_recipient=reply_recipient)
        return execute_dml(self._session, stmt) > 0

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
            digest=new.digest,
        )
        self._session.add(row)
        flush(self._session)
        return _submission(row)

    def get(self, submission_id: SubmissionId) -> SubmissionRecord | None:
        row = self._session.get(Submission, submission_id)
        return None if row is None else _submission(row)

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are submissions (one query per 1,000 ids)."""
        return _existing(self._session, Submission.id, ids)

    def count_by_source(self, source_ids: Sequence[SourceId]) -> dict[SourceId, int]:
        """How many submissions each source has, in one query (0 for none)."""
        counts: dict[SourceId, int] = dict.fromkeys(source_ids, 0)
        if not source_ids:
            return counts
        stmt = (
            select(Submission.source_id, func.count())
            .where(Submission.source_id.in_(list(source_ids)))
            .group_by(Submission.source_id)
        )
        for source_id, count in self._session.execute(stmt):
            counts[SourceId(source_id)] = int(count)
        return counts

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

    def delete(self, submission_id: SubmissionId) -> bool:
        """Delete the row (the caller deletes the blob) and every seen mark of it."""
        execute_dml(self._session, delete(Seen).where(Seen.item_id == submission_id))
        return (
            execute_dml(self._session, delete(Submission).where(Submission.id == submission_id)) > 0
        )


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
        digest: str = "",
        author_id: UserId | None = None,
    ) -> ReplyRecord:
        row = Reply(
            id=new_id(),
            source_id=source_id,
            seq=seq,
            arrival_day=arrival_day,
            blob_key=blob_key,
            size=size,
            digest=digest,
            author_id=author_id,
        )
        self._session.add(row)
        flush(self._session)
        return _reply(row)

    def get(self, reply_id: ReplyId) -> ReplyRecord | None:
        row = self._session.get(Reply, reply_id)
        return None if row is None else _reply(row)

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are replies (one query per 1,000 ids)."""
        return _existing(self._session, Reply.id, ids)

    def for_source(self, source_id: SourceId) -> Sequence[ReplyRecord]:
        stmt = select(Reply).where(Reply.source_id == source_id).order_by(Reply.seq)
        return [_reply(row) for row in self._session.scalars(stmt)]

    def delete(self, reply_id: ReplyId) -> bool:
        """Delete the row (the caller deletes the blob) and every seen mark of it."""
        execute_dml(self._session, delete(Seen).where(Seen.item_id == reply_id))
        return execute_dml(self._session, delete(Reply).where(Reply.id == reply_id)) > 0

    def blob_keys(self) -> set[BlobKey]:
        return {BlobKey(key) for key in self._session.scalars(select(Reply.blob_key))}


def _existing(session: Session, column: InstrumentedAttribute[str], ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), 1000):
        batch = wanted[start : start + 1000]
        found.update(session.scalars(select(column).where(column.in_(batch))))
    return found
