"""Housekeeping removes expired sessions and abandoned sources without waiting for anyone."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from sealdrop.crypto.keys import generate_identity
from sealdrop.errors import SessionRequired
from sealdrop.ids import SourceId
from sealdrop.services.kdf import KdfPool
from sealdrop.services.maintenance import Maintenance
from sealdrop.services.retention import Retention, Rules, jitter_key
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.interfaces import NewSubmission
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


def test_retention_runs_at_the_first_round_and_once_each_utc_day(tmp_path: Path) -> None:
    """The job runs retention at its first round (so a server restarted every few hours still
    runs it daily), not again the same UTC day, and again at the first round of the next day,
    when the submission it keeps until then is due."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    clock = FakeClock(dt.datetime(2027, 1, 10, 23, 0, tzinfo=dt.UTC).timestamp())
    kdf = KdfPool(b"s" * 32, 1)
    sessions = SessionService(db, clock, idle_seconds=60, absolute_seconds=3600)
    throttle = LoginThrottle(clock, max_in_flight=2, per_minute=60, failures_per_visitor=5)
    sources = SourceService(db, kdf, sessions, throttle, clock, "day", pending_purge_seconds=120)
    blobs = FilesystemBlobStore(tmp_path / "store")
    retention = Retention(db, blobs, clock, Rules(submissions_days=10), jitter_key(b"k" * 32))
    with db.transaction() as repos:
        source = repos.sources.add(b"l" * 32, "age1x", None, "calm otter", None)
        for day in (dt.date(2026, 12, 31), dt.date(2027, 1, 1)):
            seq = repos.sources.reserve_sequence(source.id, 1)
            with blobs.stage() as staged:
                staged.write(b"ciphertext")
                key, _ = staged.commit()
            repos.submissions.add(source.id, seq, day, NewSubmission("message", key, 1, None))

    def left() -> int:
        with db.transaction() as repos:
            return len(repos.submissions.for_source(source.id))

    job = Maintenance(sessions, sources, interval=3600, retention=retention)
    assert job.run_retention_if_due()  # first round: 31 Dec + 10 days is due on 10 Jan
    assert left() == 1
    clock.advance(30 * 60)
    assert not job.run_retention_if_due()  # the same day
    clock.advance(60 * 60)  # 11 Jan, 00:30 UTC
    job.run_once()
    assert left() == 0
    restarted = Maintenance(sessions, sources, interval=3600, retention=retention)
    assert restarted.run_retention_if_due()  # a new process runs it at its first round
    kdf.close()
    db.close()


def test_a_worker_runs_rounds_only_while_it_holds_the_housekeeping_lock(tmp_path: Path) -> None:
    """Several workers: the job's rounds run only while ``leader`` says this process holds the
    lock; it asks again at every round, so once the lock is its own (the holder died) it takes
    over without a restart."""
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    clock = FakeClock()
    kdf = KdfPool(b"s" * 32, 1)
    sessions = SessionService(db, clock, idle_seconds=60, absolute_seconds=3600)
    throttle = LoginThrottle(clock, max_in_flight=2, per_minute=60, failures_per_visitor=5)
    sources = SourceService(db, kdf, sessions, throttle, clock, "day", pending_purge_seconds=120)
    abandoned = sources.create()
    clock.advance(3600)  # its session and its pending window are long over
    holds = threading.Event()
    asked = threading.Semaphore(0)

    def leader() -> bool:
        asked.release()
        return holds.is_set()

    def present() -> bool:
        with db.transaction() as repos:
            return repos.sources.get(abandoned.source_id) is not None

    job = Maintenance(sessions, sources, interval=0.01, leader=leader)
    job.start()
    try:
        for _ in range(5):
            assert asked.acquire(timeout=10)
        assert present()
        holds.set()
        deadline = time.monotonic() + 10
        while present() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not present()
    finally:
        job.stop()
        kdf.close()
        db.close()
