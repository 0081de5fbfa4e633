"""Hybrid post-quantum public keys (age1pq1…, 1,959 characters) fit every column that holds a
public key, unique indexes included, on SQLite and on a real PostgreSQL (no migration needed:
the columns are TEXT, and a PostgreSQL B-tree entry may be up to ~2,700 bytes)."""

from __future__ import annotations

import datetime as dt

import pytest

from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import StorageError
from sealdrop.ids import new_id
from sealdrop.storage.database import SqlDatabase


def hybrid_key() -> str:
    return str(recipient_of(generate_identity(post_quantum=True)))


def test_hybrid_keys_round_trip_in_every_key_column(database: SqlDatabase) -> None:
    """An organisation recipient, a device key and a source's reply key of 1,959 characters are
    stored and read back whole; the unique indexes still refuse a duplicate."""
    org, device, reply, later = hybrid_key(), hybrid_key(), hybrid_key(), hybrid_key()
    assert len(org) == 1959
    with database.transaction() as repos:
        repos.recipients.add(org, "offline")
        user = repos.users.add("ann", "hash", "", "journalist")
        repos.user_recipients.add(user.id, device, "laptop")
        source = repos.sources.add(new_id().encode(), reply, dt.date(2026, 1, 1), "calm lynx", None)
    with database.transaction() as repos:
        assert [r.public_key for r in repos.recipients.list()] == [org]
        assert repos.user_recipients.active_public_keys() == [device]
        found = repos.sources.get(source.id)
        assert found is not None
        assert found.reply_recipient == reply
        assert repos.sources.set_reply_recipient(source.id, later)
    with database.transaction() as repos:
        found = repos.sources.get(source.id)
        assert found is not None
        assert found.reply_recipient == later


def test_a_duplicate_hybrid_device_key_is_refused(database: SqlDatabase) -> None:
    """The unique index on device keys works on keys this long."""
    key = hybrid_key()
    with database.transaction() as repos:
        user = repos.users.add("ann", "hash", "", "journalist")
        repos.user_recipients.add(user.id, key, "laptop")
    with pytest.raises(StorageError), database.transaction() as repos:
        repos.user_recipients.add(user.id, key, "again")
