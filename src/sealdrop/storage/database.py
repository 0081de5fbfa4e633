"""The SQL database: engine setup for SQLite (default) or PostgreSQL, migrations, transactions."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import sessionmaker

from sealdrop.errors import ConfigError, DatabaseUnavailable, SchemaTooNew, StorageError
from sealdrop.storage import migrations
from sealdrop.storage.repositories import SqlRepositories
from sealdrop.storage.sqlerrors import translated_errors

# Execution option of the engine that read-only transactions use.
_READ_ONLY = "sealdrop_read_only"

# Connections kept open. SQLAlchemy's default (5) is below what the worker threads use at once
# under moderate load (anyio runs up to 40, uploads up to 32 more), and a connection beyond the
# pool is closed when returned: measured, reopening them (connect, pragmas, schema parse on the
# first statement) took a tenth of the server's busy time at 8 concurrent pages. Beyond the pool,
# up to the overflow more are opened for a burst; past that, a thread waits for a free one.
# PostgreSQL gets fewer: each is a backend process on the database server, whose
# max_connections (100 by default) several Sealdrop processes may share.
SQLITE_POOL_SIZE = 16
SQLITE_POOL_OVERFLOW = 64
POSTGRES_POOL_SIZE = 10
POSTGRES_POOL_OVERFLOW = 10


def sqlite_url_for(path: Path) -> str:
    """The URL of an SQLite database file (characters such as ``?`` or ``%`` escaped)."""
    url = URL.create("sqlite+pysqlite", database=str(path.absolute()))
    return url.render_as_string(hide_password=False)


class SqlDatabase:
    """``Database`` on SQLAlchemy. Construct once per process; ``close()`` at shutdown."""

    def __init__(self, url: str, *, lock_timeout: float = 5.0, connect_timeout: int = 5) -> None:
        """``lock_timeout``: seconds to wait for a lock before ``DatabaseUnavailable``;
        ``connect_timeout``: seconds to wait for a PostgreSQL server."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            # The URL may hold a password: never echo it.
            raise ConfigError("the database URL does not parse") from None
        backend = parsed.get_backend_name()
        self._lock_timeout = lock_timeout
        # SQLite has one writer at a time. Writers of this process queue on this lock, which
        # hands over the moment it is released, instead of on SQLite's busy handler, which polls
        # with sleeps that grow to 100 ms: measured, at 8 concurrent submissions that polling
        # made the slowest 1% wait over half a second for a lock held a few milliseconds. The
        # busy handler still arbitrates with other processes (the CLI, a second server).
        self._writer_gate: threading.Lock | None = None
        if backend == "sqlite":
            self._writer_gate = threading.Lock()
            self._engine = _sqlite_engine(parsed.set(drivername="sqlite+pysqlite"), lock_timeout)
        elif backend == "postgresql":
            self._engine = _postgres_engine(
                parsed.set(drivername="postgresql+psycopg"), lock_timeout, connect_timeout
            )
        else:
            raise ConfigError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
        # expire_on_commit=False: records are copied out of ORM objects inside the transaction.
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        # The same pool; the option tells the SQLite "begin" hook to take no write lock.
        self._read_engine = self._engine.execution_options(**{_READ_ONLY: True})
        self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        """For operator tools and tests; services use ``transaction()``."""
        return self._engine

    def ping(self) -> None:
        """One round trip to the database (``SELECT 1``): DatabaseUnavailable if it cannot be
        reached (the connect timeout bounds how long that takes). Read-only, so on SQLite it
        takes no write lock and never waits behind a writer."""
        with translated_errors(), self._read_engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def upgrade(self) -> None:
        """Run every migration up to head, in one transaction (a failure leaves the database as
        it was). Raises ``SchemaTooNew``, having changed nothing, on a database that a newer
        Sealdrop migrated."""
        with translated_errors(), self._engine.begin() as connection:
            current = _known_revision(connection)
            # One step at a time, to name the one that fails; the transaction stays one.
            for revision, _ in migrations.pending(current):
                try:
                    with translated_errors():
                        migrations.upgrade(connection, revision)
                except StorageError as exc:
                    # The driver's own text is left out: it may quote a stored value.
                    raise StorageError(f"migration {revision} failed: {exc}") from exc

    def migration_plan(self) -> MigrationPlan:
        """Where the schema is and which migrations ``upgrade()`` would run; changes nothing."""
        with translated_errors(), self._engine.connect() as connection:
            current = _known_revision(connection)
            return MigrationPlan(
                current, migrations.head_revision(), tuple(migrations.pending(current))
            )

    def schema_is_current(self) -> bool:
        """Whether the schema is at head (a server should refuse to start otherwise)."""
        with translated_errors(), self._engine.connect() as connection:
            return migrations.current_revision(connection) == migrations.head_revision()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[SqlRepositories]:
        """One unit of work, committed at the end of the block, rolled back on any exception.
        ``read_only``: see ``Database.transaction``."""
        sessions = self._read_sessions if read_only else self._sessions
        with contextlib.ExitStack() as stack:
            gate = None if read_only else self._writer_gate
            if gate is not None:
                if not gate.acquire(timeout=self._lock_timeout):
                    raise DatabaseUnavailable("the database stayed locked")
                stack.callback(gate.release)
            with translated_errors(), sessions.begin() as session:
                yield SqlRepositories(session)
                if not session.is_active:
                    # The block caught a StorageError from a failed write and carried on.
                    # SQLAlchemy already rolled everything back and would end the block
                    # silently; the caller must not believe its earlier writes were committed.
                    raise StorageError("the transaction was rolled back after an earlier error")

    def close(self) -> None:
        self._engine.dispose()


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """``current``: the database's revision (None: never migrated); ``head``: this code's
    newest; ``pending``: (revision, description) of each migration to run, oldest first."""

    current: str | None
    head: str | None
    pending: tuple[tuple[str, str], ...]


def _known_revision(connection: Connection) -> str | None:
    """The database's revision, if this code knows it. A newer Sealdrop's schema is refused
    before anything runs: this code would read its tables wrongly, and its migrations (or a
    server writing rows the newer code does not expect) could damage data it cannot see."""
    current = migrations.current_revision(connection)
    if current is not None and not migrations.is_known(current):
        raise SchemaTooNew(current, migrations.head_revision())
    return current


def _sqlite_engine(url: URL, lock_timeout: float) -> Engine:
    if url.database and url.database != ":memory:" and "uri" not in url.query:
        # SQLite would create the file (and then its -wal and -shm, which copy its mode) with the
        # umask's permissions, often world-readable; lookup ids link a source's visits.
        try:
            os.close(os.open(url.database, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot open the database file: {exc.strerror}") from exc
    # hide_parameters: lookup ids and sealed identities must never reach a log line or an
    # exception message.
    in_memory = not url.database or url.database == ":memory:" or "mode=memory" in url.database
    # An in-memory database (tests) lives in one connection per thread: SQLAlchemy's own pool.
    pool: dict[str, Any] = (
        {} if in_memory else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_OVERFLOW}
    )
    engine = create_engine(url, hide_parameters=True, **pool)
    busy_ms = int(lock_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); pysqlite's own handling would leave SELECTs outside
        # any transaction and commit before DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Off by default in SQLite: without it ON DELETE CASCADE silently does nothing and a
            # deleted source would leave its submissions and sessions behind.
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            # WAL: readers do not block the writer. synchronous=FULL: a commit survives power
            # loss, not only kill -9 (invariant 9: an accepted submission is never lost).
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            # Overwrite deleted rows (sessions, sources) instead of leaving them in free pages.
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout). A deferred
        # transaction that reads and then writes fails at once with SQLITE_BUSY, without waiting,
        # when another writer committed meanwhile. Serialising writers is slower (SQLite is for
        # small instances), but a transaction never fails half-way because of a concurrent one.
        # A read-only transaction never writes, so it can be deferred: under WAL it reads a
        # snapshot without taking the write lock, and pages that only read stop queueing
        # behind uploads and logins. "query_only" makes a stray write fail instead of upgrading.
        read_only = bool(connection.get_execution_options().get(_READ_ONLY))
        # The pragma outlives the transaction on its connection: set it only when it changes
        # (one statement fewer per transaction; a page runs a few).
        if connection.info.get(_READ_ONLY) is not read_only:
            connection.exec_driver_sql(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
            connection.info[_READ_ONLY] = read_only
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, lock_timeout: float, connect_timeout: int) -> Engine:
    lock_ms = int(lock_timeout * 1000)
    return create_engine(
        url,
        hide_parameters=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_POOL_OVERFLOW,
        pool_pre_ping=True,  # survive a server restart without failing the next request
        connect_args={
            "connect_timeout": connect_timeout,
            # A stuck transaction holding a row lock must not hang every request behind it.
            "options": f"-c lock_timeout={lock_ms}",
        },
    )
