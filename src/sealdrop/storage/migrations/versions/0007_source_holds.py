"""Retention: sources a journalist has put on hold.

Revision ID: 0007
Revises: 0006

One new table; no existing table changes, so nothing is rebuilt and no existing row is touched.

- ``source_holds``: one row per source on hold (none for a source not on hold, as every existing
  source is), which exempts it and its items from the retention rules. Not a column of
  ``sources``, for the reason 0005 gives: ``sources`` is never rebuilt on SQLite, as its DROP
  would cascade to every submission and reply. The row goes with its source (ON DELETE CASCADE).
  It stores no time and no account: only that the source is on hold (the audit trail says who
  set it, on which day).

Downgrading drops the table (holds are lost; the next retention run may then delete sources
that were on hold).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "source_holds",
        sa.Column("source_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("source_id", name="pk_source_holds"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_holds_source_id_sources",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("source_holds")
