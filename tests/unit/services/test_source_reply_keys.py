"""Source reply keys on post-quantum instances: a new source stores its hybrid reply key; a source
made before the switch gets it at its next login; the session carries both identities, so the
conversation page opens replies sent before and after the switch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealdrop.crypto import keys
from sealdrop.crypto.keys import HybridIdentity
from sealdrop.services.kdf import KdfPool
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import FakeClock


class Instance:
    """One database, served by a classic or a post-quantum SourceService (a restart with the
    setting changed)."""

    def __init__(self, root: Path) -> None:
        self.db = SqlDatabase(sqlite_url_for(root / "db.sqlite3"))
        self.db.upgrade()
        self.clock = FakeClock()
        self.kdf = KdfPool(b"s" * 32, 1)
        self.sessions = SessionService(self.db, self.clock, 3600, 14400)

    def sources(self, post_quantum: bool) -> SourceService:
        throttle = LoginThrottle(
            self.clock, max_in_flight=4, per_minute=100, failures_per_visitor=9
        )
        return SourceService(
            self.db, self.kdf, self.sessions, throttle, self.clock, "day", 3600, post_quantum
        )

    def stored_key(self, source_id: str) -> str:
        with self.db.transaction(read_only=True) as repos:
            record = repos.sources.get(source_id)  # type: ignore[arg-type]
        assert record is not None
        return record.reply_recipient

    def close(self) -> None:
        self.kdf.close()
        self.db.close()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    made = Instance(tmp_path)
    yield made
    made.close()


def test_new_source_on_a_hybrid_instance_stores_a_hybrid_reply_key(instance: Instance) -> None:
    """Post-quantum: the stored reply key is age1pq1…, and the session's hybrid identity is its
    private half (derived, never stored)."""
    new = instance.sources(post_quantum=True).create()
    stored = instance.stored_key(new.source_id)
    assert keys.is_post_quantum(keys.parse_recipient(stored))
    session = instance.sessions.resolve(new.session_cookie)
    assert isinstance(session.hybrid_reply_identity, HybridIdentity)
    assert str(keys.recipient_of(session.hybrid_reply_identity)) == stored
    assert len(session.reply_identities) == 2


def test_classic_instance_is_unchanged(instance: Instance) -> None:
    """Classic: the X25519 reply key is stored and the session seals that identity only."""
    new = instance.sources(post_quantum=False).create()
    assert not instance.stored_key(new.source_id).startswith("age1pq1")
    session = instance.sessions.resolve(new.session_cookie)
    assert session.hybrid_reply_identity is None
    assert str(keys.recipient_of(session.reply_identity)) == instance.stored_key(new.source_id)


def test_source_from_before_the_switch_gets_its_hybrid_key_at_next_login(
    instance: Instance,
) -> None:
    """A source made on the classic instance keeps its X25519 key until it logs in on the
    post-quantum one; then its hybrid key replaces it, and its session opens both kinds."""
    new = instance.sources(post_quantum=False).create()
    classic_key = instance.stored_key(new.source_id)
    instance.sessions.confirm(instance.sessions.resolve(new.session_cookie))
    hybrid_instance = instance.sources(post_quantum=True)
    assert instance.stored_key(new.source_id) == classic_key  # nothing changes without a login
    cookie = hybrid_instance.login(new.codename)
    stored = instance.stored_key(new.source_id)
    assert stored.startswith("age1pq1")
    session = instance.sessions.resolve(cookie)
    assert str(keys.recipient_of(session.reply_identity)) == classic_key
    assert session.hybrid_reply_identity is not None
    assert str(keys.recipient_of(session.hybrid_reply_identity)) == stored
    # The next login finds the key in place.
    hybrid_instance.login(new.codename)
    assert instance.stored_key(new.source_id) == stored
