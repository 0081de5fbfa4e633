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

from sealdrop.ids import BlobKey, SourceId, SubmissionId, new_id
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
    """A source, submission and session written under 0001 survive the upgrade to head, with
    pseudonym '', pending_since None (so never purged as pending) and the session confirmed."""
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
        assert repos.sessions.get(b"old-session") == SessionRecord(
            b"old-session", source_id, b"sealed", 100, 150, confirmed=True
        )
        assert repos.replies.for_source(source_id) == []
        assert repos.sources.purge_pending(created_before=2**62) == 0
        # The sequence carries on after the old submission, for replies too.
        seq = repos.sources.reserve_sequence(source_id, 1)
        assert seq == 2
        repos.replies.add(source_id, seq, DAY, BlobKey(new_id()), 1)


def test_downgrade_to_0001_keeps_sources_submissions_and_sessions(
    empty_database: SqlDatabase,
) -> None:
    """Downgrading below 0002 drops replies and the new columns only: no submission or session
    is lost (on SQLite a table rebuild of sources would have cascaded to them), and upgrading
    again gives the head schema back."""
    db = empty_database
    db.upgrade()
    with db.transaction() as repos:
        source = repos.sources.add(b"lookup", "age1x", DAY, "calm lynx", 1_000)
        seq = repos.sources.reserve_sequence(source.id, 2)
        repos.submissions.add(
            source.id, seq, DAY, NewSubmission("message", BlobKey(new_id()), 1, None)
        )
        repos.replies.add(source.id, seq + 1, DAY, BlobKey(new_id()), 9)
        repos.sessions.add(SessionRecord(b"h", source.id, b"sealed", 1, 2, confirmed=False))

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
    assert count_rows(db, "source_sessions") == 1

    migrate(db, "head")
    assert schema_diff(db) == []
    with db.transaction() as repos:
        again = repos.sources.get(source.id)
        assert again is not None
        assert (again.pseudonym, again.pending_since) == ("", None)
        assert len(repos.submissions.for_source(source.id)) == 1
        session = repos.sessions.get(b"h")
        assert session is not None
        assert session.confirmed is True
