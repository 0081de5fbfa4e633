"""`sealdrop serve` applies the [retention] rules on its own, at start (and then daily), on
SQLite and PostgreSQL: an expired submission goes with its blob, a recent one and one of a
source on hold stay."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from support_http import start_server

from sealdrop.config import load_settings
from sealdrop.ids import SourceId
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission

pytestmark = pytest.mark.slow


def _add(db: SqlDatabase, blobs: FilesystemBlobStore, name: str, ages: list[int]) -> SourceId:
    today = dt.datetime.now(dt.UTC).date()
    with db.transaction() as repos:
        source = repos.sources.add(name.encode().ljust(32, b"."), "age1x", today, name, None)
        for age in ages:
            with blobs.stage() as staged:
                staged.write(b"age ciphertext")
                key, size = staged.commit()
            seq = repos.sources.reserve_sequence(source.id, 1)
            day = today - dt.timedelta(days=age)
            repos.submissions.add(source.id, seq, day, NewSubmission("message", key, size, None))
    return source.id


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_serve_deletes_what_retention_says_at_start(
    instance_dir: Path, server_tmp: Path, backend: str
) -> None:
    """With submissions_days = 30 and no jitter, the server's housekeeping deletes the
    submission of 40 days ago (row and blob) soon after start; the one of 5 days ago and the
    held source's old one stay."""
    settings = load_settings(instance_dir)
    db = SqlDatabase(settings.database_url)
    db.upgrade()
    blobs = FilesystemBlobStore(settings.blob_dir)
    free = _add(db, blobs, "free fox", [40, 5])
    held = _add(db, blobs, "held hen", [40])
    with db.transaction() as repos:
        repos.triage.set_hold(held, True)
    assert len(list(blobs.keys())) == 3

    def days(source: SourceId) -> list[int]:
        today = dt.datetime.now(dt.UTC).date()
        with db.transaction() as repos:
            return [
                (today - s.arrival_day).days
                for s in repos.submissions.for_source(source)
                if s.arrival_day
            ]

    server = start_server(
        instance_dir, server_tmp, retention_submissions_days="30", retention_jitter_days="0"
    )
    try:
        deadline = time.monotonic() + 15
        while days(free) != [5] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert days(free) == [5]
        assert days(held) == [40]
        assert len(list(blobs.keys())) == 2
    finally:
        server.stop()
        db.close()
