"""A consistent copy of the database while the server keeps writing to it, and loading it back.

Used by ``sealdrop backup`` and ``sealdrop restore`` (``services/backup.py``). Two steps, because
the blobs are copied between them: ``open_snapshot`` freezes the database's state and lists the
blobs its rows name; ``Snapshot.finish`` then writes that same state out, leaving out rows whose
blob was deleted meanwhile where the backend allows it (see ``finish``).

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies the live file into an
  in-memory database in one step, under a read transaction, so it sees one committed state even
  while the server commits (WAL: it blocks no writer). Nothing is written to disk on the way; an
  SQLite instance is small by design (docs/operator.md), so holding its database in memory once
  is the price of leaving no copy of it behind.
- PostgreSQL: a REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot``), lists
  the blobs in it, and stays open while the blobs are copied; ``pg_dump --snapshot`` then dumps
  exactly that state. The dump (plain SQL, which stock ``psql`` loads) is spooled to an unnamed
  temporary file in the instance folder: it has no name, so nothing is left even after a crash.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, Protocol

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import NullPool, create_engine, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from sealdrop.errors import ConfigError, DatabaseUnavailable, StorageError
from sealdrop.storage import migrations

__all__ = [
    "BLOB_TABLES",
    "Snapshot",
    "known_revision",
    "load_postgres_dump",
    "open_snapshot",
    "postgres_is_empty",
    "postgres_tool",
]

# Every row that names a blob. A new table with a blob_key column must be added here (a test
# compares this with models.py).
BLOB_TABLES = ("submissions", "replies")
_BLOB_KEYS = "SELECT blob_key FROM submissions UNION ALL SELECT blob_key FROM replies"
_WITHDRAW = (
    "DELETE FROM submissions WHERE blob_key = ?",
    "DELETE FROM replies WHERE blob_key = ?",
)


class Snapshot(Protocol):
    backend: str
    revision: str | None
    blob_keys: frozenset[str]

    def finish(self, withdrawn: Collection[str], spool_dir: Path) -> tuple[BinaryIO, int]:
        """The database as it was when the snapshot was taken, as a stream and its size.

        ``withdrawn``: blobs deleted since the snapshot (their rows were deleted first, after
        the snapshot). SQLite drops those rows from the copy; PostgreSQL's dump cannot be
        edited, so ``restore`` deletes them after loading it (the manifest lists them).
        """
        ...

    def close(self) -> None: ...


def open_snapshot(database_url: str) -> Snapshot:
    url = _parse(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or "mode=memory" in url.database:
            raise ConfigError("an in-memory SQLite database cannot be backed up")
        return _SqliteSnapshot(Path(url.database))
    if backend == "postgresql":
        return _PostgresSnapshot(url)
    raise ConfigError(f"unsupported database backend {backend!r}")


class _SqliteSnapshot:
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise DatabaseUnavailable(f"no database file at {path}")
        self._copy = sqlite3.connect(":memory:", isolation_level=None)
        try:
            live = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                # pages=-1 (the default): the whole file in one step, under one read lock, so
                # the copy is a single committed state.
                live.backup(self._copy)
            finally:
                live.close()
            # Rows deleted from the copy are overwritten, not left in free pages.
            self._copy.execute("PRAGMA secure_delete = ON")
            self._copy.execute("PRAGMA foreign_keys = ON")
            self.revision = _sqlite_revision(self._copy)
            rows = self._copy.execute(_BLOB_KEYS).fetchall()
        except sqlite3.Error as exc:
            self._copy.close()
            raise DatabaseUnavailable(f"cannot copy the SQLite database: {exc}") from None
        self.blob_keys = frozenset(str(key) for (key,) in rows)

    def finish(self, withdrawn: Collection[str], spool_dir: Path) -> tuple[BinaryIO, int]:
        keys = sorted(withdrawn)
        for statement in _WITHDRAW:
            # Cascades remove what hangs off the row (seen marks), as the deletion itself did.
            self._copy.executemany(statement, [(k,) for k in keys])
        data = self._copy.serialize()
        return io.BytesIO(data), len(data)

    def close(self) -> None:
        self._copy.close()


def _sqlite_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


class _PostgresSnapshot:
    backend = "postgresql"

    def __init__(self, url: URL) -> None:
        self._url = url
        self._engine = _postgres_engine(url)
        try:
            self._connection = self._engine.connect().execution_options(
                isolation_level="REPEATABLE READ"
            )
            self._connection.begin()
            self._connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            # Valid while this transaction stays open: until finish() has run pg_dump.
            self._snapshot = str(
                self._connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            )
            self.revision = _postgres_revision(self._connection)
            rows = self._connection.exec_driver_sql(_BLOB_KEYS).fetchall()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise DatabaseUnavailable(
                f"cannot read the PostgreSQL database: {_reason(exc)}"
            ) from None
        self.blob_keys = frozenset(str(key) for (key,) in rows)

    def finish(self, withdrawn: Collection[str], spool_dir: Path) -> tuple[BinaryIO, int]:
        conninfo, env = _libpq(self._url)
        # No name in the folder at any time (O_TMPFILE or unlinked at once), 0600, and on the
        # instance's own disk: never in a shared /tmp.
        spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - returned to the caller
        command = [
            postgres_tool("pg_dump"),
            f"--snapshot={self._snapshot}",
            "--format=plain",
            # The restored database may belong to another role on another server.
            "--no-owner",
            "--no-privileges",
            f"--dbname={conninfo}",
        ]
        result = subprocess.run(command, stdout=spool, stderr=subprocess.PIPE, env=env, check=False)
        if result.returncode != 0:
            spool.close()
            raise StorageError(f"pg_dump failed: {_last_line(result.stderr)}")
        size = spool.seek(0, os.SEEK_END)
        spool.seek(0)
        return spool, size

    def close(self) -> None:
        try:
            self._connection.close()
        finally:
            self._engine.dispose()


def _postgres_revision(connection: Connection) -> str | None:
    present = connection.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar()
    if present is None:
        return None
    value = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if value is None else str(value)


def postgres_is_empty(database_url: str) -> bool:
    """Whether the PostgreSQL database holds no table of its own (a safe restore target)."""
    engine = _postgres_engine(_parse(database_url))
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN "
                    "('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"cannot reach the PostgreSQL database: {_reason(exc)}") from None
    finally:
        engine.dispose()
    return int(count) == 0


def load_postgres_dump(database_url: str, dump: Path) -> None:
    """Load a plain SQL dump with stock ``psql``, all or nothing (one transaction)."""
    conninfo, env = _libpq(_parse(database_url))
    command = [
        postgres_tool("psql"),
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={conninfo}",
        f"--file={dump}",
    ]
    result = subprocess.run(command, capture_output=True, env=env, check=False)
    if result.returncode != 0:
        raise StorageError(f"psql could not load the dump: {_last_line(result.stderr)}")


def postgres_tool(name: str) -> str:
    """``pg_dump`` or ``psql``: on PATH (Debian's postgresql-client), else the newest one under
    /usr/lib/postgresql/*/bin (where Debian's server package puts them)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(v) if (v := Path(p).parts[-3]).isdigit() else 0,
    )
    if not candidates:
        raise ConfigError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return candidates[-1]


def _parse(database_url: str) -> URL:
    try:
        return make_url(database_url)
    except ArgumentError:
        raise ConfigError("the database URL does not parse") from None  # never echo: a password


def _postgres_engine(url: URL) -> Engine:
    return create_engine(
        url.set(drivername="postgresql+psycopg"),
        poolclass=NullPool,
        hide_parameters=True,
        connect_args={"connect_timeout": 10},
    )


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump/psql without the password, and an environment carrying it: a
    command line is visible to every local user (ps), the environment is not."""
    env = dict(os.environ)  # PG* variables apply as they do to the server's own connections
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    bare = url.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


def _reason(exc: SQLAlchemyError) -> str:
    # The driver's own message, first line: never SQLAlchemy's rendering, which may quote the URL.
    original = getattr(exc, "orig", None)
    return _last_line(str(original or type(exc).__name__).encode())


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def known_revision(revision: str | None) -> bool:
    """Whether ``revision`` is a migration this version of Sealdrop ships (a database made by a
    newer version is not: its schema may hold what this code cannot read)."""
    if revision is None:
        return False
    script = ScriptDirectory.from_config(migrations.alembic_config())
    try:
        return script.get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False
