"""The housekeeping lock (storage/leadership.py): one holder at a time among the workers of a
PostgreSQL instance, and a holder that dies hands it over; on SQLite, always held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.leadership import HOUSEKEEPING_LOCK, Leadership

HOLDER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import create_engine
    from sealdrop.storage.leadership import Leadership
    leadership = Leadership(create_engine(sys.argv[1]))
    print("held" if leadership.held() else "refused", flush=True)
    time.sleep(600)
    """
)


def test_on_sqlite_the_only_server_always_holds_it(tmp_path: Path) -> None:
    """SQLite: one server holds the instance (the folder lock); it always runs housekeeping."""
    database = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    leadership = Leadership(database.engine)
    assert not leadership.shared
    assert leadership.held()
    leadership.release()
    database.close()


@pytest.mark.postgres
def test_one_holder_at_a_time_and_a_killed_holder_hands_over(fresh_postgres_url: str) -> None:
    """PostgreSQL: while a worker process holds the lock, another is refused (without waiting);
    once the holder is killed with SIGKILL (no cleanup at all), the other gets it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, fresh_postgres_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    database = SqlDatabase(fresh_postgres_url)
    other = Leadership(database.engine)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert other.shared
        started = time.monotonic()
        assert not other.held()
        assert time.monotonic() - started < 2  # refused at once, never queued behind it
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 15
        while not other.held():
            assert time.monotonic() < deadline, "the lock was not handed over"
            time.sleep(0.1)
        assert other.held()  # and keeps it
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        other.release()
        database.close()


@pytest.mark.postgres
def test_a_holder_whose_connection_is_cut_stops_holding_and_asks_again(
    fresh_postgres_url: str,
) -> None:
    """A holder whose database session was ended under it (the lock freed, maybe taken by
    another) does not go on believing it holds it: it asks again on a new connection."""
    database = SqlDatabase(fresh_postgres_url)
    first, second = Leadership(database.engine), Leadership(database.engine)
    try:
        assert first.held()
        with psycopg.connect(fresh_postgres_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objid = %s",
                (HOUSEKEEPING_LOCK & 0xFFFFFFFF,),
            )
        assert second.held()
        assert not first.held()
    finally:
        first.release()
        second.release()
        database.close()
