"""Source sessions that name no source; a session epoch per source.

Revision ID: 0004
Revises: 0003

A ``source_sessions`` row used to carry ``source_id`` next to its ``created_at`` and
``last_seen_at`` (in seconds): a seized database showed, per source, when it was active. The
source id now travels inside the sealed value, whose key only the cookie holds, so a row names no
source (invariant 6; docs/design.md, section 3, Sessions, and R3).

- ``source_sessions`` is dropped and created again without ``source_id`` (its foreign key and
  index go with it), and on SQLite WITHOUT ROWID, so that the rows' storage order is that of
  their random ``id_hash``, not the order of insertion. **Every existing session ends**: its
  sealed value does not hold a source id, so it could not be resolved any more. Sources simply
  log in again with their codename; a source who had just started and not yet confirmed its
  codename starts over or logs in. Dropping the table is safe on SQLite as on PostgreSQL: no
  table references it, so nothing can cascade from it (unlike ``sources``, see 0002).
- ``sources.session_epoch``: random bytes that every codename login replaces, ending the
  source's other sessions. Added in place, NULL for existing sources until their next login.

Downgrading drops the epoch (SQLite 3.35 or newer, as for 0003) and recreates the old
``source_sessions``, empty: sessions end again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.drop_index("ix_source_sessions_source_id", table_name="source_sessions")
    op.drop_table("source_sessions")
    op.create_table(
        "source_sessions",
        sa.Column("id_hash", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_identity", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_source_sessions"),
        sqlite_with_rowid=False,
    )
    op.add_column("sources", sa.Column("session_epoch", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # Older SQLite cannot drop a column in place, and recreating ``sources`` would cascade
        # (see 0002's docstring).
        raise RuntimeError("downgrading below 0004 needs SQLite 3.35 or newer")
    op.drop_column("sources", "session_epoch")
    op.drop_table("source_sessions")
    op.create_table(
        "source_sessions",
        sa.Column("id_hash", sa.LargeBinary(), nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("sealed_identity", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_source_sessions"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_sessions_source_id_sources",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_source_sessions_source_id", "source_sessions", ["source_id"])
