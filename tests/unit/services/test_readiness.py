"""Readiness (GET /readyz): a real SQLite database and a real filesystem blob store, checked as
`serve` checks them; a database that cannot be reached (a PostgreSQL port where nothing
listens) and a blob folder that is gone make the server not ready, and it is ready again when
they are back."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from sealdrop.services.readiness import Readiness
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase, sqlite_url_for


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_store_that_is_gone_makes_the_server_not_ready_until_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not ready before the first check; ready once both answer; a blob folder moved away (a
    disk no longer mounted) is a problem named for the store, logged once as a WARNING while it
    lasts; back, ready again (logged once)."""
    database = SqlDatabase(sqlite_url_for(tmp_path / "sealdrop.db"))
    store = FilesystemBlobStore(tmp_path / "store")
    readiness = Readiness(database.ping, store.probe)
    try:
        assert not readiness.ready()
        assert readiness.problem == "not checked yet"
        caplog.set_level(logging.INFO, "sealdrop.readiness")
        assert readiness.check() is None
        assert readiness.ready()
        (tmp_path / "store" / "blobs").rename(tmp_path / "elsewhere")
        for _ in range(3):
            problem = readiness.check()
        assert problem is not None
        assert problem.startswith("blob store: blob store I/O error")
        assert not readiness.ready()
        (tmp_path / "elsewhere").rename(tmp_path / "store" / "blobs")
        assert readiness.check() is None
        assert readiness.ready()
    finally:
        database.close()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        ("INFO", "ready: the database and the blob store answer"),
        ("WARNING", f"not ready (GET /readyz answers 503): {problem}"),
        ("INFO", "ready: the database and the blob store answer"),
    ]


def test_a_database_that_cannot_be_reached_makes_the_server_not_ready(tmp_path: Path) -> None:
    """A PostgreSQL URL whose port has nobody listening: the check says the database cannot be
    reached, within the connect timeout, and never raises."""
    url = f"postgresql+psycopg://sealdrop@127.0.0.1:{closed_port()}/sealdrop"
    database = SqlDatabase(url, connect_timeout=2)
    store = FilesystemBlobStore(tmp_path / "store")
    readiness = Readiness(database.ping, store.probe)
    try:
        started = time.monotonic()
        problem = readiness.check()
        assert time.monotonic() - started < 10
    finally:
        database.close()
    assert problem == "database: the database cannot be reached or stayed locked"
    assert not readiness.ready()


def test_the_checks_run_in_a_thread_of_their_own_until_stopped(tmp_path: Path) -> None:
    """start() checks at once, before it returns (so a server is ready as it starts serving,
    and its first metrics snapshot says so), then every interval; stop() ends the thread."""
    database = SqlDatabase(sqlite_url_for(tmp_path / "sealdrop.db"))
    store = FilesystemBlobStore(tmp_path / "store")
    calls: list[float] = []

    def probe() -> None:
        calls.append(time.monotonic())
        store.probe()

    readiness = Readiness(database.ping, probe, interval=0.05)
    try:
        readiness.start()
        assert (len(calls), readiness.ready()) == (1, True)
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert readiness.ready()
        readiness.stop()
        count = len(calls)
        time.sleep(0.2)
        assert len(calls) == count >= 3
    finally:
        readiness.stop()
        database.close()
