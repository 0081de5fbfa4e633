"""Initial schema: sources, submissions, recipients, source_sessions.

Revision ID: 0001
Revises:

Metadata minimisation (invariant 6): no created_at/updated_at columns on sources or submissions;
at most a day, and per-source sequence numbers for order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", ID, nullable=False),
        sa.Column("lookup_id", sa.LargeBinary(), nullable=False),
        sa.Column("reply_recipient", sa.Text(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=True),
        sa.Column("last_seq", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
    )
    op.create_index("ix_sources_lookup_id", "sources", ["lookup_id"], unique=True)

    op.create_table(
        "submissions",
        sa.Column("id", ID, nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("arrival_day", sa.Date(), nullable=True),
        sa.Column("blob_key", ID, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("metadata_ciphertext", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_submissions_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("blob_key", name="uq_submissions_blob_key"),
        sa.UniqueConstraint("source_id", "seq", name="uq_submissions_source_id_seq"),
    )

    op.create_table(
        "recipients",
        sa.Column("id", ID, nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recipients"),
        sa.UniqueConstraint("public_key", name="uq_recipients_public_key"),
    )

    op.create_table(
        "source_sessions",
        sa.Column("id_hash", sa.LargeBinary(), nullable=False),
        sa.Column("source_id", ID, nullable=False),
        sa.Column("sealed_identity", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_source_sessions"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_source_sessions_source_id_sources",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_source_sessions_source_id", "source_sessions", ["source_id"])


def downgrade() -> None:
    op.drop_table("source_sessions")
    op.drop_table("recipients")
    op.drop_table("submissions")
    op.drop_index("ix_sources_lookup_id", table_name="sources")
    op.drop_table("sources")
