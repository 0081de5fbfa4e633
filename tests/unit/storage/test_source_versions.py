"""Source versions, stars and the change feed (sources.page), ciphertext hashes, reply authors,
and the seen marks that go with deleted items; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import text

from sealdrop.errors import StorageError
from sealdrop.ids import BlobKey, SourceId, SubmissionId, UserId, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission, ReplyRecord, SourceRecord, SubmissionRecord

DAY = dt.date(2024, 5, 17)
DIGEST = "blake3:" + "ab" * 32


def add_source(db: SqlDatabase) -> SourceRecord:
    with db.transaction() as repos:
        # Pending, as a new source is until its first submission.
        return repos.sources.add(new_id().encode(), "age1reply", DAY, "calm lynx", 1_800_000_000)


def add_submission(db: SqlDatabase, source_id: SourceId, digest: str = DIGEST) -> SubmissionRecord:
    """As the submission service does: reserve a number, mark active, bump, add the row."""
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source_id, 1)
        repos.sources.mark_active(source_id)
        repos.sources.bump_version(source_id)
        new = NewSubmission("message", BlobKey(new_id()), 10, None, digest)
        return repos.submissions.add(source_id, seq, DAY, new)


def add_reply(db: SqlDatabase, source_id: SourceId, author: UserId | None = None) -> ReplyRecord:
    with db.transaction() as repos:
        seq = repos.sources.reserve_sequence(source_id, 1)
        repos.sources.bump_version(source_id)
        return repos.replies.add(source_id, seq, DAY, BlobKey(new_id()), 5, DIGEST, author)


def bump(db: SqlDatabase, source_id: SourceId) -> int:
    with db.transaction() as repos:
        return repos.sources.bump_version(source_id)


def add_user(db: SqlDatabase, name: str) -> UserId:
    with db.transaction() as repos:
        return repos.users.add(name, "$argon2id$hash", "", "journalist").id


def version_of(db: SqlDatabase, source_id: SourceId) -> int:
    with db.transaction() as repos:
        source = repos.sources.get(source_id)
    assert source is not None
    return source.version


def page_all(db: SqlDatabase, limit: int, starred: bool | None = None) -> list[SourceRecord]:
    got: list[SourceRecord] = []
    cursor = 0
    while True:
        with db.transaction() as repos:
            page = repos.sources.page(after_version=cursor, limit=limit, starred=starred)
        if not page:
            return got
        assert len(page) <= limit
        got.extend(page)
        cursor = page[-1].version


def run_in_threads(targets: list[Callable[[], None]], timeout: float = 120) -> None:
    """Run each target in its own thread; re-raise the first error in this thread."""
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


# --- versions ------------------------------------------------------------------------------------


def test_new_source_is_unstarred_at_version_zero(database: SqlDatabase) -> None:
    """A new source has starred False and version 0 until its first bump."""
    source = add_source(database)
    assert (source.starred, source.version) == (False, 0)
    with database.transaction() as repos:
        assert repos.sources.get(source.id) == source


def test_bump_version_takes_the_next_value_of_one_instance_wide_counter(
    database: SqlDatabase,
) -> None:
    """Bumps of different sources draw 1, 2, 3 … from one counter; the source keeps the latest,
    visible at once in the same transaction and afterwards."""
    a, b = add_source(database), add_source(database)
    assert [bump(database, a.id), bump(database, b.id), bump(database, a.id)] == [1, 2, 3]
    with database.transaction() as repos:
        assert repos.sources.bump_version(b.id) == 4
        got = repos.sources.get(b.id)
        assert got is not None
        assert got.version == 4
    assert (version_of(database, a.id), version_of(database, b.id)) == (3, 4)


def test_bump_version_of_an_unknown_source_raises_and_uses_no_value(database: SqlDatabase) -> None:
    """An unknown source is a StorageError, and the counter does not advance."""
    source = add_source(database)
    with database.transaction() as repos:
        with pytest.raises(StorageError, match="no such source"):
            repos.sources.bump_version(SourceId(new_id()))
        assert repos.sources.bump_version(source.id) == 1


def test_bump_version_is_unique_under_concurrent_transactions(database: SqlDatabase) -> None:
    """Threads bumping in overlapping transactions never get the same value, leave no gap, and
    each source ends with the last value it was given."""
    sources = [add_source(database) for _ in range(3)]
    workers, rounds = 6, 15
    barrier = threading.Barrier(workers)
    got: list[tuple[SourceId, int]] = []
    lock = threading.Lock()

    def worker(n: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            for r in range(rounds):
                source_id = sources[(n + r) % len(sources)].id
                with database.transaction() as repos:
                    version = repos.sources.bump_version(source_id)
                    repos.sources.get(source_id)  # keep the transaction open a moment
                with lock:
                    got.append((source_id, version))

        return run

    run_in_threads([worker(n) for n in range(workers)])
    assert sorted(v for _, v in got) == list(range(1, workers * rounds + 1))
    for source in sources:
        assert version_of(database, source.id) == max(v for s, v in got if s == source.id)


def test_a_later_version_cannot_commit_before_an_earlier_one(database: SqlDatabase) -> None:
    """While one transaction holds version N uncommitted, another bump waits, then gets N+1:
    versions become visible in their own order, so a reader's cursor never passes a version
    that commits later."""
    a, b = add_source(database), add_source(database)
    second: list[int] = []

    def bump_b() -> None:
        second.append(bump(database, b.id))

    with database.transaction() as repos:
        first = repos.sources.bump_version(a.id)
        other = threading.Thread(target=lambda: run_in_threads([bump_b]))
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive(), "the second bump should wait for the first transaction"
    other.join(timeout=30)
    assert second == [first + 1]


# --- stars ---------------------------------------------------------------------------------------


def test_set_starred_sets_the_flag_only(database: SqlDatabase) -> None:
    """set_starred() stores the flag, reports whether the source exists, and does not bump the
    version (the caller bumps, once per change)."""
    source = add_source(database)
    add_submission(database, source.id)
    version = version_of(database, source.id)
    with database.transaction() as repos:
        assert repos.sources.set_starred(source.id, True) is True
        assert repos.sources.set_starred(SourceId(new_id()), True) is False
    with database.transaction() as repos:
        got = repos.sources.get(source.id)
        assert got is not None
        assert (got.starred, got.version) == (True, version)
        assert repos.sources.set_starred(source.id, False) is True
    with database.transaction() as repos:
        got = repos.sources.get(source.id)
        assert got is not None
        assert got.starred is False


# --- the change feed -----------------------------------------------------------------------------


def test_page_orders_by_version_and_the_last_version_is_the_next_cursor(
    database: SqlDatabase,
) -> None:
    """page() returns sources by ascending version, at most ``limit``, strictly after the cursor;
    following the last version of each page visits every source once, in version order."""
    sources = [add_source(database) for _ in range(5)]
    for source in sources:
        add_submission(database, source.id)
    bump(database, sources[1].id)
    bump(database, sources[3].id)
    expected = sorted((version_of(database, s.id), s.id) for s in sources)
    with database.transaction() as repos:
        first = repos.sources.page(after_version=0, limit=2)
        assert [s.version for s in first] == [v for v, _ in expected[:2]]
        assert repos.sources.page(after_version=expected[-1][0], limit=10) == []
        assert [s.id for s in repos.sources.page(after_version=expected[2][0], limit=10)] == [
            i for _, i in expected[3:]
        ]
        with pytest.raises(ValueError, match="limit"):
            repos.sources.page(after_version=0, limit=0)
    everything = page_all(database, limit=2)
    assert [(s.version, s.id) for s in everything] == expected
    with database.transaction() as repos:
        assert everything == [repos.sources.get(s.id) for s in everything]


def test_page_lists_sources_that_have_ever_submitted(database: SqlDatabase) -> None:
    """A pending source (nothing sent yet) is not in the feed, even if bumped, starred or replied
    to; it appears with its first submission and stays when its last one is deleted, so that
    journalists can still find (and delete) it."""
    bare, replied, starred, emptied = (add_source(database) for _ in range(4))
    bump(database, bare.id)
    add_reply(database, replied.id)
    with database.transaction() as repos:
        repos.sources.set_starred(starred.id, True)
        repos.sources.bump_version(starred.id)
    submission = add_submission(database, emptied.id)
    assert [s.id for s in page_all(database, limit=10)] == [emptied.id]
    with database.transaction() as repos:
        assert repos.submissions.delete(submission.id) is True
        repos.sources.bump_version(emptied.id)
    assert [s.id for s in page_all(database, limit=10)] == [emptied.id]
    add_submission(database, bare.id)
    assert [s.id for s in page_all(database, limit=10)] == [emptied.id, bare.id]


def test_page_filters_by_starred(database: SqlDatabase) -> None:
    """starred=True lists starred sources only, False unstarred only, None both."""
    sources = [add_source(database) for _ in range(4)]
    for source in sources:
        add_submission(database, source.id)
    with database.transaction() as repos:
        for source in sources[::2]:
            repos.sources.set_starred(source.id, True)
            repos.sources.bump_version(source.id)
    assert {s.id for s in page_all(database, 1, starred=True)} == {s.id for s in sources[::2]}
    assert {s.id for s in page_all(database, 1, starred=False)} == {s.id for s in sources[1::2]}
    assert {s.id for s in page_all(database, 1)} == {s.id for s in sources}
    assert all(s.starred for s in page_all(database, 1, starred=True))


def check_feed(seen: list[SourceRecord], unchanged: list[SourceRecord], db: SqlDatabase) -> None:
    """The feed invariants: versions strictly increase (so no record is repeated), every source
    that existed and did not change appears exactly once, with its old version, and every
    source's last appearance carries its final version (none skipped)."""
    versions = [s.version for s in seen]
    assert versions == sorted(set(versions)), "versions must strictly increase"
    for source in unchanged:
        assert [s for s in seen if s.id == source.id] == [source]
    last = {s.id: s.version for s in seen}
    assert last == {s.id: s.version for s in page_all(db, limit=1000)}


def test_paging_is_stable_while_sources_are_added_and_changed_between_pages(
    database: SqlDatabase,
) -> None:
    """Between every two pages a new source arrives, one already read changes and one not yet
    read changes: nothing is repeated or skipped; changed sources move to the end."""
    initial = [add_source(database) for _ in range(12)]
    for source in initial:
        add_submission(database, source.id)
    with database.transaction() as repos:
        snapshot = [s for s in (repos.sources.get(i.id) for i in initial) if s is not None]
    changed: set[SourceId] = set()
    seen: list[SourceRecord] = []
    rng = random.Random(7)
    cursor, pages = 0, 0
    while True:
        with database.transaction() as repos:
            page = repos.sources.page(after_version=cursor, limit=3)
        if not page:
            break
        seen.extend(page)
        cursor = page[-1].version
        pages += 1
        if pages > 8:
            continue  # let the feed drain
        add_submission(database, add_source(database).id)
        read = {s.id for s in seen}
        done = [s for s in snapshot if s.id in read]
        todo = [s for s in snapshot if s.id not in read]
        for group in (done, todo):
            if group:
                victim = rng.choice(group)
                changed.add(victim.id)
                if rng.random() < 0.5:
                    add_submission(database, victim.id)
                else:
                    with database.transaction() as repos:
                        repos.sources.set_starred(victim.id, True)
                        repos.sources.bump_version(victim.id)
    assert pages > 8
    check_feed(seen, [s for s in snapshot if s.id not in changed], database)


def test_paging_is_stable_under_concurrent_writers(database: SqlDatabase) -> None:
    """A reader pages while other threads add sources and bump existing ones: versions strictly
    increase, every source that did not change is read exactly once, and after the writers stop
    the reader ends at every source's final version."""
    initial = [add_source(database) for _ in range(15)]
    for source in initial:
        add_submission(database, source.id)
    with database.transaction() as repos:
        snapshot = [s for s in (repos.sources.get(i.id) for i in initial) if s is not None]
    changed: set[SourceId] = set()
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()
    seen: list[SourceRecord] = []

    def writer(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(seed)
            for _ in range(25):
                if rng.random() < 0.4:
                    add_submission(database, add_source(database).id)
                else:
                    victim = rng.choice(snapshot[: len(snapshot) // 2])
                    with lock:
                        changed.add(victim.id)
                    add_submission(database, victim.id)

        return run

    def reader() -> None:
        cursor = 0
        while True:
            still_writing = writing.is_set()
            with database.transaction() as repos:
                page = repos.sources.page(after_version=cursor, limit=4)
            seen.extend(page)
            if page:
                cursor = page[-1].version
            elif not still_writing:
                return

    def writers() -> None:
        try:
            run_in_threads([writer(seed) for seed in range(3)])
        finally:
            writing.clear()

    run_in_threads([reader, writers])
    check_feed(seen, [s for s in snapshot if s.id not in changed], database)
    # Half of the initial sources were never touched by the writers.
    assert len(snapshot) - len(changed) >= len(snapshot) // 2


# --- hashes, authors, deletion of items with their seen marks ------------------------------------


def test_submission_keeps_its_sha256(database: SqlDatabase) -> None:
    """digest round-trips; a NewSubmission without one stores ''."""
    source = add_source(database)
    with_hash = add_submission(database, source.id, digest=DIGEST)
    with database.transaction() as repos:
        seq = repos.sources.reserve_sequence(source.id, 1)
        plain = repos.submissions.add(
            source.id, seq, DAY, NewSubmission("file", BlobKey(new_id()), 1, b"meta")
        )
    with database.transaction() as repos:
        assert repos.submissions.get(with_hash.id) == with_hash
        assert repos.submissions.get(plain.id) == plain
        assert list(repos.submissions.all()) == [with_hash, plain]
    assert (with_hash.digest, plain.digest) == (DIGEST, "")


def test_reply_keeps_its_sha256_and_author(database: SqlDatabase) -> None:
    """digest and author_id round-trip; both default to '' and None."""
    source = add_source(database)
    author = add_user(database, "ann")
    reply = add_reply(database, source.id, author)
    with database.transaction() as repos:
        seq = repos.sources.reserve_sequence(source.id, 1)
        anonymous = repos.replies.add(source.id, seq, DAY, BlobKey(new_id()), 1)
    assert (reply.digest, reply.author_id) == (DIGEST, author)
    assert (anonymous.digest, anonymous.author_id) == ("", None)
    with database.transaction() as repos:
        assert repos.replies.for_source(source.id) == [reply, anonymous]


def test_reply_author_must_exist_and_is_forgotten_when_the_user_is_deleted(
    database: SqlDatabase,
) -> None:
    """An unknown author is refused (foreign key); deleting the author's user row keeps the
    reply and sets its author to None (ON DELETE SET NULL)."""
    source = add_source(database)
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.replies.add(source.id, 1, DAY, BlobKey(new_id()), 1, "", UserId(new_id()))
    author, other = add_user(database, "ann"), add_user(database, "bob")
    reply, kept = add_reply(database, source.id, author), add_reply(database, source.id, other)
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": author})
    with database.transaction() as repos:
        assert repos.replies.get(reply.id) == dataclasses.replace(reply, author_id=None)
        assert repos.replies.get(kept.id) == kept


def test_submission_delete_removes_the_row_and_its_seen_marks(database: SqlDatabase) -> None:
    """delete() removes one submission and every user's seen mark of it, reports whether it
    existed, and leaves other submissions and their marks."""
    source = add_source(database)
    gone, kept = add_submission(database, source.id), add_submission(database, source.id)
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        repos.seen.mark(ann, [gone.id, kept.id])
        repos.seen.mark(bob, [gone.id])
    with database.transaction() as repos:
        assert repos.submissions.delete(gone.id) is True
        assert repos.submissions.delete(gone.id) is False
        assert repos.submissions.delete(SubmissionId(new_id())) is False
        assert repos.submissions.get(gone.id) is None
    with database.transaction() as repos:
        assert repos.submissions.for_source(source.id) == [kept]
        assert repos.submissions.blob_keys() == {kept.blob_key}
        assert repos.seen.seen_among(ann, [gone.id, kept.id]) == {kept.id}
        assert repos.seen.seen_among(bob, [gone.id, kept.id]) == set()


def test_reply_delete_removes_its_seen_marks(database: SqlDatabase) -> None:
    """Deleting a reply removes the seen marks of that reply only."""
    source = add_source(database)
    gone, kept = add_reply(database, source.id), add_reply(database, source.id)
    ann = add_user(database, "ann")
    with database.transaction() as repos:
        repos.seen.mark(ann, [gone.id, kept.id])
        assert repos.replies.delete(gone.id) is True
    with database.transaction() as repos:
        assert repos.seen.seen_among(ann, [gone.id, kept.id]) == {kept.id}


def test_source_delete_removes_the_seen_marks_of_its_items(database: SqlDatabase) -> None:
    """Deleting a source removes every user's marks of its submissions and replies (they have no
    foreign key to cascade), and keeps the marks of another source's items."""
    doomed, other = add_source(database), add_source(database)
    items = [add_submission(database, doomed.id).id, add_reply(database, doomed.id).id]
    others = [add_submission(database, other.id).id, add_reply(database, other.id).id]
    ann, bob = add_user(database, "ann"), add_user(database, "bob")
    with database.transaction() as repos:
        repos.seen.mark(ann, items + others)
        repos.seen.mark(bob, items)
    with database.transaction() as repos:
        assert repos.sources.delete(doomed.id) is True
    with database.transaction() as repos:
        assert repos.seen.seen_among(ann, items + others) == set(others)
        assert repos.seen.seen_among(bob, items + others) == set()
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM seen")).scalar_one() == 2
