"""Translate SQLAlchemy's exceptions into Sealdrop's error tree, without leaking stored values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sealdrop.errors import DatabaseUnavailable, StorageError


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise database failures as ``DatabaseUnavailable`` or ``StorageError``."""
    try:
        yield
    except IntegrityError as exc:
        # PostgreSQL's message quotes the offending row ("DETAIL: Key (lookup_id)=(\x…) already
        # exists"), and a lookup id ties a source's logins together. Keep only the constraint name
        # and drop the chained driver error, so that no log line or traceback carries the value.
        raise StorageError(f"constraint violated: {_constraint_name(exc)}") from None
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeout) as exc:
        # Bound parameters are hidden from this text by the engine's hide_parameters=True.
        raise DatabaseUnavailable("the database cannot be reached or stayed locked") from exc
    except DBAPIError as exc:
        raise StorageError("database error") from exc
    except PendingRollbackError:
        # The block caught an earlier StorageError and carried on; its writes are already gone.
        raise StorageError("the transaction was rolled back after an earlier error") from None


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)  # psycopg
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    if isinstance(exc.orig, sqlite3.IntegrityError):
        # SQLite names the columns ("UNIQUE constraint failed: sources.lookup_id"), never values.
        return str(exc.orig)
    return "unknown"
