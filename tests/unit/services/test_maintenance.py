"""Housekeeping removes expired sessions without waiting for their cookies to come back."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealdrop.crypto.keys import generate_identity
from sealdrop.errors import SessionRequired
from sealdrop.ids import SourceId
from sealdrop.services.maintenance import Maintenance
from sealdrop.services.sessions import SessionService
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import FakeClock


def test_expired_sessions_are_purged_by_the_periodic_job(tmp_path: Path) -> None:
    """A session idle past the timeout is deleted by one housekeeping round; a live one stays."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    clock = FakeClock()
    sessions = SessionService(db, clock, idle_seconds=60, absolute_seconds=3600)
    with db.transaction() as repos:
        source = repos.sources.add(b"l" * 32, "age1x", None)
    old = sessions.open(SourceId(source.id), generate_identity())
    clock.advance(61)
    live = sessions.open(SourceId(source.id), generate_identity())
    job = Maintenance(sessions, interval=3600)
    assert job.run_once() == 1
    assert sessions.resolve(live).source_id == source.id
    with pytest.raises(SessionRequired) as refused:
        sessions.resolve(old)
    assert not refused.value.expired  # the row is gone, not merely found stale
    job.start()
    job.stop()
    db.close()
