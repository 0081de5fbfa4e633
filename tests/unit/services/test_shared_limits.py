"""The limits several workers share through PostgreSQL (storage/shared_limits.py): each worker
is its own engine here, as each process has its own; what one takes, the others see."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from sealdrop.errors import TooManyRequests, UploadQuotaExceeded
from sealdrop.services.throttle import LoginThrottle
from sealdrop.services.upload_quota import DAY_SECONDS, SharedUploadQuota
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.shared_limits import SharedAllowances, SharedLoginBudget
from sealdrop.testing import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
def workers(fresh_postgres_url: str) -> Iterator[tuple[SqlDatabase, SqlDatabase]]:
    """Two connections pools to one migrated PostgreSQL database: two workers."""
    first = SqlDatabase(fresh_postgres_url)
    first.upgrade()
    second = SqlDatabase(fresh_postgres_url)
    yield first, second
    first.close()
    second.close()


def _throttle(database: SqlDatabase, per_minute: int) -> LoginThrottle:
    return LoginThrottle(
        FakeClock(),
        max_in_flight=8,
        per_minute=per_minute,
        failures_per_visitor=5,
        shared=SharedLoginBudget(database.engine, "source", per_minute),
    )


def test_the_login_budget_per_minute_holds_across_workers(
    workers: tuple[SqlDatabase, SqlDatabase],
) -> None:
    """With a budget of 3 a minute, three logins spread over two workers pass and the fourth is
    refused on either worker, with a Retry-After of about the refill time; each worker alone
    would have let three more through."""
    one, two = (_throttle(database, per_minute=3) for database in workers)
    for throttle in (one, two, one):
        with throttle.attempt(None):
            pass
    for throttle in (two, one):
        with pytest.raises(TooManyRequests) as refused, throttle.attempt(None):
            pass
        assert 1 <= refused.value.retry_after <= 21
    assert one._in_flight == two._in_flight == 0  # a refused attempt holds no slot


def test_the_budget_refills_with_the_database_clock(
    workers: tuple[SqlDatabase, SqlDatabase],
) -> None:
    """The bucket is counted in the database server's seconds: a minute later (moved back in the
    row, as no test waits a minute) it is full again for every worker."""
    one, two = (_throttle(database, per_minute=2) for database in workers)
    for throttle in (one, two):
        with throttle.attempt(None):
            pass
    with pytest.raises(TooManyRequests), one.attempt(None):
        pass
    with workers[0].engine.begin() as connection:
        connection.execute(text("UPDATE login_budgets SET counted_at = counted_at - 60"))
    for throttle in (two, one):
        with throttle.attempt(None):
            pass


def _source(database: SqlDatabase) -> str:
    with database.transaction() as repos:
        return repos.sources.add(b"l" * 32, "age1x", None, "calm otter", None).id


def test_a_sources_daily_allowance_holds_across_workers(
    workers: tuple[SqlDatabase, SqlDatabase],
) -> None:
    """Uploads of one source on two workers at once share its allowance: the second worker gets
    only what the first left; what an upload did not use comes back for every worker; the next
    UTC day the whole allowance is there again, and housekeeping deletes the finished day."""
    clock = FakeClock(1_800_000_000.0)
    one, two = (
        SharedUploadQuota(clock, 1000, SharedAllowances(database.engine)) for database in workers
    )
    source = _source(workers[0])
    first = one.reserve(source, 600)
    second = two.reserve(source, 600)
    assert (first.granted, second.granted) == (600, 400)
    with pytest.raises(UploadQuotaExceeded) as refused:
        one.reserve(source, 1)
    assert 0 < refused.value.retry_after <= DAY_SECONDS
    first.settle(100)  # 500 given back
    assert two.remaining(source)[0] == 500
    second.release()
    assert one.remaining(source)[0] == 900
    clock.advance(DAY_SECONDS)
    assert two.remaining(source)[0] == 1000
    assert one.purge() == 1
    assert two.reserve(source, 2000).granted == 1000


def test_a_deleted_source_leaves_no_count_behind(
    workers: tuple[SqlDatabase, SqlDatabase],
) -> None:
    """Retention's ``forget`` (and deleting the source) removes its row: no record of its uploads
    outlives it."""
    quota = SharedUploadQuota(FakeClock(), 1000, SharedAllowances(workers[0].engine))
    source = _source(workers[0])
    quota.reserve(source, 10).settle(10)
    quota.forget(source)
    with workers[1].engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM upload_allowances")).scalar() == 0
