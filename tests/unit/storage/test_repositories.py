"""The shared repository suite: every test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import inspect, text

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, RecipientId, SourceId, SubmissionId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import (
    NewSubmission,
    Repositories,
    SessionRecord,
    SourceRecord,
    SubmissionRecord,
)

DAY = dt.date(2024, 5, 17)


def add_source(db: SqlDatabase, lookup_id: bytes | None = None) -> SourceRecord:
    with db.transaction() as repos:
        return repos.sources.add(lookup_id or new_id().encode(), "age1reply", DAY)


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


def session(
    source_id: SourceId, id_hash: bytes, created: int = 100, seen: int = 100
) -> SessionRecord:
    return SessionRecord(id_hash, source_id, b"sealed" + id_hash, created, seen)


# --- sources -------------------------------------------------------------------------------------


def test_source_add_then_get_and_by_lookup_id(database: SqlDatabase) -> None:
    """A stored source comes back equal by id and by lookup id, as a frozen record."""
    with database.transaction() as repos:
        added = repos.sources.add(b"\x00\xffLOOKUP", "age1reply", DAY)
    with database.transaction() as repos:
        assert repos.sources.get(added.id) == added
        assert repos.sources.by_lookup_id(b"\x00\xffLOOKUP") == added
    assert isinstance(added, SourceRecord)
    assert len(added.id) == 32
    assert added.created_day == DAY


def test_source_without_created_day(database: SqlDatabase) -> None:
    """created_day may be None (arrival granularity "none") and stays None."""
    with database.transaction() as repos:
        added = repos.sources.add(b"no-day", "age1reply", None)
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
        repos.sources.add(b"same", "age1other", DAY)
    with database.transaction() as repos:
        assert repos.sources.by_lookup_id(b"same") is not None


def test_duplicate_lookup_id_error_does_not_quote_the_value(database: SqlDatabase) -> None:
    """The StorageError text and its chain never contain the lookup id (it links logins)."""
    secret = b"LINKABLE-LOOKUP-ID"
    add_source(database, secret)
    with pytest.raises(StorageError) as info, database.transaction() as repos:
        repos.sources.add(secret, "age1other", DAY)
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


def test_deleting_a_source_cascades_to_submissions_and_sessions(database: SqlDatabase) -> None:
    """ON DELETE CASCADE is in force (on SQLite too): no orphan rows survive a source."""
    source, other = add_source(database), add_source(database)
    for s in (source, other):
        add_submission(database, s)
    with database.transaction() as repos:
        repos.sessions.add(session(source.id, b"h1"))
        repos.sessions.add(session(other.id, b"h2"))
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM sources WHERE id = :id"), {"id": source.id})
    with database.transaction() as repos:
        assert repos.submissions.for_source(source.id) == []
        assert repos.sessions.get(b"h1") is None
        assert len(repos.submissions.for_source(other.id)) == 1
        assert repos.sessions.get(b"h2") is not None


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
    source = add_source(database)
    record = session(source.id, b"\x01" * 32, created=100, seen=100)
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


def test_sessions_delete_for_source(database: SqlDatabase) -> None:
    """delete_for_source() removes that source's sessions and no other."""
    a, b = add_source(database), add_source(database)
    with database.transaction() as repos:
        repos.sessions.add(session(a.id, b"a1"))
        repos.sessions.add(session(a.id, b"a2"))
        repos.sessions.add(session(b.id, b"b1"))
        repos.sessions.delete_for_source(a.id)
    with database.transaction() as repos:
        assert repos.sessions.get(b"a1") is None
        assert repos.sessions.get(b"a2") is None
        assert repos.sessions.get(b"b1") is not None


def test_sessions_purge_idle_or_too_old(database: SqlDatabase) -> None:
    """purge() deletes sessions idle too long or created too long ago, and counts them."""
    source = add_source(database)
    with database.transaction() as repos:
        repos.sessions.add(session(source.id, b"idle", created=900, seen=100))
        repos.sessions.add(session(source.id, b"old", created=10, seen=990))
        repos.sessions.add(session(source.id, b"live", created=900, seen=990))
    with database.transaction() as repos:
        assert repos.sessions.purge(idle_before=500, created_before=50) == 2
    with database.transaction() as repos:
        assert repos.sessions.get(b"live") is not None
        assert repos.sessions.get(b"idle") is None
        assert repos.sessions.get(b"old") is None


def test_duplicate_session_raises_storage_error(database: SqlDatabase) -> None:
    """Two sessions with the same id hash cannot coexist."""
    source = add_source(database)
    with database.transaction() as repos:
        repos.sessions.add(session(source.id, b"dup"))
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.sessions.add(session(source.id, b"dup"))


# --- transactions and schema ---------------------------------------------------------------------


def test_exception_rolls_back_everything_in_the_transaction(database: SqlDatabase) -> None:
    """An exception inside transaction() leaves no trace of any write made in it."""

    class Boom(Exception):
        pass

    source = add_source(database)

    def write_everything_then_fail() -> None:
        with database.transaction() as repos:
            repos.sources.add(b"rolled-back", "age1x", DAY)
            seq = repos.sources.reserve_sequence(source.id, 1)
            repos.submissions.add(source.id, seq, DAY, new_submission())
            repos.recipients.add("age1rolled", "gone")
            repos.sessions.add(session(source.id, b"gone"))
            raise Boom

    with pytest.raises(Boom):
        write_everything_then_fail()
    with database.transaction() as repos:
        assert repos.sources.by_lookup_id(b"rolled-back") is None
        assert repos.submissions.for_source(source.id) == []
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
                repos.sources.add(existing.lookup_id, "age1x", DAY)

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
    """upgrade() creates the four tables and their columns, with no timestamp beyond sessions'."""
    insp = inspect(database.engine)
    assert set(insp.get_table_names()) == {
        "alembic_version",
        "sources",
        "submissions",
        "recipients",
        "source_sessions",
    }
    columns = {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    assert columns["sources"] == {"id", "lookup_id", "reply_recipient", "created_day", "last_seq"}
    assert columns["submissions"] == {
        "id",
        "source_id",
        "seq",
        "kind",
        "arrival_day",
        "blob_key",
        "size",
        "metadata_ciphertext",
    }
    assert columns["recipients"] == {"id", "public_key", "name"}
    assert columns["source_sessions"] == {
        "id_hash",
        "source_id",
        "sealed_identity",
        "created_at",
        "last_seen_at",
    }
    fks = insp.get_foreign_keys("submissions") + insp.get_foreign_keys("source_sessions")
    assert all(fk["options"].get("ondelete") == "CASCADE" for fk in fks)
    assert len(fks) == 2
    assert database.schema_is_current()
