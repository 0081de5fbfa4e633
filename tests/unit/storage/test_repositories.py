"""The shared repository suite: every test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import event, inspect, text

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, RecipientId, ReplyId, SourceId, SubmissionId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import (
    NewSubmission,
    ReplyRecord,
    Repositories,
    SessionRecord,
    SourceRecord,
    SubmissionRecord,
)

DAY = dt.date(2024, 5, 17)
PSEUDONYM = "quiet heron"


def add_source(
    db: SqlDatabase, lookup_id: bytes | None = None, pending_since: int | None = None
) -> SourceRecord:
    with db.transaction() as repos:
        return repos.sources.add(
            lookup_id or new_id().encode(), "age1reply", DAY, PSEUDONYM, pending_since
        )


def new_submission(kind: str = "message", meta: bytes | None = None) -> NewSubmission:
    assert kind in ("message", "file")
    return NewSubmission(
        kind="file" if kind == "file" else "message",
        blob_key=BlobKey(new_id()),
        size=123,
        metadata_ciphertext=meta,
    )


def add_submission(
    db: SqlDatabase, source: SourceRecord, kind: str = "message"
) -> SubmissionRecord:
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source.id, 1)
        return repos.submissions.add(source.id, seq, DAY, new_submission(kind))


def add_reply(db: SqlDatabase, source: SourceRecord) -> ReplyRecord:
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source.id, 1)
        return repos.replies.add(source.id, seq, DAY, BlobKey(new_id()), 456)


def session(
    id_hash: bytes,
    created: int = 100,
    seen: int = 100,
    *,
    confirmed: bool = True,
) -> SessionRecord:
    return SessionRecord(id_hash, b"sealed" + id_hash, created, seen, confirmed)


def count_rows(db: SqlDatabase, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# --- sources -------------------------------------------------------------------------------------


def test_source_add_then_get_and_by_lookup_id(database: SqlDatabase) -> None:
    """A stored source comes back equal by id and by lookup id, as a frozen record."""
    with database.transaction() as repos:
        added = repos.sources.add(b"\x00\xffLOOKUP", "age1reply", DAY, "brave otter", 1_700_000_000)
    with database.transaction() as repos:
        assert repos.sources.get(added.id) == added
        assert repos.sources.by_lookup_id(b"\x00\xffLOOKUP") == added
    assert isinstance(added, SourceRecord)
    assert len(added.id) == 32
    assert added.created_day == DAY
    assert added.pseudonym == "brave otter"
    assert added.pending_since == 1_700_000_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        added.pending_since = None  # type: ignore[misc]


def test_source_pseudonym_is_not_unique(database: SqlDatabase) -> None:
    """Two sources may share a pseudonym (it is a name for people, not a key)."""
    with database.transaction() as repos:
        a = repos.sources.add(b"a", "age1a", DAY, PSEUDONYM, None)
        b = repos.sources.add(b"b", "age1b", DAY, PSEUDONYM, None)
    assert a.id != b.id
    assert a.pseudonym == b.pseudonym == PSEUDONYM


def test_source_without_created_day(database: SqlDatabase) -> None:
    """created_day may be None (arrival granularity "none") and stays None."""
    with database.transaction() as repos:
        added = repos.sources.add(b"no-day", "age1reply", None, "", None)
    with database.transaction() as repos:
        got = repos.sources.get(added.id)
    assert got is not None
    assert got.created_day is None


def test_unknown_source_is_none(database: SqlDatabase) -> None:
    """Looking up an id or lookup id that does not exist returns None."""
    with database.transaction() as repos:
        assert repos.sources.get(SourceId(new_id())) is None
        assert repos.sources.by_lookup_id(b"nobody") is None


def test_duplicate_lookup_id_raises_storage_error(database: SqlDatabase) -> None:
    """A second source with the same lookup id raises StorageError at the add() call."""
    add_source(database, b"same")
    with pytest.raises(StorageError, match="lookup_id"), database.transaction() as repos:
        repos.sources.add(b"same", "age1other", DAY, PSEUDONYM, None)
    with database.transaction() as repos:
        assert repos.sources.by_lookup_id(b"same") is not None


def test_duplicate_lookup_id_error_does_not_quote_the_value(database: SqlDatabase) -> None:
    """The StorageError text and its chain never contain the lookup id (it links logins)."""
    secret = b"LINKABLE-LOOKUP-ID"
    add_source(database, secret)
    with pytest.raises(StorageError) as info, database.transaction() as repos:
        repos.sources.add(secret, "age1other", DAY, PSEUDONYM, None)
    chain: list[BaseException] = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for link in chain:
        assert "LINKABLE" not in str(link)
        assert secret.hex() not in str(link)


def test_reserve_sequence_is_consecutive(database: SqlDatabase) -> None:
    """Reservations hand out 1, 2, 3 … without gaps; count reserves a block."""
    source = add_source(database)
    with database.transaction() as repos:
        assert repos.sources.reserve_sequence(source.id, 1) == 1
        assert repos.sources.reserve_sequence(source.id, 3) == 2
    with database.transaction() as repos:
        assert repos.sources.reserve_sequence(source.id, 1) == 5


def test_reserve_sequence_is_per_source(database: SqlDatabase) -> None:
    """Each source has its own sequence."""
    a, b = add_source(database), add_source(database)
    with database.transaction() as repos:
        assert repos.sources.reserve_sequence(a.id, 2) == 1
        assert repos.sources.reserve_sequence(b.id, 1) == 1


def test_reserve_sequence_rejects_bad_count_and_unknown_source(database: SqlDatabase) -> None:
    """count < 1 is a ValueError; an unknown source is a StorageError."""
    source = add_source(database)
    with pytest.raises(ValueError, match="count"), database.transaction() as repos:
        repos.sources.reserve_sequence(source.id, 0)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.sources.reserve_sequence(SourceId(new_id()), 1)


def test_reserve_sequence_concurrent_transactions_never_share_a_number(
    database: SqlDatabase,
) -> None:
    """Threads reserving in separate, overlapping transactions get disjoint, gap-free blocks."""
    source = add_source(database)
    threads, rounds = 4, 15
    barrier = threading.Barrier(threads)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                with database.transaction() as repos:
                    first = repos.sources.reserve_sequence(source.id, n)
                    # Hold the transaction open a moment so that the others pile up behind it.
                    repos.sources.get(source.id)
                with lock:
                    got.extend(range(first, first + n))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(1, threads + 1)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not errors, errors
    total = rounds * sum(range(1, threads + 1))
    assert sorted(got) == list(range(1, total + 1))


# --- pending sources, deletion ------------------------------------------------------------------


def test_mark_active_forgets_pending_since_and_nothing_else(database: SqlDatabase) -> None:
    """mark_active() sets pending_since to None for that source only, visible at once."""
    source = add_source(database, pending_since=1_000)
    other = add_source(database, pending_since=2_000)
    with database.transaction() as repos:
        repos.sources.mark_active(source.id)
        assert repos.sources.get(source.id) == dataclasses.replace(source, pending_since=None)
        repos.sources.mark_active(source.id)  # idempotent
        repos.sources.mark_active(SourceId(new_id()))  # unknown: a no-op
    with database.transaction() as repos:
        assert repos.sources.get(source.id) == dataclasses.replace(source, pending_since=None)
        assert repos.sources.get(other.id) == other


def test_purge_pending_deletes_only_old_pending_sources_without_submissions(
    database: SqlDatabase,
) -> None:
    """purge_pending() removes sources pending since before the cutoff that sent nothing, and
    keeps sources with a submission, sources at or after the cutoff, and active sources."""
    stale = add_source(database, pending_since=100)
    stale_with_submission = add_source(database, pending_since=100)  # mark_active not yet called
    submission = add_submission(database, stale_with_submission)
    at_cutoff = add_source(database, pending_since=500)
    fresh = add_source(database, pending_since=900)
    active = add_source(database, pending_since=None)
    with database.transaction() as repos:
        assert repos.sources.purge_pending(created_before=500) == 1
    with database.transaction() as repos:
        assert repos.sources.get(stale.id) is None
        for kept in (stale_with_submission, at_cutoff, fresh, active):
            assert repos.sources.get(kept.id) == kept
        assert repos.submissions.for_source(stale_with_submission.id) == [submission]
        assert repos.sources.purge_pending(created_before=500) == 0


def test_purge_pending_takes_replies_along_and_counts_sources(
    database: SqlDatabase,
) -> None:
    """A purged source's replies go with it; the count is of sources only. Sessions name no
    source, so they stay until they come back or expire (services/sessions.py refuses them)."""
    stale = add_source(database, pending_since=100)
    kept = add_source(database, pending_since=None)
    reply = add_reply(database, stale)
    kept_reply = add_reply(database, kept)
    with database.transaction() as repos:
        repos.sessions.add(session(b"s1"))
    with database.transaction() as repos:
        assert repos.sources.purge_pending(created_before=200) == 1
    with database.transaction() as repos:
        assert repos.replies.get(reply.id) is None
        assert repos.replies.for_source(kept.id) == [kept_reply]
        assert repos.sessions.get(b"s1") is not None
    assert count_rows(database, "replies") == 1


def test_purge_pending_is_a_single_delete_statement(database: SqlDatabase) -> None:
    """purge_pending() issues exactly one DELETE with a NOT EXISTS subquery, whatever the number
    of candidates: no read-then-delete loop that a concurrent submission could slip through."""
    for _ in range(3):
        add_source(database, pending_since=100)
    add_submission(database, add_source(database, pending_since=100))
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    with database.transaction() as repos:
        repos.sources.get(SourceId(new_id()))  # the transaction has begun before we listen
        event.listen(database.engine, "before_cursor_execute", record)
        try:
            assert repos.sources.purge_pending(created_before=200) == 3
        finally:
            event.remove(database.engine, "before_cursor_execute", record)
    assert len(statements) == 1, statements
    assert statements[0].startswith("DELETE FROM SOURCES")
    assert "NOT (EXISTS (SELECT" in statements[0]


def test_purge_pending_waits_for_a_first_submission_that_marks_the_source_active(
    database: SqlDatabase,
) -> None:
    """A purge that runs while a pending source's first submission (with mark_active) is being
    committed keeps the source and that submission (PostgreSQL re-checks the locked row)."""
    source = add_source(database, pending_since=100)
    purged: list[int] = []
    errors: list[BaseException] = []

    def purge() -> None:
        try:
            with database.transaction() as repos:
                purged.append(repos.sources.purge_pending(created_before=200))
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    with database.transaction() as repos:
        seq = repos.sources.reserve_sequence(source.id, 1)
        submission = repos.submissions.add(source.id, seq, DAY, new_submission())
        repos.sources.mark_active(source.id)
        purger = threading.Thread(target=purge)
        purger.start()
        purger.join(timeout=0.5)
        assert purger.is_alive(), "the purge should wait for the submission's transaction"
    purger.join(timeout=30)
    assert not errors, errors
    assert purged == [0]
    with database.transaction() as repos:
        assert repos.submissions.for_source(source.id) == [submission]


def test_source_delete_cascades_to_submissions_and_replies(database: SqlDatabase) -> None:
    """delete() removes the source with every submission and reply it has, and no other's; it
    reports whether a source was there."""
    source, other = add_source(database), add_source(database)
    for s in (source, other):
        add_submission(database, s)
        add_reply(database, s)
    with database.transaction() as repos:
        assert repos.sources.delete(source.id) is True
        assert repos.sources.delete(source.id) is False
        assert repos.sources.delete(SourceId(new_id())) is False
    with database.transaction() as repos:
        assert repos.sources.get(source.id) is None
        assert repos.submissions.for_source(source.id) == []
        assert repos.replies.for_source(source.id) == []
        assert len(repos.submissions.for_source(other.id)) == 1
        assert len(repos.replies.for_source(other.id)) == 1
    for table in ("submissions", "replies"):
        assert count_rows(database, table) == 1, table


def test_deleted_rows_are_gone_later_in_the_same_transaction(database: SqlDatabase) -> None:
    """Rows read before delete()/purge_pending() are not served afterwards from the session's
    cache, neither the source's nor the ones the database removed by cascade."""
    doomed, stale = add_source(database), add_source(database, pending_since=1)
    submission = add_submission(database, doomed)
    reply, stale_reply = add_reply(database, doomed), add_reply(database, stale)
    with database.transaction() as repos:
        # Load everything into the transaction first.
        assert repos.sources.get(doomed.id) == doomed
        assert repos.sources.get(stale.id) == stale
        assert repos.submissions.get(submission.id) == submission
        assert repos.replies.get(reply.id) == reply
        assert repos.replies.get(stale_reply.id) == stale_reply
        assert repos.sources.delete(doomed.id) is True
        assert repos.sources.purge_pending(created_before=10) == 1
        assert repos.sources.get(doomed.id) is None
        assert repos.sources.get(stale.id) is None
        assert repos.submissions.get(submission.id) is None
        assert repos.replies.get(reply.id) is None
        assert repos.replies.get(stale_reply.id) is None


# --- submissions ---------------------------------------------------------------------------------


def test_submission_add_get_and_for_source_in_sequence_order(database: SqlDatabase) -> None:
    """Submissions come back as added, and for_source orders them by seq, not insertion."""
    source = add_source(database)
    with database.transaction() as repos:
        late = repos.submissions.add(source.id, 7, DAY, new_submission("file", b"AGE-META"))
        early = repos.submissions.add(source.id, 2, None, new_submission())
    with database.transaction() as repos:
        assert repos.submissions.get(late.id) == late
        assert repos.submissions.for_source(source.id) == [early, late]
        assert repos.submissions.get(SubmissionId(new_id())) is None
    assert late.kind == "file"
    assert late.metadata_ciphertext == b"AGE-META"
    assert early.arrival_day is None
    assert early.metadata_ciphertext is None


def test_submissions_all_ordered_by_source_then_seq_and_blob_keys(database: SqlDatabase) -> None:
    """all() yields every submission by source then seq; blob_keys() lists every key."""
    a, b = add_source(database), add_source(database)
    subs = [add_submission(database, s) for s in (a, b, a, b, a)]
    with database.transaction() as repos:
        everything = list(repos.submissions.all())
        keys = repos.submissions.blob_keys()
    assert everything == sorted(subs, key=lambda s: (s.source_id, s.seq))
    assert keys == {s.blob_key for s in subs}


def test_duplicate_seq_or_blob_key_raises_storage_error(database: SqlDatabase) -> None:
    """The same (source, seq) twice, or the same blob key twice, raises StorageError."""
    source = add_source(database)
    first = add_submission(database, source)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.submissions.add(source.id, first.seq, DAY, new_submission())
    clash = NewSubmission("message", first.blob_key, 1, None)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.submissions.add(source.id, first.seq + 1, DAY, clash)


def test_submission_for_unknown_source_raises_storage_error(database: SqlDatabase) -> None:
    """A submission row must belong to an existing source (foreign key enforced)."""
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.submissions.add(SourceId(new_id()), 1, DAY, new_submission())


def test_deleting_a_source_row_cascades_in_the_database(database: SqlDatabase) -> None:
    """ON DELETE CASCADE is in force in the schema itself (on SQLite too, where foreign keys are
    off unless turned on): a plain SQL DELETE leaves no orphan submission or reply."""
    source, other = add_source(database), add_source(database)
    for s in (source, other):
        add_submission(database, s)
        add_reply(database, s)
    with database.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        conn.execute(text("DELETE FROM sources WHERE id = :id"), {"id": source.id})
    with database.transaction() as repos:
        assert repos.submissions.for_source(source.id) == []
        assert repos.replies.for_source(source.id) == []
        assert len(repos.submissions.for_source(other.id)) == 1
        assert len(repos.replies.for_source(other.id)) == 1


# --- replies -------------------------------------------------------------------------------------


def test_reply_add_get_and_for_source_in_sequence_order(database: SqlDatabase) -> None:
    """Replies come back as added, as frozen records, and for_source orders them by seq."""
    source, other = add_source(database), add_source(database)
    with database.transaction() as repos:
        late = repos.replies.add(source.id, 9, DAY, BlobKey(new_id()), 1 << 40)
        early = repos.replies.add(source.id, 4, None, BlobKey(new_id()), 0)
        elsewhere = repos.replies.add(other.id, 1, DAY, BlobKey(new_id()), 7)
    with database.transaction() as repos:
        assert repos.replies.get(late.id) == late
        assert repos.replies.for_source(source.id) == [early, late]
        assert repos.replies.for_source(other.id) == [elsewhere]
        assert repos.replies.get(ReplyId(new_id())) is None
    assert isinstance(late, ReplyRecord)
    assert len(late.id) == 32
    assert late.size == 1 << 40  # BigInteger: ciphertext sizes beyond 2 GiB
    assert early.arrival_day is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        late.seq = 1  # type: ignore[misc]


def test_replies_and_submissions_share_the_source_sequence(database: SqlDatabase) -> None:
    """Numbers from reserve_sequence interleave submissions and replies into one conversation
    order, with no number used twice across the two tables."""
    source = add_source(database)
    first = add_submission(database, source)
    answer = add_reply(database, source)
    second = add_submission(database, source)
    answer2 = add_reply(database, source)
    assert [first.seq, answer.seq, second.seq, answer2.seq] == [1, 2, 3, 4]
    with database.transaction() as repos:
        assert repos.submissions.for_source(source.id) == [first, second]
        assert repos.replies.for_source(source.id) == [answer, answer2]
        assert repos.sources.reserve_sequence(source.id, 1) == 5


def test_reply_seq_uniqueness_is_per_table(database: SqlDatabase) -> None:
    """The schema rejects a second reply with a seq, but not a reply sharing a submission's seq:
    keeping the two apart is reserve_sequence's job, which the callers must use."""
    source = add_source(database)
    submission = add_submission(database, source)
    with database.transaction() as repos:
        repos.replies.add(source.id, submission.seq, DAY, BlobKey(new_id()), 1)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.replies.add(source.id, submission.seq, DAY, BlobKey(new_id()), 1)


def test_duplicate_reply_blob_key_or_unknown_source_raises_storage_error(
    database: SqlDatabase,
) -> None:
    """A reply reusing a blob key, or naming a source that does not exist, is refused."""
    source = add_source(database)
    reply = add_reply(database, source)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.replies.add(source.id, reply.seq + 1, DAY, reply.blob_key, 1)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.replies.add(SourceId(new_id()), 1, DAY, BlobKey(new_id()), 1)


def test_reply_delete_removes_that_reply_only(database: SqlDatabase) -> None:
    """delete() removes one reply, reports whether it existed, and leaves the others."""
    source = add_source(database)
    gone, kept = add_reply(database, source), add_reply(database, source)
    with database.transaction() as repos:
        assert repos.replies.delete(gone.id) is True
        assert repos.replies.delete(gone.id) is False
        assert repos.replies.delete(ReplyId(new_id())) is False
    with database.transaction() as repos:
        assert repos.replies.get(gone.id) is None
        assert repos.replies.for_source(source.id) == [kept]
        assert repos.replies.blob_keys() == {kept.blob_key}


def test_reply_blob_keys_are_listed_apart_from_submissions(database: SqlDatabase) -> None:
    """replies.blob_keys() lists every reply blob and no submission blob (and the reverse)."""
    a, b = add_source(database), add_source(database)
    replies = [add_reply(database, s) for s in (a, b, a)]
    submission = add_submission(database, a)
    with database.transaction() as repos:
        assert repos.replies.blob_keys() == {r.blob_key for r in replies}
        assert repos.submissions.blob_keys() == {submission.blob_key}


# --- recipients ----------------------------------------------------------------------------------


def test_recipients_add_list_remove(database: SqlDatabase) -> None:
    """Recipients are listed by name; remove() reports whether something was removed."""
    with database.transaction() as repos:
        zed = repos.recipients.add("age1zzz", "Zed desk")
        ann = repos.recipients.add("age1aaa", "Ann")
    with database.transaction() as repos:
        assert repos.recipients.list() == [ann, zed]
        assert repos.recipients.remove(zed.id) is True
        assert repos.recipients.remove(RecipientId(new_id())) is False
    with database.transaction() as repos:
        assert repos.recipients.list() == [ann]


def test_duplicate_recipient_public_key_raises_storage_error(database: SqlDatabase) -> None:
    """The same public key cannot be added twice."""
    with database.transaction() as repos:
        repos.recipients.add("age1same", "first")
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.recipients.add("age1same", "second")


# --- sessions ------------------------------------------------------------------------------------


def test_sessions_add_get_touch_delete(database: SqlDatabase) -> None:
    """A session round-trips; touch() moves last_seen_at only; delete() removes it."""
    record = session(b"\x01" * 32, created=100, seen=100)
    with database.transaction() as repos:
        repos.sessions.add(record)
    with database.transaction() as repos:
        assert repos.sessions.get(record.id_hash) == record
        repos.sessions.touch(record.id_hash, 250)
    with database.transaction() as repos:
        got = repos.sessions.get(record.id_hash)
        assert got is not None
        assert (got.created_at, got.last_seen_at) == (100, 250)
        repos.sessions.delete(record.id_hash)
        repos.sessions.delete(b"never existed")
    with database.transaction() as repos:
        assert repos.sessions.get(record.id_hash) is None


def test_sessions_purge_idle_or_too_old(database: SqlDatabase) -> None:
    """purge() deletes sessions idle too long or created too long ago, and counts them."""
    with database.transaction() as repos:
        repos.sessions.add(session(b"idle", created=900, seen=100))
        repos.sessions.add(session(b"old", created=10, seen=990))
        repos.sessions.add(session(b"live", created=900, seen=990))
    with database.transaction() as repos:
        assert repos.sessions.purge(idle_before=500, created_before=50) == 2
    with database.transaction() as repos:
        assert repos.sessions.get(b"live") is not None
        assert repos.sessions.get(b"idle") is None
        assert repos.sessions.get(b"old") is None


def test_sessions_are_confirmed_by_default_and_keep_the_flag(database: SqlDatabase) -> None:
    """A SessionRecord is confirmed unless said otherwise; both values round-trip."""
    default = SessionRecord(b"dflt", b"sealed", 100, 100)
    pending = session(b"pending", confirmed=False)
    assert default.confirmed is True
    with database.transaction() as repos:
        repos.sessions.add(default)
        repos.sessions.add(pending)
    with database.transaction() as repos:
        assert repos.sessions.get(b"dflt") == default
        assert repos.sessions.get(b"pending") == pending


def test_session_confirm_sets_confirmed_for_that_session_only(database: SqlDatabase) -> None:
    """confirm() marks one unconfirmed session confirmed, visible at once; touch() keeps the flag;
    confirming an unknown or already confirmed session is a no-op."""
    with database.transaction() as repos:
        repos.sessions.add(session(b"one", confirmed=False))
        repos.sessions.add(session(b"two", confirmed=False))
    with database.transaction() as repos:
        repos.sessions.touch(b"one", 200)
        got = repos.sessions.get(b"one")
        assert got is not None
        assert got.confirmed is False
        repos.sessions.confirm(b"one")
        got = repos.sessions.get(b"one")
        assert got is not None
        assert got.confirmed is True
        repos.sessions.confirm(b"one")
        repos.sessions.confirm(b"never existed")
    with database.transaction() as repos:
        one, two = repos.sessions.get(b"one"), repos.sessions.get(b"two")
        assert one is not None
        assert two is not None
        assert (one.confirmed, one.last_seen_at) == (True, 200)
        assert two.confirmed is False


def test_duplicate_session_raises_storage_error(database: SqlDatabase) -> None:
    """Two sessions with the same id hash cannot coexist."""
    with database.transaction() as repos:
        repos.sessions.add(session(b"dup"))
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.sessions.add(session(b"dup"))


# --- transactions and schema ---------------------------------------------------------------------


def test_exception_rolls_back_everything_in_the_transaction(database: SqlDatabase) -> None:
    """An exception inside transaction() leaves no trace of any write made in it."""

    class Boom(Exception):
        pass

    source = add_source(database, pending_since=100)

    def write_everything_then_fail() -> None:
        with database.transaction() as repos:
            repos.sources.add(b"rolled-back", "age1x", DAY, PSEUDONYM, 1)
            seq = repos.sources.reserve_sequence(source.id, 1)
            repos.submissions.add(source.id, seq, DAY, new_submission())
            seq = repos.sources.reserve_sequence(source.id, 1)
            repos.replies.add(source.id, seq, DAY, BlobKey(new_id()), 1)
            repos.sources.mark_active(source.id)
            repos.recipients.add("age1rolled", "gone")
            repos.sessions.add(session(b"gone"))
            raise Boom

    with pytest.raises(Boom):
        write_everything_then_fail()
    with database.transaction() as repos:
        assert repos.sources.by_lookup_id(b"rolled-back") is None
        assert repos.submissions.for_source(source.id) == []
        assert repos.replies.for_source(source.id) == []
        assert repos.sources.get(source.id) == source
        assert repos.recipients.list() == []
        assert repos.sessions.get(b"gone") is None
        assert repos.sources.reserve_sequence(source.id, 1) == 1


def test_a_storage_error_ends_the_transaction(database: SqlDatabase) -> None:
    """Catching a StorageError inside the block does not rescue it: the exit raises StorageError
    and nothing written in the block is committed."""
    existing = add_source(database, b"taken")

    def carry_on_after_error() -> None:
        with database.transaction() as repos:
            repos.recipients.add("age1before", "written before the error")
            with pytest.raises(StorageError):
                repos.sources.add(existing.lookup_id, "age1x", DAY, PSEUDONYM, None)

    with pytest.raises(StorageError, match="rolled back"):
        carry_on_after_error()
    with database.transaction() as repos:
        assert repos.recipients.list() == []


def test_transaction_yields_the_repositories_protocol(database: SqlDatabase) -> None:
    """SqlDatabase.transaction() satisfies interfaces.Database (checked by mypy here too)."""
    from sealdrop.storage.interfaces import Database

    db: Database = database
    with db.transaction() as repos:
        typed: Repositories = repos
        assert typed.recipients.list() == []


def test_migrations_create_exactly_the_expected_tables(database: SqlDatabase) -> None:
    """upgrade() creates exactly these tables and columns: no timestamp about sources beyond
    sessions' and a source's pending_since, and times about journalists only where a security
    check needs them (token expiry, TOTP replay, login back-off); no column or foreign key
    links a session to its source."""
    insp = inspect(database.engine)
    columns = {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    assert columns == {
        "alembic_version": {"version_num"},
        "sources": {
            "id",
            "lookup_id",
            "reply_recipient",
            "created_day",
            "last_seq",
            "pseudonym",
            "pending_since",
            "starred",
            "version",
            "session_epoch",
        },
        "submissions": {
            "id",
            "source_id",
            "seq",
            "kind",
            "arrival_day",
            "blob_key",
            "size",
            "metadata_ciphertext",
            "digest",
        },
        "replies": {
            "id",
            "source_id",
            "seq",
            "arrival_day",
            "blob_key",
            "size",
            "digest",
            "author_id",
        },
        "recipients": {"id", "public_key", "name"},
        # No source_id: a session row does not say whose it is (the id is sealed inside).
        "source_sessions": {
            "id_hash",
            "sealed_identity",
            "created_at",
            "last_seen_at",
            "confirmed",
        },
        "counters": {"name", "value"},
        "users": {
            "id",
            "username",
            "passphrase_hash",
            "totp_secret",
            "totp_last_step",
            "role",
            "disabled",
            "failed_logins",
            "locked_until",
        },
        "user_recipients": {"id", "user_id", "public_key", "name"},
        "api_tokens": {"token_hash", "user_id", "created_at", "expires_at"},
        "seen": {"user_id", "item_id"},
        "audit_log": {"id", "day", "username", "action", "source_pseudonym"},
        "instance_settings": {"key", "value"},
        "source_assignees": {"source_id", "user_id"},
        "source_labels": {"source_id", "folded", "label"},
        "source_holds": {"source_id"},  # only that a source is on hold: no time, no account
        # No time but the number of a scheduled time; the watermark is a counter's value.
        "notification_targets": {
            "user_id",
            "channel",
            "address",
            "language",
            "watermark",
            "last_slot",
        },
        # Several workers' shared limits (0008): an instance-wide budget, and a source's bytes
        # of one UTC day (a day number, no finer time), deleted once the day is over.
        "login_budgets": {"name", "tokens", "counted_at"},
        "upload_allowances": {"source_id", "day", "used"},
        # Only while a request writes a resumable upload: its random id, no source.
        "upload_leases": {"upload_id", "holder", "until"},
    }
    fks = {
        (
            table,
            tuple(fk["constrained_columns"]),
            fk["referred_table"],
            fk["options"].get("ondelete"),
        )
        for table in insp.get_table_names()
        for fk in insp.get_foreign_keys(table)
    }
    assert fks == {
        ("submissions", ("source_id",), "sources", "CASCADE"),
        ("replies", ("source_id",), "sources", "CASCADE"),
        ("replies", ("author_id",), "users", "SET NULL"),
        ("user_recipients", ("user_id",), "users", "CASCADE"),
        ("api_tokens", ("user_id",), "users", "CASCADE"),
        ("seen", ("user_id",), "users", "CASCADE"),
        ("source_assignees", ("source_id",), "sources", "CASCADE"),
        ("source_assignees", ("user_id",), "users", "CASCADE"),
        ("source_labels", ("source_id",), "sources", "CASCADE"),
        ("source_holds", ("source_id",), "sources", "CASCADE"),
        ("notification_targets", ("user_id",), "users", "CASCADE"),
        ("upload_allowances", ("source_id",), "sources", "CASCADE"),
    }
    assert database.schema_is_current()
