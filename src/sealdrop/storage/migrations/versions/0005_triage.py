"""Triage: who a source is assigned to, and its labels.

Revision ID: 0005
Revises: 0004

Two new tables; no existing table changes, so nothing is rebuilt and no existing row is touched.

- ``source_assignees``: one row per assigned source (none for a source assigned to nobody, as
  every existing source is). Not a column of ``sources``: on SQLite a foreign-key column can only
  be added by rebuilding ``sources``, whose DROP cascades to every submission and reply (see
  0002's docstring), or inline in ADD COLUMN, which SQLAlchemy and Alembic cannot reflect. The
  row goes with its source and with its account (ON DELETE CASCADE both ways): deleting an
  account leaves its sources assigned to nobody.
- ``source_labels``: one row per label of a source, keyed by the source and the label
  case-folded (labels are unique per source whatever their case); the rows go with their source.

Downgrading drops both tables (assignments and labels are lost; conversations stay).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "source_assignees",
        sa.Column("source_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("source_id", name="pk_source_assignees"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_assignees_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_source_assignees_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_source_assignees_user_id", "source_assignees", ["user_id"])
    op.create_table(
        "source_labels",
        sa.Column("source_id", ID, nullable=False),
        sa.Column("folded", sa.String(128), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "folded", name="pk_source_labels"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_labels_source_id_sources",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("source_labels")
    op.drop_index("ix_source_assignees_user_id", table_name="source_assignees")
    op.drop_table("source_assignees")
