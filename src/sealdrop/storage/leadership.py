"""Which worker does the instance's housekeeping: a PostgreSQL advisory lock.

Several ``sealdrop serve`` processes may share one PostgreSQL database (docs/operator.md,
"Several workers"). Housekeeping, retention and the notice sender must run on exactly one of
them at a time: two retention runs would race over the same rows, and two senders would at best
do the same work twice. The one that runs them holds a *session-level* advisory lock on a
connection of its own, outside the pool, for as long as it lives:

- PostgreSQL releases a session lock when the session ends, so a holder that dies (kill -9,
  power cut, a host gone) frees it as soon as the server notices the connection is gone; the
  next worker to ask takes over. Nothing is stored about who held it.
- Before each round the holder checks its connection (``held``). A connection found broken means
  the lock may already be someone else's: the round is skipped and the lock is asked for again
  on a new connection. So two workers never both act on one lock after a failure noticed by both.

On SQLite there is nothing to share: one server holds the instance (the instance lock), and
``held`` is always true.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger("sealdrop.leadership")

# The lock's key: one 64-bit number per instance database ("sealdrop" in ASCII). Advisory locks
# are per database, so two instances on one PostgreSQL server never share it.
HOUSEKEEPING_LOCK = 0x7365616C64726F70


class Leadership:
    """``held()`` says whether this process may run the instance's housekeeping now."""

    def __init__(self, engine: Engine, key: int = HOUSEKEEPING_LOCK) -> None:
        self._shared = engine.dialect.name == "postgresql"
        self._key = key
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        # Its own engine without a pool: the lock lives exactly as long as this one connection,
        # never returned to a pool where another thread could use (or reset) it.
        self._engine: Engine | None = (
            create_engine(
                engine.url,
                poolclass=NullPool,
                hide_parameters=True,
                # Keepalives: a holder whose host vanished (no FIN sent) is found dead by the
                # database within about a minute, and its lock freed, instead of after hours.
                connect_args={
                    "connect_timeout": 5,
                    "keepalives": 1,
                    "keepalives_idle": 30,
                    "keepalives_interval": 10,
                    "keepalives_count": 3,
                },
            )
            if self._shared
            else None
        )

    @property
    def shared(self) -> bool:
        """Whether the database is shared by several workers (PostgreSQL)."""
        return self._shared

    def held(self) -> bool:
        """Whether this process holds the lock now: asks for it if not (never waits)."""
        if self._engine is None:
            return True
        with self._lock:
            if self._connection is not None:
                try:
                    # A round trip: a connection PostgreSQL has dropped (and with it the lock)
                    # fails here instead of letting this worker go on as if it held the lock.
                    self._connection.execute(text("SELECT 1"))
                    self._connection.commit()
                    return True
                except SQLAlchemyError:
                    log.warning("lost the housekeeping lock's connection; asking again")
                    self._drop()
            try:
                connection = self._engine.connect()
            except SQLAlchemyError:
                return False
            try:
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar_one()
                # The lock is the session's, not the transaction's: end the implicit
                # transaction so the connection does not sit "idle in transaction".
                connection.commit()
            except SQLAlchemyError:
                connection.close()
                return False
            if not got:
                connection.close()
                return False
            self._connection = connection
            log.info("this worker runs the instance's housekeeping")
            return True

    def release(self) -> None:
        """Give the lock up (at shutdown), so another worker takes over at its next round."""
        with self._lock:
            self._drop()
        if self._engine is not None:
            self._engine.dispose()

    def _drop(self) -> None:
        if self._connection is not None:
            # Closing the session releases its advisory locks; an explicit unlock would add
            # nothing and could fail on a broken connection.
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None
