"""What the metrics count and when they are taken (services/monitoring.py): refusal reasons from
a fixed set, peaks rather than momentary levels, the snapshot timer's schedule, the storage
folders watched, and the derivation pool's occupancy."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sealdrop.crypto import codenames
from sealdrop.errors import (
    ClientDisconnected,
    EmptySubmission,
    NotAcceptingSubmissions,
    StorageFull,
    TooManyItems,
    UploadQuotaExceeded,
    UploadTooLarge,
)
from sealdrop.services import kdf
from sealdrop.services.kdf import KdfPool
from sealdrop.services.monitoring import (
    REFUSAL_REASONS,
    FolderSpace,
    IntakeTally,
    Level,
    Snapshot,
    SnapshotTimer,
    TorState,
    refusal_reason,
    storage_folders,
)


def test_a_level_publishes_the_peak_since_the_last_snapshot_not_the_momentary_value() -> None:
    """Two uploads that came and went between snapshots show as a peak of 2 (the value at the
    snapshot, 0, would hide them; the value of an upload in progress at the snapshot would date
    it); the next snapshot starts from what is in use then."""
    level = Level()
    level.enter()
    level.enter()
    level.leave()
    level.leave()
    assert level.take_peak() == 2
    assert level.take_peak() == 0
    level.enter()
    assert level.take_peak() == 1
    assert level.take_peak() == 1  # still in use


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (UploadQuotaExceeded(10, 60), "quota"),
        (UploadTooLarge(10), "too_large"),
        (TooManyItems(100), "too_many_items"),
        (EmptySubmission("x"), "empty"),
        (NotAcceptingSubmissions("x"), "not_accepting"),
        (ClientDisconnected(), "disconnected"),
        (StorageFull("x"), "storage"),
        (RuntimeError("a bug"), "other"),
    ],
)
def test_a_refusal_is_counted_under_a_fixed_reason(error: Exception, reason: str) -> None:
    """Each refusal the source pages tell apart has its own reason (the most specific class
    wins: a quota refusal is not counted as "too large"); anything else is "other"."""
    assert refusal_reason(error) == reason
    assert reason in REFUSAL_REASONS


def test_the_tally_counts_what_its_block_ends_with() -> None:
    """A block that ends normally is one accepted submission; one that raises is one refusal
    under its reason, and the exception still propagates; the uploads in progress peak at the
    number of blocks open at once."""
    tally = IntakeTally()
    with tally.counting(), tally.counting():
        pass
    with pytest.raises(UploadTooLarge), tally.counting():
        raise UploadTooLarge(10)
    accepted, refused = tally.totals()
    assert accepted == 2
    assert refused["too_large"] == 1
    assert sum(refused.values()) == 1
    assert set(refused) == set(REFUSAL_REASONS)
    assert tally.in_progress.take_peak() == 2


def test_storage_folders_are_the_blob_store_and_an_sqlite_file_s_folder(tmp_path: Path) -> None:
    """SQLite: the database file's folder is watched beside the blob store; PostgreSQL: only
    the blob store (its database lives on the PostgreSQL server)."""
    sqlite = f"sqlite+pysqlite:///{tmp_path}/db/sealdrop.db"
    assert storage_folders(tmp_path / "store", sqlite) == {
        "blobs": tmp_path / "store",
        "database": tmp_path / "db",
    }
    postgres = "postgresql+psycopg://u:p@127.0.0.1/sealdrop"
    assert storage_folders(tmp_path / "store", postgres) == {"blobs": tmp_path / "store"}


def test_no_local_folder_is_watched_for_blobs_in_an_object_store(tmp_path: Path) -> None:
    """Blobs on S3: the blob folder's free space would say nothing about the store, so only the
    SQLite file's folder is watched (and nothing on PostgreSQL)."""
    sqlite = f"sqlite+pysqlite:///{tmp_path}/db/sealdrop.db"
    assert storage_folders(tmp_path / "store", sqlite, object_store=True) == {
        "database": tmp_path / "db"
    }
    postgres = "postgresql+psycopg://u:p@127.0.0.1/sealdrop"
    assert storage_folders(tmp_path / "store", postgres, object_store=True) == {}


def _snapshot(taken_at: float) -> Snapshot:
    return Snapshot(
        started_at=0.0,
        taken_at=taken_at,
        tor=TorState(enabled=False, running=False, bootstrap_percent=0),
        accepted=0,
        refused={},
        uploads_peak=0,
        uploads_capacity=1,
        kdf_peak=0,
        kdf_capacity=1,
        connections_peak={},
        connections_capacity=1,
        storage={"blobs": FolderSpace(1, 2)},
        notices_sent=0,
        notices_failed=0,
        ready=True,
    )


@pytest.mark.slow
def test_the_timer_takes_snapshots_at_start_and_then_only_at_multiples_of_its_interval() -> None:
    """One snapshot at start, then one per interval, each just after a multiple of the interval
    since the epoch (never before it), never two in the same interval."""
    interval = 1.0
    taken: list[float] = []

    def take() -> Snapshot:
        taken.append(time.time())
        return _snapshot(taken[-1])

    timer = SnapshotTimer(take, interval)
    timer.start()
    time.sleep(3.2)
    timer.stop()
    later = taken[1:]
    assert 2 <= len(later) <= 4
    slots = [int(t // interval) for t in later]
    assert len(set(slots)) == len(slots)
    assert all(t - slot * interval < 0.5 for t, slot in zip(later, slots, strict=True))
    latest = timer.latest
    assert latest is not None
    assert latest.taken_at == taken[-1]


def test_a_failing_snapshot_stops_neither_the_start_nor_the_timer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A snapshot that raises (a bug, an unreadable folder) is logged by class name; start()
    returns and nothing is published until a snapshot succeeds."""
    attempts: list[int] = []

    def take() -> Snapshot:
        attempts.append(1)
        raise OSError("disk gone")

    timer = SnapshotTimer(take, 3600.0)
    with caplog.at_level("WARNING", logger="sealdrop.monitoring"):
        timer.start()
    timer.stop()
    assert attempts == [1]
    assert timer.latest is None
    assert "metrics snapshot failed: OSError" in caplog.text


def test_the_derivation_pool_reports_derivations_running_and_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one slot and three logins at once, the pool's peak is 3 (one running, two waiting
    for the slot): the metric shows a queue building, not only a full pool."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow_derive(_codename: object, _salt: bytes) -> object:
        started.release()
        release.wait(10)
        return object()

    monkeypatch.setattr(kdf, "derive_source_keys", slow_derive)
    # In threads, so that the slow stand-in is what runs (a process would run the real one).
    pool = KdfPool(b"s" * 16, max_concurrent=1, processes=False)
    logins = [threading.Thread(target=pool.derive, args=(codenames.generate(),)) for _ in range(3)]
    try:
        for login in logins:
            login.start()
        assert started.acquire(timeout=10)
        deadline = time.monotonic() + 10
        peak = 0
        while peak < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
            peak = pool.busy.take_peak()
        release.set()
        for login in logins:
            login.join(10)
    finally:
        release.set()
        pool.close()
    assert peak == 3
    assert pool.capacity == 1
    pool.busy.take_peak()  # the three, until they ended
    assert pool.busy.take_peak() == 0
