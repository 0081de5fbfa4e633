"""SqlDatabase: engine settings, migrations from code, and error mapping."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from sealdrop.errors import ConfigError, DatabaseUnavailable, StorageError
from sealdrop.ids import SourceId
from sealdrop.storage import migrations
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.models import Base


def test_sqlite_url_for_escapes_awkward_paths(tmp_path: Path) -> None:
    """A path containing '?', '#' or '%' still names that very file."""
    path = tmp_path / "we?ird#na%me.sqlite3"
    db = SqlDatabase(sqlite_url_for(path))
    db.upgrade()
    db.close()
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite3"] == [path.name]


def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    """Foreign keys on, WAL, FULL sync, secure_delete and a 5 s busy timeout by default."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    with db.engine.connect() as conn:
        value = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in (
                "foreign_keys",
                "journal_mode",
                "synchronous",
                "secure_delete",
                "busy_timeout",
            )
        }
    db.close()
    assert value == {
        "foreign_keys": 1,
        "journal_mode": "wal",
        "synchronous": 2,
        "secure_delete": 1,
        "busy_timeout": 5000,
    }


def test_sqlite_file_is_created_owner_only(tmp_path: Path) -> None:
    """The SQLite file (lookup ids, sealed identities) is created 0600 whatever the umask."""
    path = tmp_path / "db.sqlite3"
    db = SqlDatabase(sqlite_url_for(path))
    db.upgrade()
    db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_migrations_run_from_code_and_match_the_models(tmp_path: Path) -> None:
    """migrations.upgrade() needs no alembic.ini, and leaves nothing for autogenerate to add."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    assert not db.schema_is_current()
    with db.engine.begin() as conn:
        migrations.upgrade(conn)
    with db.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision() == "0009"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert db.schema_is_current()
    db.upgrade()  # idempotent at head
    db.close()


@pytest.mark.postgres
def test_postgres_migration_matches_the_models(fresh_postgres_url: str) -> None:
    """On PostgreSQL too, the migrated schema equals models.py (types, indexes, constraints)."""
    db = SqlDatabase(fresh_postgres_url)
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.close()
    assert diff == []


@pytest.mark.postgres
def test_plain_postgresql_url_uses_psycopg(fresh_postgres_url: str) -> None:
    """A postgresql:// URL is served by psycopg 3 (psycopg2 is not installed)."""
    db = SqlDatabase(fresh_postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    db.upgrade()
    assert db.engine.dialect.driver == "psycopg"
    assert "sources" in inspect(db.engine).get_table_names()
    db.close()


def test_unsupported_or_malformed_url_is_a_config_error() -> None:
    """Only SQLite and PostgreSQL are accepted; a bad URL is not echoed (it may hold a password)."""
    with pytest.raises(ConfigError, match="unsupported"):
        SqlDatabase("mysql://user:pw@localhost/db")
    with pytest.raises(ConfigError) as info:
        SqlDatabase("not a url with hunter2")
    assert "hunter2" not in str(info.value)


def test_unreachable_postgres_raises_database_unavailable_quickly(unused_tcp_port: int) -> None:
    """A PostgreSQL port nobody listens on gives DatabaseUnavailable within seconds."""
    url = f"postgresql+psycopg://nobody@127.0.0.1:{unused_tcp_port}/x"
    db = SqlDatabase(url, connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable), db.transaction() as repos:
        repos.sources.get(SourceId("0" * 32))
    with pytest.raises(DatabaseUnavailable):
        db.upgrade()
    db.close()
    assert time.monotonic() - started < 5


def test_locked_sqlite_raises_database_unavailable_after_lock_timeout(tmp_path: Path) -> None:
    """While another process holds the write lock, a transaction waits lock_timeout, then fails."""
    path = tmp_path / "db.sqlite3"
    db = SqlDatabase(sqlite_url_for(path), lock_timeout=0.3)
    db.upgrade()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable), db.transaction() as repos:
            repos.sources.add(b"lookup", "age1x", None, "", None)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 0.25 < waited < 3
    with db.transaction() as repos:  # usable again once the lock is gone
        repos.sources.add(b"lookup", "age1x", None, "", None)
    db.close()


def test_missing_sqlite_directory_raises_database_unavailable(tmp_path: Path) -> None:
    """A database file that cannot be created is DatabaseUnavailable, not a bare OSError."""
    with pytest.raises(DatabaseUnavailable):
        SqlDatabase(sqlite_url_for(tmp_path / "missing" / "db.sqlite3"))


def test_sqlite_read_only_transactions_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """While another connection holds the write lock (an upload committing, say), a read-only
    transaction reads the last committed state at once; a normal one would wait for the lock."""
    path = tmp_path / "db.sqlite3"
    db = SqlDatabase(sqlite_url_for(path), lock_timeout=2.0)
    db.upgrade()
    with db.transaction() as repos:
        repos.sources.add(b"lookup", "age1x", None, "", None)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with db.transaction(read_only=True) as repos:
            assert repos.sources.by_lookup_id(b"lookup") is not None
        assert time.monotonic() - started < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    db.close()


def test_sqlite_read_only_transactions_refuse_writes(tmp_path: Path) -> None:
    """A write inside a read-only transaction fails (query_only) instead of quietly taking the
    write lock, and the next normal transaction writes as usual on the same pooled connection."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    with pytest.raises(StorageError), db.transaction(read_only=True) as repos:
        repos.sources.add(b"lookup", "age1x", None, "", None)
    with db.transaction() as repos:
        repos.sources.add(b"lookup", "age1x", None, "", None)
    with db.transaction(read_only=True) as repos:
        assert repos.sources.by_lookup_id(b"lookup") is not None
    # The pragma is switched only when the kind of transaction changes: after a write, a
    # read-only transaction on the same connection refuses writes again.
    with pytest.raises(StorageError), db.transaction(read_only=True) as repos:
        repos.sources.add(b"other", "age1y", None, "", None)
    db.close()


def test_sqlite_writers_of_one_process_queue_and_time_out_like_the_lock(tmp_path: Path) -> None:
    """Writers in one process wait for each other on the process's own gate: every one of many
    concurrent writers commits, none is lost to a busy error; one that waits longer than
    lock_timeout gets DatabaseUnavailable, as for SQLite's own lock; readers do not queue."""
    path = tmp_path / "db.sqlite3"
    db = SqlDatabase(sqlite_url_for(path), lock_timeout=5.0)
    db.upgrade()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with db.transaction() as repos:
                repos.sources.add(f"lookup-{n}".encode(), "age1x", None, "", None)
                time.sleep(0.005)  # hold the lock a while, as a commit with its fsync does
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.transaction(read_only=True) as repos:
        assert all(repos.sources.by_lookup_id(f"lookup-{n}".encode()) for n in range(24))
    db.close()

    impatient = SqlDatabase(sqlite_url_for(path), lock_timeout=0.3)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with impatient.transaction() as repos:
            repos.sources.add(b"holder", "age1x", None, "", None)
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with impatient.transaction(read_only=True) as repos:  # a reader goes straight through
            assert repos.sources.by_lookup_id(b"lookup-0") is not None
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable), impatient.transaction() as repos:
            repos.sources.add(b"late", "age1x", None, "", None)
        assert 0.25 < time.monotonic() - started < 3
    finally:
        release.set()
        holder.join()
    with impatient.transaction() as repos:  # usable again once the holder is done
        repos.sources.add(b"late", "age1x", None, "", None)
    impatient.close()
