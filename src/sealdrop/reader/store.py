"""The reader's local database (SQLite, file mode 0600): the sync watermark, sources, items and
whether each item's ciphertext is in the cache (reader/cache.py). Nothing here decrypts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sealdrop import wire
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.client import content_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    id            TEXT PRIMARY KEY,
    pseudonym     TEXT NOT NULL,
    reply_key     TEXT NOT NULL,
    starred       INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    created_day   TEXT,
    unread        INTEGER NOT NULL,
    submissions   INTEGER NOT NULL,
    items_version INTEGER NOT NULL DEFAULT -1,
    assignee      TEXT,
    labels        TEXT NOT NULL DEFAULT '[]',
    hold          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('message', 'file', 'reply')),
    arrival_day TEXT,
    size        INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    metadata    BLOB,
    author      TEXT,
    seen        INTEGER NOT NULL,
    cache       TEXT NOT NULL DEFAULT 'missing'
                CHECK (cache IN ('missing', 'cached', 'corrupted'))
);
CREATE INDEX IF NOT EXISTS items_by_source ON items (source_id, kind, seq);
"""

# Columns added to ``sources`` after the first release, with their definitions: a local copy made
# before them gets them at its next open (see Store._upgrade).
_ADDED_SOURCE_COLUMNS = {
    "assignee": "TEXT",
    "labels": "TEXT NOT NULL DEFAULT '[]'",
    "hold": "INTEGER NOT NULL DEFAULT 0",
}
SPAM = "spam"


class CacheState(StrEnum):
    MISSING = "missing"
    CACHED = "cached"
    CORRUPTED = "corrupted"


@dataclass(frozen=True)
class LocalSource:
    id: str
    pseudonym: str
    reply_key: str
    starred: bool
    version: int
    created_day: str | None
    unread: int
    submissions: int
    items_version: int
    assignee: str | None = None  # the assigned account's username (shared triage)
    labels: tuple[str, ...] = ()  # triage labels, sorted ignoring case
    hold: bool = False  # on hold on the server: exempt from its retention rules

    @property
    def spam(self) -> bool:
        """Labelled spam (any case): hidden from the default views."""
        return any(label.casefold() == SPAM for label in self.labels)


@dataclass(frozen=True)
class LocalItem:
    id: str
    source_id: str
    seq: int
    kind: str
    arrival_day: str | None
    size: int
    digest: str
    metadata: bytes | None
    author: str | None
    seen: bool
    cache: CacheState

    @property
    def content_path(self) -> str:
        return content_path(self.kind, self.id)


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (before SQLite opens it), or tighten it."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


class Store:
    """The local DB at ``db_path``: the sync watermark, sources, items and their cache state."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(db_path)
        self._db = sqlite3.connect(db_path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        # secure_delete: deleted rows (pseudonyms, metadata ciphertext) are overwritten on disk.
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring a copy made by an older reader to this schema.

        Items' hex SHA-256 (``sha256``) became a digest naming its algorithm (``digest``, as
        the server's migration 0009 did): the column is renamed and its values prefixed, so
        the server's ``sha256:…`` for the same blob matches and what is cached stays cached.

        Columns added to ``sources``: its sources were stored without them, and an incremental
        sync would not fetch them again (their versions did not move), so the watermark and
        every source's items version are reset: the next sync lists every source once more,
        and stores its assignee and labels. Cached ciphertext stays (an item whose digest is
        unchanged keeps its cache state)."""
        item_columns = {row["name"] for row in self._db.execute("PRAGMA table_info(items)")}
        if "sha256" in item_columns:
            with self.transaction() as db:
                db.execute("ALTER TABLE items RENAME COLUMN sha256 TO digest")
                db.execute("UPDATE items SET digest = 'sha256:' || digest WHERE digest != ''")
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(sources)")}
        missing = [name for name in _ADDED_SOURCE_COLUMNS if name not in have]
        if not missing:
            return
        with self.transaction() as db:
            for name in missing:
                db.execute(f"ALTER TABLE sources ADD COLUMN {name} {_ADDED_SOURCE_COLUMNS[name]}")
            db.execute("UPDATE sources SET items_version = -1")
            db.execute("DELETE FROM state WHERE key = 'updated_since'")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- watermark -------------------------------------------------------------------------

    def watermark(self) -> int:
        return self.state("updated_since") or 0

    def set_watermark(self, value: int) -> None:
        self.set_state("updated_since", value)

    def state(self, key: str) -> int | None:
        """A number kept between runs (the watermark, when the last sync finished…)."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return int(row["value"]) if row else None

    def set_state(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the tables other modules keep in this file (``outbox``)."""
        return self._db

    # -- sources ---------------------------------------------------------------------------

    def save_source(self, source: wire.Source, items: Iterable[wire.Item]) -> list[str]:
        """Store a source and its complete item list in one transaction; items the server no
        longer lists are dropped. Returns the dropped ids (their cached files are the caller's)."""
        wanted = list(items)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sources (id, pseudonym, reply_key, starred, version, created_day,"
                " unread, submissions, items_version, assignee, labels, hold)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET pseudonym = excluded.pseudonym,"
                " reply_key = excluded.reply_key, starred = excluded.starred,"
                " version = excluded.version, created_day = excluded.created_day,"
                " unread = excluded.unread, submissions = excluded.submissions,"
                " items_version = excluded.items_version, assignee = excluded.assignee,"
                " labels = excluded.labels, hold = excluded.hold",
                (
                    source.id,
                    source.pseudonym,
                    source.reply_key,
                    int(source.starred),
                    source.version,
                    source.created_day.isoformat() if source.created_day else None,
                    source.unread,
                    source.submissions,
                    source.version,
                    source.assignee,
                    json.dumps(source.labels),
                    int(source.hold),
                ),
            )
            for item in wanted:
                if item.source_id != source.id:
                    raise ValueError("item of another source")
                self._upsert_item(db, item)
            keep = {item.id for item in wanted}
            existing = db.execute("SELECT id FROM items WHERE source_id = ?", (source.id,))
            gone = [row["id"] for row in existing if row["id"] not in keep]
            db.executemany("DELETE FROM items WHERE id = ?", [(i,) for i in gone])
        return gone

    @staticmethod
    def _upsert_item(db: sqlite3.Connection, item: wire.Item) -> None:
        # A changed digest means different ciphertext: what is cached no longer matches.
        db.execute(
            "INSERT INTO items (id, source_id, seq, kind, arrival_day, size, digest, metadata,"
            " author, seen, cache) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'missing')"
            " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind,"
            " arrival_day = excluded.arrival_day, size = excluded.size,"
            " metadata = excluded.metadata, author = excluded.author, seen = excluded.seen,"
            " cache = CASE WHEN items.digest = excluded.digest THEN items.cache"
            " ELSE 'missing' END, digest = excluded.digest",
            (
                item.id,
                item.source_id,
                item.seq,
                item.kind,
                item.arrival_day.isoformat() if item.arrival_day else None,
                item.size,
                item.digest,
                item.metadata_bytes(),
                item.author,
                int(item.seen),
            ),
        )

    def delete_source(self, source_id: str, *, keep_row: bool = False) -> list[str]:
        """Forget a source and its items (``keep_row``: its items only); returns the item ids
        (to remove from the cache)."""
        with self.transaction() as db:
            rows = db.execute("SELECT id FROM items WHERE source_id = ?", (source_id,))
            ids = [row["id"] for row in rows]
            if keep_row:
                db.execute("DELETE FROM items WHERE source_id = ?", (source_id,))
            else:
                db.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        return ids

    def source(self, source_id: str) -> LocalSource | None:
        row = self._db.execute("SELECT * FROM sources WHERE id = ?", (source_id,)).fetchone()
        return _local_source(row) if row else None

    def sources(self) -> list[LocalSource]:
        rows = self._db.execute("SELECT * FROM sources ORDER BY version DESC")
        return [_local_source(row) for row in rows]

    def source_ids(self) -> set[str]:
        return {row["id"] for row in self._db.execute("SELECT id FROM sources")}

    # -- items -----------------------------------------------------------------------------

    def item(self, item_id: str) -> LocalItem | None:
        row = self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _local_item(row) if row else None

    def items(self, source_id: str | None = None) -> list[LocalItem]:
        """Items of one source (or all) in conversation order: by seq, replies interleaved."""
        if source_id is None:
            rows = self._db.execute("SELECT * FROM items ORDER BY source_id, seq, kind")
        else:
            rows = self._db.execute(
                "SELECT * FROM items WHERE source_id = ? ORDER BY seq, kind", (source_id,)
            )
        return [_local_item(row) for row in rows]

    def items_to_fetch(self) -> list[LocalItem]:
        """Items whose ciphertext is not cached (missing, or corrupted last time)."""
        rows = self._db.execute(
            "SELECT * FROM items WHERE cache != 'cached' ORDER BY source_id, seq, kind"
        )
        return [_local_item(row) for row in rows]

    def set_cache(self, item_id: str, state: CacheState) -> None:
        self._db.execute("UPDATE items SET cache = ? WHERE id = ?", (state.value, item_id))

    def item_ids(self) -> set[str]:
        return {row["id"] for row in self._db.execute("SELECT id FROM items")}

    def check_cache(self, cache: CiphertextCache) -> list[str]:
        """Mark cached items whose file went missing as missing again; returns their ids."""
        lost = [
            row["id"]
            for row in self._db.execute("SELECT id FROM items WHERE cache = 'cached'")
            if not cache.has(row["id"])
        ]
        for item_id in lost:
            self.set_cache(item_id, CacheState.MISSING)
        return lost


def _local_source(row: sqlite3.Row) -> LocalSource:
    return LocalSource(
        id=row["id"],
        pseudonym=row["pseudonym"],
        reply_key=row["reply_key"],
        starred=bool(row["starred"]),
        version=row["version"],
        created_day=row["created_day"],
        unread=row["unread"],
        submissions=row["submissions"],
        items_version=row["items_version"],
        assignee=row["assignee"],
        labels=_labels(row["labels"]),
        hold=bool(row["hold"]),
    )


def _labels(stored: str) -> tuple[str, ...]:
    """The labels column (a JSON list this module wrote): anything else reads as none."""
    try:
        labels = json.loads(stored)
    except ValueError:
        return ()
    if not isinstance(labels, list):
        return ()
    return tuple(label for label in labels if isinstance(label, str))


def _local_item(row: sqlite3.Row) -> LocalItem:
    return LocalItem(
        id=row["id"],
        source_id=row["source_id"],
        seq=row["seq"],
        kind=row["kind"],
        arrival_day=row["arrival_day"],
        size=row["size"],
        digest=row["digest"],
        metadata=row["metadata"],
        author=row["author"],
        seen=bool(row["seen"]),
        cache=CacheState(row["cache"]),
    )
