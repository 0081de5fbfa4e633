"""The reader's local copy and content digests that name their algorithm (server migration
0009): a copy made when items had a hex ``sha256`` column keeps what it cached."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sealdrop import wire
from sealdrop.reader.store import CacheState, Store

SOURCE = "a" * 32
HEX = "0f" * 32

# The local database as readers before named digests made it: items with a hex SHA-256, one
# cached and one made before the server kept digests ('').
OLD_SCHEMA = f"""
CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE sources (
    id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL, reply_key TEXT NOT NULL,
    starred INTEGER NOT NULL, version INTEGER NOT NULL, created_day TEXT,
    unread INTEGER NOT NULL, submissions INTEGER NOT NULL,
    items_version INTEGER NOT NULL DEFAULT -1, assignee TEXT,
    labels TEXT NOT NULL DEFAULT '[]', hold INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, kind TEXT NOT NULL, arrival_day TEXT, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, metadata BLOB, author TEXT, seen INTEGER NOT NULL,
    cache TEXT NOT NULL DEFAULT 'missing'
);
INSERT INTO state VALUES ('updated_since', 7);
INSERT INTO sources VALUES ('{SOURCE}', 'calm lynx', 'age1x', 0, 7, NULL, 0, 2, 7, NULL, '[]', 0);
INSERT INTO items VALUES ('{"1" * 32}', '{SOURCE}', 1, 'message', NULL, 10, '{HEX}', NULL, NULL,
    0, 'cached');
INSERT INTO items VALUES ('{"2" * 32}', '{SOURCE}', 2, 'message', NULL, 10, '', NULL, NULL, 0,
    'cached');
"""


def item(n: str, digest: str) -> wire.Item:
    return wire.Item.model_validate(
        {
            "id": n * 32,
            "source_id": SOURCE,
            "seq": int(n),
            "kind": "message",
            "arrival_day": None,
            "size": 10,
            "digest": digest,
            "seen": False,
        }
    )


def source() -> wire.Source:
    return wire.Source.model_validate(
        {
            "id": SOURCE,
            "pseudonym": "calm lynx",
            "reply_key": "age1x",
            "starred": False,
            "version": 8,
            "created_day": None,
            "submissions": 2,
            "unread": 0,
        }
    )


def test_an_old_copy_names_its_digests_and_keeps_its_cache(tmp_path: Path) -> None:
    """Opening a copy with hex ``sha256`` digests renames the column and prefixes the values
    ("sha256:HEX", '' stays ''), keeping the watermark; the server's digest of the same blob
    after its own migration then matches, so what was cached stays cached, while a different
    digest (new ciphertext) marks the item missing."""
    path = tmp_path / "reader.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Store(path) as store:
        first, second = store.items(SOURCE)
        assert (first.digest, first.cache) == (f"sha256:{HEX}", CacheState.CACHED)
        assert (second.digest, second.cache) == ("", CacheState.CACHED)
        assert store.watermark() == 7
        store.save_source(source(), [item("1", f"sha256:{HEX}"), item("2", "blake3:" + "e" * 64)])
        first, second = store.items(SOURCE)
        assert (first.digest, first.cache) == (f"sha256:{HEX}", CacheState.CACHED)
        assert (second.digest, second.cache) == ("blake3:" + "e" * 64, CacheState.MISSING)
    with Store(path) as store:  # upgraded once: opening again changes nothing
        assert [i.digest for i in store.items(SOURCE)] == [f"sha256:{HEX}", "blake3:" + "e" * 64]
