"""Journalist accounts and the journalist API: users, their reader keys, API tokens, seen marks,
the audit log, instance settings; source versions and stars; ciphertext hashes; reply authors.

Revision ID: 0003
Revises: 0002

- ``sources.version``: a change counter for readers that sync "changes since N", drawn from the
  new ``counters`` row ``source_version``. Paging by version needs versions to be unique, so every
  existing source gets a distinct one here (1, 2, 3 … in id order: ids are random, so the order
  says nothing), and the counter starts after the last. A partial unique index (version > 0)
  enforces uniqueness among bumped sources; sources created later share 0 until their first bump.
- ``sources.starred`` false; ``submissions.sha256`` and ``replies.sha256`` '' for existing rows
  (their hashes are not computed here: that would mean reading every blob); ``replies.author_id``
  NULL (unknown), a foreign key to ``users`` that becomes NULL when the user is deleted.

Like 0002, no batch ("move and copy") operation on SQLite for ``sources`` or ``submissions``:
recreating a table that others reference with ON DELETE CASCADE drops the old copy, and the DROP
deletes every row first, cascading to every child row (see 0002's docstring). Their changes are
in-place ADD COLUMN / DROP COLUMN. ``replies`` alone is rebuilt on SQLite, to add a foreign key:
no table references replies, so nothing can cascade from it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)
SOURCE_VERSION = "source_version"


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )

    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("passphrase_hash", sa.Text(), nullable=False),
        sa.Column("totp_secret", sa.String(64), server_default="", nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )

    op.create_table(
        "user_recipients",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_recipients"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_recipients_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("public_key", name="uq_user_recipients_public_key"),
    )
    op.create_index("ix_user_recipients_user_id", "user_recipients", ["user_id"])

    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "seen",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "item_id", name="pk_seen"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_seen_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_seen_item_id", "seen", ["item_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("source_pseudonym", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )

    op.create_table(
        "instance_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_instance_settings"),
    )

    op.add_column(
        "sources", sa.Column("starred", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "sources", sa.Column("version", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "submissions", sa.Column("sha256", sa.String(64), server_default="", nullable=False)
    )
    # SQLite cannot add a table-level foreign key in place (and an inline REFERENCES, which it
    # can add, is reflected without its name and ON DELETE, so the schema would never compare
    # equal to models.py): replies is rebuilt there. That is safe for replies, and only for
    # tables like it: no other table references it, so dropping the old copy cascades nothing.
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("sha256", sa.String(64), server_default="", nullable=False))
        batch.add_column(sa.Column("author_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_replies_author_id_users", "users", ["author_id"], ["id"], ondelete="SET NULL"
        )

    last = _number_existing_sources()
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.execute(counters.insert().values(name=SOURCE_VERSION, value=last))
    op.create_index(
        "ix_sources_version",
        "sources",
        ["version"],
        unique=True,
        sqlite_where=sa.text("version > 0"),
        postgresql_where=sa.text("version > 0"),
    )


def _number_existing_sources() -> int:
    """Give every existing source a distinct version 1, 2, 3 …; return the last one given.

    Done from Python, one UPDATE per source through executemany, because a portable single
    statement would need UPDATE … FROM (SQLite 3.33+) or an O(n²) correlated count.
    """
    bind = op.get_bind()
    sources = sa.table("sources", sa.column("id", sa.String), sa.column("version", sa.BigInteger))
    ids = list(bind.execute(sa.select(sources.c.id).order_by(sources.c.id)).scalars())
    if ids:
        stmt = (
            sources.update()
            .where(sources.c.id == sa.bindparam("source_id"))
            .values(version=sa.bindparam("new_version"))
        )
        bind.execute(
            stmt, [{"source_id": id_, "new_version": n} for n, id_ in enumerate(ids, start=1)]
        )
    return len(ids)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # Older SQLite cannot drop a column in place, and recreating ``sources`` would cascade
        # (see 0002's docstring).
        raise RuntimeError("downgrading below 0003 needs SQLite 3.35 or newer")
    op.drop_index("ix_sources_version", table_name="sources")
    # The author column first: it references users. SQLite cannot drop a column that a foreign
    # key names: replies is rebuilt, safe for the reason given in upgrade().
    with op.batch_alter_table("replies") as batch:
        batch.drop_constraint("fk_replies_author_id_users", type_="foreignkey")
        batch.drop_column("author_id")
        batch.drop_column("sha256")
    op.drop_column("submissions", "sha256")
    op.drop_column("sources", "version")
    op.drop_column("sources", "starred")
    op.drop_table("instance_settings")
    op.drop_table("audit_log")
    # Children before users (on SQLite, DROP TABLE users would first delete its rows).
    op.drop_index("ix_seen_item_id", table_name="seen")
    op.drop_table("seen")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_user_recipients_user_id", table_name="user_recipients")
    op.drop_table("user_recipients")
    op.drop_table("users")
    op.drop_table("counters")
