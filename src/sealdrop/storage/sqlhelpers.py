"""Small statement helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Delete, Update, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sealdrop.errors import StorageError
from sealdrop.storage.models import Base, Counter
from sealdrop.storage.sqlerrors import translated_errors

T = TypeVar("T")

# Rows or ids per statement where a caller may pass many: below SQLite's limit of 32,766 bound
# parameters and PostgreSQL's 65,535, and small enough to keep one statement cheap to plan.
CHUNK = 1000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def flush(session: Session) -> None:
    """Flush now, so that a constraint violation raises StorageError at the call that caused it."""
    with translated_errors():
        session.flush()


def execute_dml(session: Session, stmt: Delete | Update) -> int:
    """Run a DELETE or UPDATE; return how many rows it matched."""
    # Session.execute is typed as returning a plain Result; DML without RETURNING always yields a
    # CursorResult.
    with translated_errors():
        result = cast(CursorResult[Any], session.execute(stmt))
    return result.rowcount


def next_counter_value(session: Session, name: str) -> int:
    """Advance the named counter by one and return its new value (see ``models.Counter``)."""
    stmt = (
        update(Counter)
        .where(Counter.name == name)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    with translated_errors():
        value = session.execute(stmt).scalar_one_or_none()
    if value is None:
        raise StorageError(f"counter {name!r} is missing: the database was not migrated")
    return value


def insert_ignoring_duplicates(
    session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT the rows; a row whose key already exists is skipped, not an error.

    ``ON CONFLICT DO NOTHING`` on both backends: a read-then-insert would race with a concurrent
    insert of the same key and fail with a duplicate-key error.
    """
    dialect = session.get_bind().dialect.name
    for chunk in chunks(rows, CHUNK // 4):
        values = list(chunk)
        with translated_errors():
            if dialect == "postgresql":
                session.execute(postgresql.insert(model).values(values).on_conflict_do_nothing())
            elif dialect == "sqlite":
                session.execute(sqlite.insert(model).values(values).on_conflict_do_nothing())
            else:  # pragma: no cover - SqlDatabase accepts these two backends only
                raise StorageError(f"unsupported database backend {dialect!r}")


def upsert(session: Session, model: type[Base], values: Mapping[str, Any], key: str) -> None:
    """INSERT one row, or on a conflict on ``key`` overwrite its other columns, atomically."""
    dialect = session.get_bind().dialect.name
    columns = [name for name in values if name != key]
    with translated_errors():
        if dialect == "postgresql":
            pg = postgresql.insert(model).values(dict(values))
            pg_set = {name: pg.excluded[name] for name in columns}
            session.execute(pg.on_conflict_do_update(index_elements=[key], set_=pg_set))
        elif dialect == "sqlite":
            lite = sqlite.insert(model).values(dict(values))
            lite_set = {name: lite.excluded[name] for name in columns}
            session.execute(lite.on_conflict_do_update(index_elements=[key], set_=lite_set))
        else:  # pragma: no cover - SqlDatabase accepts these two backends only
            raise StorageError(f"unsupported database backend {dialect!r}")
