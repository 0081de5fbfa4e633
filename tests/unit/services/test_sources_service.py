"""SourceService: codename login and confirmation without revealing which codenames exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import SourceKeys
from sealdrop.errors import InvalidCodename
from sealdrop.services.kdf import KdfPool
from sealdrop.services.sessions import SessionService
from sealdrop.services.sources import SourceService
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.testing import FakeClock


class CountingKdf(KdfPool):
    """The real KDF pool, counting derivations."""

    def __init__(self) -> None:
        super().__init__(b"s" * 32, 1)
        self.calls = 0

    def derive(self, codename: Codename) -> SourceKeys:
        self.calls += 1
        return super().derive(codename)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SourceService, CountingKdf, FakeClock, SqlDatabase]]:
    db = SqlDatabase(sqlite_url_for(tmp_path / "db.sqlite3"))
    db.upgrade()
    clock = FakeClock()
    kdf = CountingKdf()
    sessions = SessionService(db, clock, 3600, 14400)
    throttle = LoginThrottle(clock, max_in_flight=4, per_minute=100, failures_per_visitor=100)
    yield SourceService(db, kdf, sessions, throttle, clock, "day", 24 * 3600), kdf, clock, db
    kdf.close()
    db.close()


@pytest.mark.parametrize("text", ["x" * 10_000, "", "one two", "abacus " * 7 + "zoom"])
def test_malformed_codename_costs_one_derivation_like_an_unknown_one(
    parts: tuple[SourceService, CountingKdf, FakeClock, SqlDatabase], text: str
) -> None:
    """A malformed codename runs the KDF once (on a decoy) before failing, exactly like a
    well-formed unknown one, so timing does not tell the two apart."""
    service, kdf, _, _ = parts
    with pytest.raises(InvalidCodename):
        service.login(text)
    assert kdf.calls == 1


def test_unknown_wellformed_codename_is_refused(
    parts: tuple[SourceService, CountingKdf, FakeClock, SqlDatabase],
) -> None:
    """Seven list words nobody uses: the same InvalidCodename."""
    service, kdf, _, _ = parts
    with pytest.raises(InvalidCodename):
        service.login("abacus " * 6 + "zoom")
    assert kdf.calls == 1


def test_new_source_is_pending_then_purged_unless_it_sends(
    parts: tuple[SourceService, CountingKdf, FakeClock, SqlDatabase],
) -> None:
    """A source that never sends anything is deleted after the pending window; its codename then
    opens nothing."""
    service, _, clock, db = parts
    new = service.create()
    clock.advance(24 * 3600 + 1)
    assert service.purge_pending() == 1
    with pytest.raises(InvalidCodename):
        service.login(new.codename)
    with db.transaction() as repos:
        assert repos.sources.get(new.source_id) is None


def test_active_source_survives_the_purge(
    parts: tuple[SourceService, CountingKdf, FakeClock, SqlDatabase],
) -> None:
    """Once marked active (first submission), a source is never purged, and forgets when it
    began."""
    service, _, clock, db = parts
    new = service.create()
    with db.transaction() as repos:
        repos.sources.mark_active(new.source_id)
    clock.advance(30 * 24 * 3600)
    assert service.purge_pending() == 0
    with db.transaction() as repos:
        record = repos.sources.get(new.source_id)
    assert record is not None
    assert record.pending_since is None
    assert " " in record.pseudonym
