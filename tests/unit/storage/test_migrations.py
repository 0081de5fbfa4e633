"""Migrations on databases that already hold data, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from sealdrop.ids import BlobKey, SourceId, SubmissionId, UserId, new_id
from sealdrop.storage import migrations
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.interfaces import NewSubmission, SessionRecord
from sealdrop.storage.models import Base

DAY = dt.date(2024, 5, 17)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlDatabase]:
    """A fresh SqlDatabase on each backend, not migrated at all."""
    if request.param == "sqlite":
        url = sqlite_url_for(tmp_path / "sealdrop.sqlite3")
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    db = SqlDatabase(url)
    yield db
    db.close()


def migrate(db: SqlDatabase, revision: str) -> None:
    """Upgrade or downgrade to ``revision``, in one transaction."""
    with db.engine.begin() as conn:
        if revision == "head" or int(revision) > int(migrations.current_revision(conn) or 0):
            migrations.upgrade(conn, revision)
        else:
            command.downgrade(migrations.alembic_config(conn), revision)


def schema_diff(db: SqlDatabase) -> list[object]:
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def count_rows(db: SqlDatabase, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_upgrade_from_0001_keeps_existing_rows(empty_database: SqlDatabase) -> None:
    """A source and submission written under 0001 survive the upgrade to head, with pseudonym
    '', pending_since None (so never purged as pending); the session ends (0004: it cannot name
    its source any more)."""
    db = empty_database
    migrate(db, "0001")
    source_id, submission_id, blob = SourceId(new_id()), SubmissionId(new_id()), new_id()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, lookup_id, reply_recipient, created_day, last_seq)"
                " VALUES (:id, :lookup, 'age1old', :day, 1)"
            ),
            {"id": source_id, "lookup": b"\x00old-lookup", "day": DAY},
        )
        conn.execute(
            text(
                "INSERT INTO submissions (id, source_id, seq, kind, arrival_day, blob_key, size,"
                " metadata_ciphertext) VALUES (:id, :source, 1, 'file', :day, :blob, 42, :meta)"
            ),
            {"id": submission_id, "source": source_id, "day": DAY, "blob": blob, "meta": b"AGE"},
        )
        conn.execute(
            text(
                "INSERT INTO source_sessions (id_hash, source_id, sealed_identity, created_at,"
                " last_seen_at) VALUES (:hash, :source, :sealed, 100, 150)"
            ),
            {"hash": b"old-session", "source": source_id, "sealed": b"sealed"},
        )

    db.upgrade()

    assert db.schema_is_current()
    assert schema_diff(db) == []
    with db.transaction() as repos:
        source = repos.sources.get(source_id)
        assert source is not None
        assert (source.lookup_id, source.reply_recipient, source.created_day) == (
            b"\x00old-lookup",
            "age1old",
            DAY,
        )
        assert source.pseudonym == ""
        assert source.pending_since is None
        [submission] = repos.submissions.for_source(source_id)
        assert (submission.id, submission.kind, submission.blob_key) == (
            submission_id,
            "file",
            BlobKey(blob),
        )
        assert submission.metadata_ciphertext == b"AGE"
        assert repos.sessions.get(b"old-session") is None
        assert repos.replies.for_source(source_id) == []
        assert repos.sources.purge_pending(created_before=2**62) == 0
        # The sequence carries on after the old submission, for replies too.
        seq = repos.sources.reserve_sequence(source_id, 1)
        assert seq == 2
        repos.replies.add(source_id, seq, DAY, BlobKey(new_id()), 1)


def test_downgrade_to_0001_keeps_sources_and_submissions(
    empty_database: SqlDatabase,
) -> None:
    """Downgrading below 0002 drops replies and the new columns only: no submission is lost (on
    SQLite a table rebuild of sources would have cascaded to them), sessions end (0004), and
    upgrading again gives the head schema back."""
    db = empty_database
    db.upgrade()
    with db.transaction() as repos:
        source = repos.sources.add(b"lookup", "age1x", DAY, "calm lynx", 1_000)
        seq = repos.sources.reserve_sequence(source.id, 2)
        repos.submissions.add(
            source.id, seq, DAY, NewSubmission("message", BlobKey(new_id()), 1, None)
        )
        repos.replies.add(source.id, seq + 1, DAY, BlobKey(new_id()), 9)
        repos.sessions.add(SessionRecord(b"h", b"sealed", 1, 2, confirmed=False))

    migrate(db, "0001")

    insp = inspect(db.engine)
    assert "replies" not in insp.get_table_names()
    assert {c["name"] for c in insp.get_columns("sources")} == {
        "id",
        "lookup_id",
        "reply_recipient",
        "created_day",
        "last_seq",
    }
    assert "confirmed" not in {c["name"] for c in insp.get_columns("source_sessions")}
    assert count_rows(db, "sources") == 1
    assert count_rows(db, "submissions") == 1
    assert count_rows(db, "source_sessions") == 0

    migrate(db, "head")
    assert schema_diff(db) == []
    with db.transaction() as repos:
        again = repos.sources.get(source.id)
        assert again is not None
        assert (again.pseudonym, again.pending_since) == ("", None)
        assert len(repos.submissions.for_source(source.id)) == 1
        assert repos.sessions.get(b"h") is None


def insert_0002_conversation(db: SqlDatabase, n: int) -> tuple[SourceId, str, str]:
    """Under 0002: a source with a submission, a reply and a session, numbered ``n``."""
    source_id = SourceId(new_id())
    submission_id, reply_id = new_id(), new_id()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, lookup_id, reply_recipient, created_day, last_seq,"
                " pseudonym) VALUES (:id, :lookup, 'age1old', :day, 2, :name)"
            ),
            {"id": source_id, "lookup": f"lookup-{n}".encode(), "day": DAY, "name": f"old {n}"},
        )
        conn.execute(
            text(
                "INSERT INTO submissions (id, source_id, seq, kind, arrival_day, blob_key, size)"
                " VALUES (:id, :source, 1, 'message', :day, :blob, 42)"
            ),
            {"id": submission_id, "source": source_id, "day": DAY, "blob": new_id()},
        )
        conn.execute(
            text(
                "INSERT INTO replies (id, source_id, seq, arrival_day, blob_key, size)"
                " VALUES (:id, :source, 2, :day, :blob, 7)"
            ),
            {"id": reply_id, "source": source_id, "day": DAY, "blob": new_id()},
        )
        conn.execute(
            text(
                "INSERT INTO source_sessions (id_hash, source_id, sealed_identity, created_at,"
                " last_seen_at, confirmed) VALUES (:hash, :source, :sealed, 1, 2, :confirmed)"
            ),
            {
                "hash": f"session-{n}".encode(),
                "source": source_id,
                "sealed": b"s",
                "confirmed": True,
            },
        )
    return source_id, submission_id, reply_id


def test_upgrade_from_0002_gives_existing_sources_distinct_versions(
    empty_database: SqlDatabase,
) -> None:
    """Sources written under 0002 (with submissions, replies and sessions, and one pending
    source with nothing) survive the upgrade to head with distinct versions 1…n, unstarred; the
    counter continues after them; old submissions and replies get digest '' and no author; the
    feed lists every source that has a submission; the sessions end (0004)."""
    db = empty_database
    migrate(db, "0002")
    conversations = [insert_0002_conversation(db, n) for n in range(5)]
    pending = SourceId(new_id())
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, lookup_id, reply_recipient, pending_since)"
                " VALUES (:id, 'pending', 'age1new', 1000)"
            ),
            {"id": pending},
        )

    db.upgrade()

    assert db.schema_is_current()
    assert schema_diff(db) == []
    for table, rows in (("sources", 6), ("submissions", 5), ("replies", 5), ("source_sessions", 0)):
        assert count_rows(db, table) == rows, table
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name, value FROM counters ORDER BY name")).all() == [
            ("source_version", 6),
            ("submission_activity", 0),  # 0006: counts from the upgrade on
        ]
    source_ids = [c[0] for c in conversations]
    with db.transaction() as repos:
        sources = [repos.sources.get(i) for i in [*source_ids, pending]]
        assert all(s is not None and s.starred is False for s in sources)
        assert sorted(s.version for s in sources if s is not None) == [1, 2, 3, 4, 5, 6]
        for source_id, submission_id, reply_id in conversations:
            [submission] = repos.submissions.for_source(source_id)
            assert (submission.id, submission.digest) == (submission_id, "")
            [reply] = repos.replies.for_source(source_id)
            assert (reply.id, reply.digest, reply.author_id) == (reply_id, "", None)
        feed = repos.sources.page(after_version=0, limit=100)
        assert sorted(s.id for s in feed) == sorted(source_ids)
        assert [s.version for s in feed] == sorted(s.version for s in feed)
        assert repos.sources.bump_version(source_ids[0]) == 7
        assert repos.sources.page(after_version=6, limit=100)[0].id == source_ids[0]
        assert repos.users.list() == []
        assert repos.sessions.get(b"session-0") is None


def test_downgrade_from_head_to_0002_keeps_every_conversation(
    empty_database: SqlDatabase,
) -> None:
    """Downgrading to 0002 drops the journalist tables and the new columns only: sources,
    submissions and replies (rebuilt on SQLite) stay, sessions end (0004); upgrading again
    numbers the sources afresh and gives the head schema back."""
    db = empty_database
    db.upgrade()
    with db.transaction() as repos:
        author = repos.users.add("ann", "hash", "", "journalist")
        repos.user_recipients.add(author.id, "age1ann", "laptop")
        repos.seen.mark(author.id, ["x" * 32])
        repos.audit.add(DAY, "ann", "login", None)
        repos.settings.set("instance_name", "Tribune")
        sources = []
        for n in range(3):
            source = repos.sources.add(f"lookup-{n}".encode(), "age1x", DAY, "calm lynx", None)
            seq = repos.sources.reserve_sequence(source.id, 2)
            new = NewSubmission("message", BlobKey(new_id()), 1, None, "ab" * 32)
            repos.submissions.add(source.id, seq, DAY, new)
            repos.replies.add(source.id, seq + 1, DAY, BlobKey(new_id()), 9, "cd" * 32, author.id)
            repos.sources.bump_version(source.id)
            repos.sessions.add(SessionRecord(f"h{n}".encode(), b"sealed", 1, 2))
            sources.append(source)

    migrate(db, "0002")

    insp = inspect(db.engine)
    assert set(insp.get_table_names()) == {
        "alembic_version",
        "sources",
        "submissions",
        "replies",
        "recipients",
        "source_sessions",
    }
    assert {c["name"] for c in insp.get_columns("replies")} == {
        "id",
        "source_id",
        "seq",
        "arrival_day",
        "blob_key",
        "size",
    }
    assert {"starred", "version"}.isdisjoint(c["name"] for c in insp.get_columns("sources"))
    assert "sha256" not in {c["name"] for c in insp.get_columns("submissions")}
    for table in ("sources", "submissions", "replies"):
        assert count_rows(db, table) == 3, table
    assert count_rows(db, "source_sessions") == 0

    migrate(db, "head")
    assert schema_diff(db) == []
    with db.transaction() as repos:
        again = [repos.sources.get(s.id) for s in sources]
        assert sorted(s.version for s in again if s is not None) == [1, 2, 3]
        for source in sources:
            [reply] = repos.replies.for_source(source.id)
            assert (reply.digest, reply.author_id) == ("", None)
            assert len(repos.submissions.for_source(source.id)) == 1
        assert repos.users.list() == []


def test_upgrade_from_0003_ends_sessions_and_unlinks_them_from_sources(
    empty_database: SqlDatabase,
) -> None:
    """0004 deletes every session (their sealed values name no source, so none could resolve),
    drops source_sessions.source_id with its foreign key and index, and gives sources a
    session_epoch (empty until their next login); sources and conversations stay. Downgrading
    to 0003 and upgrading again both work, on SQLite and PostgreSQL."""
    db = empty_database
    migrate(db, "0003")
    conversations = [insert_0002_conversation(db, n) for n in range(3)]

    migrate(db, "head")  # 0004, and what came after it

    assert db.schema_is_current()
    assert schema_diff(db) == []
    insp = inspect(db.engine)
    assert "source_id" not in {c["name"] for c in insp.get_columns("source_sessions")}
    assert insp.get_foreign_keys("source_sessions") == []
    assert insp.get_indexes("source_sessions") == []
    assert count_rows(db, "source_sessions") == 0
    assert count_rows(db, "sources") == 3
    with db.transaction() as repos:
        for source_id, submission_id, reply_id in conversations:
            source = repos.sources.get(source_id)
            assert source is not None
            assert source.session_epoch == b""
            assert [s.id for s in repos.submissions.for_source(source_id)] == [submission_id]
            assert [r.id for r in repos.replies.for_source(source_id)] == [reply_id]
            epoch = repos.sources.renew_session_epoch(source_id)
            assert epoch is not None
            assert len(epoch) == 16
        repos.sessions.add(SessionRecord(b"new", b"sealed", 1, 2))

    migrate(db, "0003")
    assert "source_id" in {c["name"] for c in inspect(db.engine).get_columns("source_sessions")}
    assert "session_epoch" not in {c["name"] for c in inspect(db.engine).get_columns("sources")}
    assert count_rows(db, "source_sessions") == 0
    assert count_rows(db, "submissions") == 3

    migrate(db, "head")
    assert schema_diff(db) == []
    assert count_rows(db, "replies") == 3


def test_upgrade_from_0004_adds_triage_and_downgrade_keeps_conversations(
    empty_database: SqlDatabase,
) -> None:
    """0005 adds the triage tables, empty (every source assigned to nobody, without labels), and
    touches no existing row; downgrading to 0004 drops them and keeps every conversation, on
    SQLite and PostgreSQL."""
    db = empty_database
    migrate(db, "0003")
    conversations = [insert_0002_conversation(db, n) for n in range(2)]
    migrate(db, "0004")
    source_ids = [c[0] for c in conversations]

    migrate(db, "head")

    assert db.schema_is_current()
    assert schema_diff(db) == []
    with db.transaction() as repos:
        assert repos.triage.assignees(source_ids) == {}
        assert repos.triage.labels(source_ids) == {s: [] for s in source_ids}
        user = repos.users.add("ann", "$argon2id$x", "JBSWY3DPEHPK3PXP", "journalist")
        repos.triage.assign(source_ids[0], user.id)
        repos.triage.replace_labels(source_ids[0], ["spam"])

    migrate(db, "0004")
    assert not {"source_assignees", "source_labels"} & set(inspect(db.engine).get_table_names())
    assert count_rows(db, "sources") == 2
    assert count_rows(db, "submissions") == 2
    assert count_rows(db, "replies") == 2

    migrate(db, "head")
    assert schema_diff(db) == []


def test_upgrade_from_0005_adds_notification_targets_and_the_activity_counter(
    empty_database: SqlDatabase,
) -> None:
    """0006 adds notification_targets (deleted with their account) and the submission_activity
    counter at 0, leaving accounts and counters as they were; downgrading removes both and
    upgrading again gives the head schema back."""
    db = empty_database
    migrate(db, "0005")
    user_id = new_id()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, passphrase_hash, role)"
                " VALUES (:id, 'ann', 'x', 'journalist')"
            ),
            {"id": user_id},
        )

    migrate(db, "head")

    assert schema_diff(db) == []
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, value FROM counters")).all()
    counters = {str(name): int(value) for name, value in rows}
    assert counters["submission_activity"] == 0
    with db.transaction() as repos:
        repos.notifications.set(UserId(user_id), "email", "ann@example.org", "en")
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    assert count_rows(db, "notification_targets") == 0

    migrate(db, "0005")
    assert "notification_targets" not in inspect(db.engine).get_table_names()
    with db.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM counters"))}
    assert "submission_activity" not in names

    migrate(db, "head")
    assert schema_diff(db) == []


def test_upgrade_from_0006_adds_source_holds(empty_database: SqlDatabase) -> None:
    """0007 adds source_holds, empty (no existing source is on hold), whose rows go with their
    source; downgrading drops it and upgrading again gives the head schema back."""
    db = empty_database
    migrate(db, "0006")
    source_id = new_id()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, lookup_id, reply_recipient, pseudonym)"
                " VALUES (:id, :lookup, 'age1x', 'calm lynx')"
            ),
            {"id": source_id, "lookup": b"l" * 32},
        )
    migrate(db, "head")
    assert schema_diff(db) == []
    assert count_rows(db, "source_holds") == 0
    with db.transaction() as repos:
        repos.triage.set_hold(SourceId(source_id), True)
    assert count_rows(db, "source_holds") == 1
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM sources WHERE id = :id"), {"id": source_id})
    assert count_rows(db, "source_holds") == 0
    migrate(db, "0006")
    assert "source_holds" not in inspect(db.engine).get_table_names()
    migrate(db, "head")
    assert schema_diff(db) == []


def test_upgrade_from_0008_names_the_digest_algorithm(empty_database: SqlDatabase) -> None:
    """0009 turns each hex SHA-256 into "sha256:HEX" (a row never hashed keeps ''), so old
    blobs keep being checked with the algorithm that made their digest; downgrading gives the
    hex back, and a BLAKE3 digest, which has no SHA-256 to give, becomes ''."""
    db = empty_database
    migrate(db, "0008")
    hex_digest = "0f" * 32
    source_id = SourceId(new_id())
    rows = {  # table -> (id with a hash, id without one)
        "submissions": (new_id(), new_id()),
        "replies": (new_id(), new_id()),
    }
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (id, lookup_id, reply_recipient, pseudonym, last_seq)"
                " VALUES (:id, :lookup, 'age1x', 'calm lynx', 4)"
            ),
            {"id": source_id, "lookup": b"l" * 32},
        )
        seq = 0
        for table, ids in rows.items():
            kind = ", kind" if table == "submissions" else ""
            for row_id, digest in zip(ids, (hex_digest, ""), strict=True):
                seq += 1
                conn.execute(
                    text(
                        f"INSERT INTO {table} (id, source_id, seq{kind}, blob_key, size, sha256)"
                        f" VALUES (:id, :source, :seq{', :kind' if kind else ''}, :blob, 9, :sha)"
                    ),
                    {
                        "id": row_id,
                        "source": source_id,
                        "seq": seq,
                        "kind": "message",
                        "blob": new_id(),
                        "sha": digest,
                    },
                )

    migrate(db, "head")
    assert schema_diff(db) == []
    with db.transaction() as repos:
        [hashed, unhashed] = repos.submissions.for_source(source_id)
        assert (hashed.digest, unhashed.digest) == (f"sha256:{hex_digest}", "")
        [hashed_reply, unhashed_reply] = repos.replies.for_source(source_id)
        assert (hashed_reply.digest, unhashed_reply.digest) == (f"sha256:{hex_digest}", "")
        seq = repos.sources.reserve_sequence(source_id, 1)
        new = NewSubmission("message", BlobKey(new_id()), 9, None, "blake3:" + "ab" * 32)
        made_now = repos.submissions.add(source_id, seq, DAY, new)

    migrate(db, "0008")
    with db.engine.connect() as conn:
        found: dict[str, str] = dict(conn.execute(text("SELECT id, sha256 FROM submissions")).all())
        replies: dict[str, str] = dict(conn.execute(text("SELECT id, sha256 FROM replies")).all())
    assert found == {
        rows["submissions"][0]: hex_digest,
        rows["submissions"][1]: "",
        made_now.id: "",
    }
    assert replies == {rows["replies"][0]: hex_digest, rows["replies"][1]: ""}
    migrate(db, "head")
    assert schema_diff(db) == []
