"""Replies, source pseudonyms and pending sources, confirmed sessions.

Revision ID: 0002
Revises: 0001

- ``sources.pseudonym``: existing rows get '' (they were created before pseudonyms existed).
- ``sources.pending_since``: NULL for existing rows, i.e. "active": a source created before this
  revision is never purged as pending, and no creation time is invented for it.
- ``replies``: journalist replies; ``seq`` comes from ``sources.last_seq`` like a submission's.
- ``source_sessions.confirmed``: existing sessions were opened by a codename login, so true.

No batch ("move and copy") operation on SQLite, on purpose. Recreating ``sources`` drops the old
table, and with ``PRAGMA foreign_keys = ON`` (set on every connection, and impossible to switch
off inside the transaction the migration runs in) SQLite's DROP TABLE first deletes every row,
which cascades to every submission and session: the data would be silently lost. SQLite adds a
column with a constant default in place, and drops a plain column in place since 3.35.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.add_column(
        "sources", sa.Column("pseudonym", sa.String(100), server_default="", nullable=False)
    )
    op.add_column("sources", sa.Column("pending_since", sa.BigInteger(), nullable=True))

    op.create_table(
        "replies",
        sa.Column("id", ID, nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("arrival_day", sa.Date(), nullable=True),
        sa.Column("blob_key", ID, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replies"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_replies_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("blob_key", name="uq_replies_blob_key"),
        sa.UniqueConstraint("source_id", "seq", name="uq_replies_source_id_seq"),
    )
    op.create_index("ix_replies_source_id", "replies", ["source_id"])

    op.add_column(
        "source_sessions",
        sa.Column("confirmed", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # Older SQLite cannot drop a column in place, and recreating ``sources`` would cascade
        # (see the module docstring).
        raise RuntimeError("downgrading below 0002 needs SQLite 3.35 or newer")
    op.drop_column("source_sessions", "confirmed")
    op.drop_index("ix_replies_source_id", table_name="replies")
    op.drop_table("replies")
    op.drop_column("sources", "pending_since")
    op.drop_column("sources", "pseudonym")
