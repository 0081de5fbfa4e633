"""The check ``sealdrop restore`` runs on what it restored (and an operator can trust).

- the database is at a migration this version of Sealdrop knows (``serve`` migrates it forward
  from there; a newer one it could not read);
- every submission and reply row has its blob in the store, of the size the row says, with the
  content digest the row recorded, computed with the algorithm it names (``sealdrop.digests``:
  BLAKE3, or SHA-256 for blobs stored before migration 0009; rows older than 0003 have none),
  and starting with a well-formed age v1 header (``envelope.check_age_structure``).

Only the holders of the recipients' keys can prove a blob decrypts; this proves nothing was lost,
truncated or swapped between the backup and the restore.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    case,
    column,
    inspect,
    literal,
    select,
    table,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from sealdrop import digests
from sealdrop.crypto.age_header import MAX_HEADER
from sealdrop.crypto.envelope import check_age_structure
from sealdrop.errors import BackupError, BlobNotFound
from sealdrop.ids import BlobKey
from sealdrop.storage import migrations
from sealdrop.storage.blobs import BlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.snapshots import known_revision

__all__ = ["CheckReport", "check_instance"]

# Enough of a blob for its whole age header (at most age_header.MAX_HEADER, 1 MiB: hybrid stanzas
# are 1.6 KB each) and the start of its payload.
_HEAD = MAX_HEADER + 64
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CheckReport:
    migration: str
    items: int
    blob_bytes: int


def check_instance(database_url: str, store: Path | BlobStore) -> CheckReport:
    """Check a restored instance, its blobs in the folder ``store`` (the filesystem store's
    layout) or in a blob store (S3); BackupError says what is wrong (first problem, and a
    count)."""
    database = SqlDatabase(database_url)
    try:
        with database.engine.connect() as connection:
            revision = migrations.current_revision(connection)
            if not known_revision(revision):
                raise BackupError(
                    f"the restored database is at migration {revision or 'none'}, which this "
                    f"version of Sealdrop does not know (it knows up to "
                    f"{migrations.head_revision()}): restore with the version that made the backup "
                    "or a newer one"
                )
            rows = _blob_rows(connection)
    finally:
        database.close()
    problems = []
    total = 0
    for key, size, digest in rows:
        if isinstance(store, Path):
            opener = partial(_open_file, store / "blobs" / key[:2] / key)
        else:
            opener = partial(store.open, BlobKey(key))
        problem = _blob_problem(opener, size, digest)
        if problem:
            problems.append(f"blob {key}: {problem}")
        total += size
    if problems:
        raise BackupError(
            f"the restored instance failed its check: {len(problems)} of {len(rows)} items are "
            f"damaged; first: {problems[0]}"
        )
    assert revision is not None
    return CheckReport(migration=revision, items=len(rows), blob_bytes=total)


def _blob_rows(connection: Connection) -> list[tuple[str, int, str]]:
    """(blob key, size, digest) of every submission and reply, at whatever migration the
    restored database is (``serve`` migrates it later): a backup made before migration 0009 has
    the bare hex ``sha256``, read here as ``sha256:HEX`` as 0009 writes it; one from before 0003
    has no digest at all ('': size and header are still checked); before 0002, no replies."""
    schema = inspect(connection)
    tables = set(schema.get_table_names())
    selects = []
    for name in ("submissions", "replies"):
        if name not in tables:
            continue
        columns = {found["name"] for found in schema.get_columns(name)}
        kept = "digest" if "digest" in columns else "sha256" if "sha256" in columns else None
        rows = table(name, column("blob_key", String), column("size", BigInteger))
        digest: ColumnElement[str] = literal("")
        if kept is not None:
            rows.append_column(column(kept, String))
            value = rows.c[kept]
            digest = value if kept == "digest" else case((value == "", ""), else_="sha256:" + value)
        selects.append(select(rows.c.blob_key, rows.c.size, digest))
    return [(key, size, digest) for key, size, digest in connection.execute(union_all(*selects))]


def _open_file(path: Path) -> BinaryIO:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BlobNotFound(BlobKey(path.name)) from None
    return os.fdopen(fd, "rb")


def _blob_problem(opener: Callable[[], BinaryIO], size: int, digest: str) -> str | None:
    try:
        blob = opener()
    except BlobNotFound:
        return "missing"
    with blob:
        actual = blob.seek(0, io.SEEK_END)
        blob.seek(0)
        if actual != size:
            return f"{actual} bytes where the row says {size}"
        head = blob.read(_HEAD)
        problem = check_age_structure(head)
        if problem:
            return problem
        if digest:  # '' for rows older than migration 0003: never hashed
            try:
                content = digests.like(digest)
            except ValueError:
                return f"the row's digest is malformed: {digest[:80]!r}"
            content.update(head)
            while chunk := blob.read(_CHUNK):
                content.update(chunk)
            if content.text() != digest:
                return f"{content.algorithm} digest differs from the row's"
    return None
