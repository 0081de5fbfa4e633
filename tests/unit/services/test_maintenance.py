"""Housekeeping removes expired sessions and abandoned sources without waiting for anyone."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealdrop.crypto.keys import generate_identity
from sealdrop.errors import SessionRequired
from sealdrop.ids import SourceId
from sealdrop.services.kdf import KdfPool
from sealdrop.services.maintenance import Maintenance
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import FakeClock


def test_one_round_purges_expired_sessions_and_abandoned_sources(tmp_path: Path) -> None:
    """A session idle past the timeout is deleted; a live one stays; a source that never sent
    anything is deleted once its pending window is over; the job starts and stops cleanly."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    clock = FakeClock()
    kdf = KdfPool(b"s" * 32, 1)
    sessions = SessionService(db, clock, idle_seconds=60, absolute_seconds=3600)
    throttle = LoginThrottle(clock, max_in_flight=2, per_minute=60, failures_per_visitor=5)
    sources = SourceService(db, kdf, sessions, throttle, clock, "day", pending_purge_seconds=120)
    with db.transaction() as repos:
        kept = repos.sources.add(b"l" * 32, "age1x", None, "calm otter", None)
    old = sessions.open(SourceId(kept.id), generate_identity())
    abandoned = sources.create()
    # To the next minute: sessions record the minute they opened in (services/sessions.py).
    clock.advance(120)
    live = sessions.open(SourceId(kept.id), generate_identity())
    job = Maintenance(sessions, sources, interval=3600)
    assert job.run_once() == (2, 0)  # the old session and the new source's first session
    assert sessions.resolve(live).source_id == kept.id
    with pytest.raises(SessionRequired) as refused:
        sessions.resolve(old)
    assert not refused.value.expired  # the row is gone, not merely found stale
    clock.advance(60)
    assert job.run_once() == (0, 1)
    with db.transaction() as repos:
        assert repos.sources.get(abandoned.source_id) is None
        assert repos.sources.get(kept.id) is not None
    job.start()
    job.stop()
    kdf.close()
    db.close()
