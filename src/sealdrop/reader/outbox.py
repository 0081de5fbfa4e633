"""Replies waiting to reach the server, kept in the reader's local database.

A reply is sealed (age) to the source's key, every journalist device's key known at the last sync
and this device's own key *before* it is queued, so the outbox holds ciphertext only, like the
rest of the local copy: a reply written while the server is unreachable is as safe at rest as a
synced one, and this device can still show it. It goes out at the next sync.

States: ``queued`` (waiting for the server), ``sending`` (claimed by one sync: the web
interface's and a `sealdrop reader sync` in a terminal never send the same reply both; a claim
older than ``STALE_CLAIM`` seconds means that upload was cut short, and it is sent again),
``failed`` (the server refused it: the page offers to retry or discard). An upload cut short after
the server stored it can be sent twice; the journalist sees both and can delete one, which is
better than a reply silently lost.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum

from sealdrop.reader.store import Store

__all__ = ["STALE_CLAIM", "Outbox", "QueuedReply", "ReplyState"]

STALE_CLAIM = 600  # seconds: no upload of a reply takes this long

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id         TEXT PRIMARY KEY,
    source_id  TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    ciphertext BLOB NOT NULL,
    created    INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'failed')),
    claimed    INTEGER,
    error      TEXT
);
CREATE TABLE IF NOT EXISTS reply_keys (
    key TEXT PRIMARY KEY
);
"""


class ReplyState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    FAILED = "failed"


@dataclass(frozen=True)
class QueuedReply:
    id: str
    source_id: str
    ciphertext: bytes
    created: int  # seconds since the epoch (local only: the server never sees it)
    state: ReplyState
    error: str | None


class Outbox:
    """The ``outbox`` and ``reply_keys`` tables of ``store``'s database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.db
        self._db.executescript(SCHEMA)

    def add(self, source_id: str, ciphertext: bytes) -> QueuedReply:
        entry = QueuedReply(
            secrets.token_hex(16), source_id, ciphertext, int(time.time()), ReplyState.QUEUED, None
        )
        self._db.execute(
            "INSERT INTO outbox (id, source_id, ciphertext, created, state, error)"
            " VALUES (?, ?, ?, ?, ?, NULL)",
            (entry.id, entry.source_id, entry.ciphertext, entry.created, entry.state.value),
        )
        return entry

    def get(self, reply_id: str) -> QueuedReply | None:
        row = self._db.execute("SELECT * FROM outbox WHERE id = ?", (reply_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self, source_id: str | None = None) -> list[QueuedReply]:
        """Every reply not sent yet (of one source, or all), oldest first."""
        if source_id is None:
            rows = self._db.execute("SELECT * FROM outbox ORDER BY created, rowid")
        else:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE source_id = ? ORDER BY created, rowid", (source_id,)
            )
        return [_entry(row) for row in rows]

    def to_send(self) -> list[QueuedReply]:
        """The replies a sync may send: queued ones, and any whose claim went stale."""
        return [e for e in self.entries() if e.state is not ReplyState.FAILED]

    def claim(self, reply_id: str, now: float | None = None) -> bool:
        """Mark the reply ``sending`` for this sync; False if another sync holds it (or it was
        sent, discarded or refused meanwhile). One UPDATE: SQLite makes it atomic across
        processes."""
        moment = int(time.time() if now is None else now)
        done = self._db.execute(
            "UPDATE outbox SET state = 'sending', claimed = ?, error = NULL WHERE id = ?"
            " AND (state = 'queued' OR (state = 'sending' AND claimed < ?))",
            (moment, reply_id, moment - STALE_CLAIM),
        )
        return done.rowcount == 1

    def set_state(self, reply_id: str, state: ReplyState, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE outbox SET state = ?, error = ?, claimed = NULL WHERE id = ?",
            (state.value, error, reply_id),
        )

    def remove(self, reply_id: str) -> None:
        self._db.execute("DELETE FROM outbox WHERE id = ?", (reply_id,))

    # -- the keys a reply is sealed to when the server cannot be asked ----------------------

    def remember_keys(self, keys: list[str]) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM reply_keys")
            db.executemany("INSERT OR IGNORE INTO reply_keys VALUES (?)", [(k,) for k in keys])

    def keys(self) -> list[str]:
        return [row["key"] for row in self._db.execute("SELECT key FROM reply_keys ORDER BY key")]


def _entry(row: sqlite3.Row) -> QueuedReply:
    return QueuedReply(
        id=row["id"],
        source_id=row["source_id"],
        ciphertext=bytes(row["ciphertext"]),
        created=int(row["created"]),
        state=ReplyState(row["state"]),
        error=row["error"],
    )
