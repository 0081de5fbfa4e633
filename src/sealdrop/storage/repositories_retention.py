"""SQLAlchemy repository for retention: the dated facts the rules read.

Only what is already stored is read: arrival days of submissions and replies, and a source's
creation day. Nothing here writes; deleting goes through the sources, submissions and replies
repositories, which remove the derived rows (seen marks; labels, assignee and hold by cascade).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from sealdrop.ids import BlobKey, SourceId
from sealdrop.storage.interfaces import DatedItem, SourceActivity
from sealdrop.storage.models import Reply, Source, Submission


class SqlRetentionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def submissions_on_or_before(self, day: dt.date) -> list[DatedItem]:
        stmt = select(
            Submission.id, Submission.source_id, Submission.arrival_day, Submission.blob_key
        ).where(Submission.arrival_day <= day)
        return _dated(self._session.execute(stmt))

    def replies_on_or_before(self, day: dt.date) -> list[DatedItem]:
        stmt = select(Reply.id, Reply.source_id, Reply.arrival_day, Reply.blob_key).where(
            Reply.arrival_day <= day
        )
        return _dated(self._session.execute(stmt))

    def undated_items(self) -> int:
        """Submissions and replies stored without a day (arrival granularity "none")."""
        total = 0
        for table in (Submission, Reply):
            stmt = select(func.count()).select_from(table).where(table.arrival_day.is_(None))
            total += int(self._session.execute(stmt).scalar_one())
        return total

    def activity(self, source_ids: Sequence[SourceId] | None = None) -> list[SourceActivity]:
        # The newest submission by sequence number, not the greatest day: submissions stored
        # without a day may be newer than dated ones, and then the source cannot be dated.
        newest = (
            select(Submission.arrival_day)
            .where(Submission.source_id == Source.id)
            .order_by(Submission.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        has_submission = exists().where(Submission.source_id == Source.id)
        stmt = select(Source.id, Source.created_day, has_submission, newest)
        if source_ids is not None:
            stmt = stmt.where(Source.id.in_(list(source_ids)))
        return [
            SourceActivity(SourceId(sid), created, bool(sent), newest_day)
            for sid, created, sent, newest_day in self._session.execute(stmt)
        ]


def _dated(rows: Iterable[tuple[str, str, dt.date | None, str]]) -> list[DatedItem]:
    # The WHERE clause already left out rows without a day (NULL compares as unknown).
    return [
        DatedItem(item_id, SourceId(source_id), day, BlobKey(blob_key))
        for item_id, source_id, day, blob_key in rows
        if day is not None
    ]
