"""Limits shared by several workers: the login budgets and the sources' daily upload allowance.

Revision ID: 0008
Revises: 0007

Two new tables; no existing table changes.

- ``login_budgets``: one row per login budget ("source", "api"): a token bucket (tokens left and
  when they were counted, in seconds of the database server's clock) that every worker takes
  from in one transaction, so the budget per minute holds for the whole instance.
- ``upload_allowances``: per source and UTC day, the bytes its uploads stored or set aside that
  day. The row goes with its source (ON DELETE CASCADE) and is deleted once its day is over.

Only PostgreSQL instances use them (on SQLite one process holds these counts in memory). On
PostgreSQL they are UNLOGGED: not written to the write-ahead log, so not kept in WAL archives
or replicas, and emptied after a crash, like the in-memory counts after a restart.

Downgrading drops both tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "login_budgets",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("counted_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_login_budgets"),
        prefixes=unlogged,
    )
    op.create_table(
        "upload_allowances",
        sa.Column("source_id", ID, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "day", name="pk_upload_allowances"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_upload_allowances_source_id_sources",
            ondelete="CASCADE",
        ),
        prefixes=unlogged,
    )


def downgrade() -> None:
    op.drop_table("upload_allowances")
    op.drop_table("login_budgets")
