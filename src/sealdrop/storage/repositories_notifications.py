"""SQLAlchemy repository of where journalists' notices go and of the activity they report
(see ``models.NotificationTarget`` and services/notifier.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from sealdrop.errors import StorageError
from sealdrop.ids import UserId
from sealdrop.storage.interfaces_accounts import NotificationTargetRecord
from sealdrop.storage.models import Counter, NotificationTarget, User
from sealdrop.storage.sqlerrors import translated_errors
from sealdrop.storage.sqlhelpers import execute_dml, flush, next_counter_value

SUBMISSION_ACTIVITY = "submission_activity"
Channel = Literal["email", "apprise"]


def _target(row: NotificationTarget) -> NotificationTargetRecord:
    return NotificationTargetRecord(
        user_id=UserId(row.user_id),
        channel=cast(Channel, row.channel),
        address=row.address,
        language=row.language,
        watermark=row.watermark,
        last_slot=row.last_slot,
    )


class SqlNotificationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, user_id: UserId) -> NotificationTargetRecord | None:
        row = self._session.get(NotificationTarget, user_id)
        return None if row is None else _target(row)

    def set(self, user_id: UserId, channel: Channel, address: str, language: str) -> None:
        row = self._session.get(NotificationTarget, user_id)
        if row is None:
            self._session.add(
                NotificationTarget(
                    user_id=user_id,
                    channel=channel,
                    address=address,
                    language=language,
                    watermark=self.activity(),
                    last_slot=None,
                )
            )
        else:
            row.channel, row.address, row.language = channel, address, language
        flush(self._session)

    def remove(self, user_id: UserId) -> bool:
        stmt = delete(NotificationTarget).where(NotificationTarget.user_id == user_id)
        return execute_dml(self._session, stmt) > 0

    def note_activity(self) -> int:
        return next_counter_value(self._session, SUBMISSION_ACTIVITY)

    def activity(self) -> int:
        with translated_errors():
            value = self._session.scalar(
                select(Counter.value).where(Counter.name == SUBMISSION_ACTIVITY)
            )
        if value is None:
            raise StorageError(f"counter {SUBMISSION_ACTIVITY!r} is missing: not migrated")
        return value

    def claim_due(self, slot: int) -> Sequence[NotificationTargetRecord]:
        not_claimed = or_(
            NotificationTarget.last_slot.is_(None), NotificationTarget.last_slot < slot
        )
        rows = self._session.scalars(
            select(NotificationTarget)
            .join(User, User.id == NotificationTarget.user_id)
            .where(not_claimed, User.disabled.is_(False))
            .order_by(NotificationTarget.user_id)
        ).all()
        claimed: list[NotificationTargetRecord] = []
        for row in rows:
            record = _target(row)
            # Conditional, so that of two senders (a later multi-worker setup) only one claims.
            stmt = (
                update(NotificationTarget)
                .where(NotificationTarget.user_id == record.user_id, not_claimed)
                .values(last_slot=slot)
                .execution_options(synchronize_session=False)
            )
            if execute_dml(self._session, stmt) == 1:
                claimed.append(record)
        return claimed

    def advance_watermark(self, user_id: UserId, watermark: int) -> None:
        stmt = (
            update(NotificationTarget)
            .where(NotificationTarget.user_id == user_id, NotificationTarget.watermark < watermark)
            .values(watermark=watermark)
            .execution_options(synchronize_session=False)
        )
        execute_dml(self._session, stmt)
