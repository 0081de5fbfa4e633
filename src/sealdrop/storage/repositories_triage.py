"""SQLAlchemy repository for triage: sources' assignees, labels and holds.

All go with their source by ON DELETE CASCADE, and an assignment with its account. A change is
a DELETE then an INSERT in the caller's transaction, so a reader never sees half of one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sealdrop.ids import SourceId, UserId
from sealdrop.storage.models import SourceAssignee, SourceHold, SourceLabel
from sealdrop.storage.sqlerrors import translated_errors
from sealdrop.storage.sqlhelpers import chunks, execute_dml


class SqlTriageRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def assignees(self, source_ids: Sequence[SourceId]) -> dict[SourceId, UserId]:
        found: dict[SourceId, UserId] = {}
        for chunk in chunks(list(dict.fromkeys(source_ids))):
            stmt = select(SourceAssignee.source_id, SourceAssignee.user_id).where(
                SourceAssignee.source_id.in_(list(chunk))
            )
            for source_id, user_id in self._session.execute(stmt):
                found[SourceId(source_id)] = UserId(user_id)
        return found

    def assign(self, source_id: SourceId, user_id: UserId | None) -> None:
        stmt = delete(SourceAssignee).where(SourceAssignee.source_id == source_id)
        execute_dml(self._session, stmt)
        if user_id is not None:
            with translated_errors():
                self._session.execute(
                    insert(SourceAssignee).values(source_id=source_id, user_id=user_id)
                )

    def labels(self, source_ids: Sequence[SourceId]) -> dict[SourceId, list[str]]:
        found: dict[SourceId, list[str]] = {s: [] for s in source_ids}
        for chunk in chunks(list(found)):
            stmt = select(SourceLabel.source_id, SourceLabel.label).where(
                SourceLabel.source_id.in_(list(chunk))
            )
            for source_id, label in self._session.execute(stmt):
                found[SourceId(source_id)].append(label)
        # Sorted here, not by the database: collations differ between backends.
        return {s: sorted(labels, key=lambda x: (x.casefold(), x)) for s, labels in found.items()}

    def replace_labels(self, source_id: SourceId, labels: Sequence[str]) -> None:
        execute_dml(self._session, delete(SourceLabel).where(SourceLabel.source_id == source_id))
        if labels:
            rows = [{"source_id": source_id, "folded": x.casefold(), "label": x} for x in labels]
            with translated_errors():
                self._session.execute(insert(SourceLabel), rows)

    def held(self, source_ids: Sequence[SourceId]) -> set[SourceId]:
        found: set[SourceId] = set()
        for chunk in chunks(list(dict.fromkeys(source_ids))):
            stmt = select(SourceHold.source_id).where(SourceHold.source_id.in_(list(chunk)))
            found.update(SourceId(s) for s in self._session.scalars(stmt))
        return found

    def all_held(self) -> set[SourceId]:
        return {SourceId(s) for s in self._session.scalars(select(SourceHold.source_id))}

    def set_hold(self, source_id: SourceId, hold: bool) -> None:
        execute_dml(self._session, delete(SourceHold).where(SourceHold.source_id == source_id))
        if hold:
            with translated_errors():
                self._session.execute(insert(SourceHold).values(source_id=source_id))
