"""Notices to journalists: where each account's go, and the activity they report.

Revision ID: 0006
Revises: 0005

- ``notification_targets``: one row per account that wants notices (its channel, address or
  Apprise URL, language), with the ``submission_activity`` value its last notice covered
  (``watermark``) and the number of the last scheduled time a notice was claimed at
  (``last_slot``). Deleting the account deletes the row.
- ``counters`` row ``submission_activity``: advanced once by every accepted submission, in the
  submission's own transaction. No other row stores its value, so it dates nothing: it only tells
  the sender whether anything arrived since an account's last notice.

It touches no table that another migration changes (it was written beside 0005, triage).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(32)
SUBMISSION_ACTIVITY = "submission_activity"


def upgrade() -> None:
    op.create_table(
        "notification_targets",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("watermark", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_slot", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_notification_targets"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_notification_targets_user_id_users",
            ondelete="CASCADE",
        ),
    )
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counters, [{"name": SUBMISSION_ACTIVITY, "value": 0}])


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM counters WHERE name = :name").bindparams(name=SUBMISSION_ACTIVITY)
    )
    op.drop_table("notification_targets")
