"""Content digests that name their algorithm: ``submissions.digest`` and ``replies.digest``.

Revision ID: 0009
Revises: 0008

The hex SHA-256 of each blob (``sha256``, 64 characters) becomes ``digest``, "ALGORITHM:HEX"
(``sealdrop.digests``; up to 80 characters): existing values get the prefix ``sha256:``, values
'' (rows older than 0003, never hashed) stay ''. Blobs stored from now on are hashed with BLAKE3
(``blake3:``), a quarter of SHA-256's CPU per byte in an upload; the old digests stay valid, each
checked with the algorithm it names. No blob is read.

In place on both engines: a new column, filled from the old one, which is then dropped. Like
0002 and 0003, nothing is rebuilt on SQLite ("move and copy" of ``submissions`` would cascade its
DROP to the children of the rows), so SQLite 3.35 or newer is needed to drop the old column, in
both directions.

Downgrading gives ``sha256`` back from digests that are SHA-256 ones; a BLAKE3 digest cannot be
turned into a SHA-256 one without reading the blob, so those rows get '' (an older Sealdrop then
serves them without a digest, as it would serve rows older than 0003).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("submissions", "replies")
_PREFIX = "sha256:"


def _need_drop_column(direction: str) -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # Older SQLite cannot drop a column in place, and rebuilding submissions would cascade.
        raise RuntimeError(f"{direction} 0009 needs SQLite 3.35 or newer")


def upgrade() -> None:
    _need_drop_column("upgrading to")
    for table in _TABLES:
        op.add_column(table, sa.Column("digest", sa.String(80), server_default="", nullable=False))
        rows = sa.table(table, sa.column("sha256", sa.String), sa.column("digest", sa.String))
        op.execute(
            rows.update()
            .where(rows.c.sha256 != "")
            .values(digest=sa.literal(_PREFIX) + rows.c.sha256)
        )
        op.drop_column(table, "sha256")


def downgrade() -> None:
    _need_drop_column("downgrading from")
    for table in _TABLES:
        op.add_column(table, sa.Column("sha256", sa.String(64), server_default="", nullable=False))
        rows = sa.table(table, sa.column("sha256", sa.String), sa.column("digest", sa.String))
        op.execute(
            rows.update()
            .where(rows.c.digest.startswith(_PREFIX, autoescape=True))
            .values(sha256=sa.func.substr(rows.c.digest, len(_PREFIX) + 1))
        )
        op.drop_column(table, "digest")
