"""Paging through sources (the journalist API's ``GET /sources``: Inbox.sources with the
``updated_since`` cursor) stays exact while another thread keeps writing: new sources with
submissions arrive, and existing ones get new submissions or stars (each bumps the source's
version).

A source's version is a change counter, so the listing is a change feed: a source that changes
after it was listed is listed again, with its new version. What must never happen: a source that
did not change is skipped or listed twice, the same state (id, version) is listed twice, or a
change is lost (after the writer stops, the last listing of every source shows its final state).

Sources are added through the repository (a codename's Argon2id derivation is irrelevant to
paging and would cost ~0.15 s each); everything that bumps versions goes through the services.
"""

from __future__ import annotations

import io
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sealdrop.config import load_settings
from sealdrop.crypto import passwords
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.ids import SourceId
from sealdrop.services.auth import Principal
from sealdrop.services.container import Services, build_services
from sealdrop.services.inbox import SourceView
from sealdrop.services.instance import init_instance
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock

PAGE = 7
INITIAL_SOURCES = 60
MAX_WRITES = 150  # so that paging ends even if the writer outpaces the reader
SEED = 7


@dataclass
class Inbox:
    services: Services
    db: SqlDatabase
    admin: Principal
    reply_key: str
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def new_source(self) -> SourceId:
        """A source that sent one message (its first submission gives it its first version)."""
        with self.db.transaction() as repos:
            source = repos.sources.add(os.urandom(32), self.reply_key, None, "calm lynx", 1)
        self.submit(source.id)
        return source.id

    def submit(self, source_id: SourceId) -> None:
        with self.services.submissions.intake(source_id) as intake:
            intake.add_message(io.BytesIO(b"a message"))
            intake.commit()

    def star(self, source_id: SourceId) -> None:
        current = self.services.inbox.source(self.admin, source_id)
        self.services.inbox.set_starred(self.admin, source_id, not current.starred)

    def page(self, after: int, starred: bool | None = None) -> tuple[list[SourceView], int | None]:
        return self.services.inbox.sources(self.admin, after, PAGE, starred)

    def everything(self) -> dict[SourceId, int]:
        """Every listed source and its current version, read in one go."""
        views, following = self.services.inbox.sources(self.admin, 0, 200, None)
        assert following is None
        return {v.id: v.version for v in views}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def inbox(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Inbox]:
    if request.param == "postgres":
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    root = init_instance(tmp_path / "instance")
    settings = load_settings(root)
    clock = FakeClock()
    services = build_services(settings, clock=clock)
    services.recipients.add(str(recipient_of(generate_identity())), "journalist")
    admin = services.accounts.create("admin", "admin", actor="test")
    code = passwords.totp_code(admin.totp_secret, clock.now())
    token = services.auth.login("admin", admin.passphrase, code).token
    db = SqlDatabase(settings.database_url)
    box = Inbox(
        services,
        db,
        services.auth.authenticate(token),
        str(recipient_of(generate_identity())),
    )
    yield box
    db.close()
    services.close()


def page_through(inbox: Inbox, after: int = 0, between_pages: object = None) -> list[SourceView]:
    """Every source listed from ``after`` to the end, page by page, in order."""
    listed: list[SourceView] = []
    cursor: int | None = after
    while cursor is not None:
        views, cursor = inbox.page(cursor)
        assert len(views) <= PAGE
        assert cursor is None or cursor == views[-1].version
        listed += views
        if callable(between_pages):
            between_pages()
    return listed


def test_paging_lists_every_source_once(inbox: Inbox) -> None:
    """Without concurrent writes, pages of 7 list every source exactly once, in version order,
    and the last page says there is no next one."""
    ids = [inbox.new_source() for _ in range(23)]
    listed = page_through(inbox)
    assert sorted(v.id for v in listed) == sorted(ids)
    versions = [v.version for v in listed]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    # From a cursor in the middle: exactly the sources with a later version.
    middle = versions[10]
    assert [v.id for v in page_through(inbox, after=middle)] == [v.id for v in listed[11:]]


def test_paging_is_stable_under_concurrent_writes(inbox: Inbox) -> None:
    """While a writer thread keeps adding sources and bumping existing ones, paging from 0 lists
    each pre-existing source that did not change exactly once, never lists the same state twice,
    lists a source again only with a newer version, and, finished after the writer stops, ends
    with every source's final version."""
    before = [inbox.new_source() for _ in range(INITIAL_SOURCES)]
    changed: set[SourceId] = set()
    created: list[SourceId] = []
    writes = threading.Semaphore(0)
    done = threading.Event()
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        rng = random.Random(SEED)
        try:
            for _ in range(MAX_WRITES):
                if stop.is_set():
                    break
                action = rng.random()
                if action < 0.4:
                    created.append(inbox.new_source())
                else:
                    target = rng.choice(before)
                    # Recorded before the write: a source counts as changed from the moment its
                    # change may have become visible.
                    changed.add(target)
                    if action < 0.7:
                        inbox.submit(target)
                    else:
                        inbox.star(target)
                writes.release()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    def wait_for_a_write() -> None:
        """Let at least one write land between two pages (the writer never waits for us)."""
        for _ in range(600):
            if writes.acquire(timeout=0.05) or done.is_set():
                return
        raise AssertionError("the writer thread stalled")

    thread = threading.Thread(target=writer, name="writer", daemon=True)
    thread.start()
    try:
        listed = page_through(inbox, between_pages=wait_for_a_write)
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    assert not thread.is_alive()
    # The writer has stopped: catch up from the last version seen, as a reader would.
    listed += page_through(inbox, after=max(v.version for v in listed))

    # Between any two pages at least one write landed; make sure both kinds did.
    assert len(changed) >= 3, "the writer bumped too few sources to prove anything"
    assert len(created) >= 3, "the writer added too few sources to prove anything"
    unchanged = set(before) - changed
    counts: dict[SourceId, int] = {}
    for view in listed:
        counts[view.id] = counts.get(view.id, 0) + 1
    assert {s: counts.get(s, 0) for s in unchanged} == dict.fromkeys(unchanged, 1)
    # No state twice, and the cursor only moves forward.
    versions = [v.version for v in listed]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    # Only sources that changed during paging reappear, each time newer.
    again = {s for s, n in counts.items() if n > 1}
    assert again <= changed
    # Nothing lost: the last listing of each source is its final state, and every source is in.
    last = {v.id: v.version for v in listed}
    assert last == inbox.everything()
    assert set(before) | set(created) == set(last)
