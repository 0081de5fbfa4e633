"""sealdrop.reader.sync's changes (star, seen, delete, refresh) against a fake server: the server is
asked first, then the local copy and its cached ciphertext follow what the server has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from sealdrop.errors import ApiError, RemoteNotFound
from sealdrop.reader.client import ApiClient
from sealdrop.reader.store import CacheState, CiphertextCache, Store
from sealdrop.reader.sync import (
    delete_item,
    delete_source,
    mark_source_seen,
    refresh_source,
    star_source,
)
from sealdrop.wire import Item as RemoteItem
from sealdrop.wire import Source as RemoteSource

SOURCE = "5" * 32


def remote_item(n: int, kind: str = "message", seen: bool = False) -> RemoteItem:
    return RemoteItem(
        id=f"{n:032x}",
        source_id=SOURCE,
        seq=n,
        kind=kind,
        arrival_day=None,
        size=100,
        sha256=f"{n:064x}",
        seen=seen,
        metadata=None,
        author="reporter" if kind == "reply" else None,
    )


class FakeServer:
    """What ApiClient's change and listing calls need: one source, its items, a call log."""

    def __init__(self, items: list[RemoteItem]) -> None:
        self.source_row: RemoteSource | None = RemoteSource(
            id=SOURCE,
            pseudonym="quiet heron",
            reply_key="age1reply",
            starred=False,
            version=1,
            created_day=None,
            submissions=len(items),
            unread=sum(1 for i in items if not i.seen and i.kind != "reply"),
        )
        self.items = {i.id: i for i in items}
        self.calls: list[tuple[str, object]] = []

    def current(self) -> RemoteSource:
        if self.source_row is None:
            raise RemoteNotFound(404, "not_found", "no such source")
        return self.source_row

    def _changed(self, **changes: object) -> None:
        row = self.current()
        self.source_row = row.model_copy(update={"version": row.version + 1, **changes})

    # -- the ApiClient methods the changes use ---------------------------------------------

    def source(self, source_id: str) -> RemoteSource:
        return self.current()

    def submissions(self, source_id: str) -> list[RemoteItem]:
        self.current()
        return [i for i in self.items.values() if i.kind != "reply"]

    def replies(self, source_id: str) -> list[RemoteItem]:
        self.current()
        return [i for i in self.items.values() if i.kind == "reply"]

    def set_starred(self, source_id: str, starred: bool) -> RemoteSource:
        self.calls.append(("star", starred))
        self._changed(starred=starred)
        return self.current()

    def mark_seen(self, item_ids: list[str]) -> int:
        self.calls.append(("seen", sorted(item_ids)))
        for item_id in item_ids:
            self.items[item_id] = self.items[item_id].model_copy(update={"seen": True})
        unread = sum(1 for i in self.items.values() if not i.seen and i.kind != "reply")
        self.source_row = self.current().model_copy(update={"unread": unread})
        return len(item_ids)

    def delete_source(self, source_id: str) -> None:
        self.calls.append(("delete source", source_id))
        self.current()
        self.source_row = None
        self.items.clear()

    def delete_submission(self, item_id: str) -> None:
        self.calls.append(("delete submission", item_id))
        if self.items.pop(item_id, None) is None:
            raise RemoteNotFound(404, "not_found", "no such submission")

    def delete_reply(self, item_id: str) -> None:
        self.calls.append(("delete reply", item_id))
        if self.items.pop(item_id, None) is None:
            raise RemoteNotFound(404, "not_found", "no such reply")


@pytest.fixture
def server() -> FakeServer:
    """A source with two unseen messages, one seen message and a reply."""
    return FakeServer(
        [remote_item(1), remote_item(2), remote_item(3, seen=True), remote_item(4, "reply")]
    )


@pytest.fixture
def store(tmp_path: Path, server: FakeServer) -> Iterator[Store]:
    """The local copy of ``server``'s source, every item's ciphertext cached."""
    with Store(tmp_path / "reader.sqlite3") as local:
        local.save_source(server.current(), list(server.items.values()))
        cache = CiphertextCache(tmp_path / "cache")
        for item_id in server.items:
            cache.path(item_id).write_bytes(b"age ciphertext")
            local.set_cache(item_id, CacheState.CACHED)
        yield local


def client(server: FakeServer) -> ApiClient:
    """The fake, typed as what the changes take."""
    return cast(ApiClient, server)


def cached(tmp_path: Path) -> set[str]:
    """The ids whose ciphertext is in the cache folder."""
    return {p.name for p in (tmp_path / "cache").iterdir()}


def test_star_and_unstar_set_the_servers_flag_and_the_local_copy(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """star_source asks the server, and the local source shows the server's flag after it."""
    star_source(client(server), store, tmp_path / "cache", SOURCE, True)
    assert server.calls == [("star", True)]
    local = store.source(SOURCE)
    assert local is not None
    assert local.starred
    star_source(client(server), store, tmp_path / "cache", SOURCE, False)
    local = store.source(SOURCE)
    assert local is not None
    assert not local.starred


def test_seen_marks_only_the_unseen_submissions_held_here(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """mark_source_seen sends the unseen submissions (not the seen one, not the reply) and the
    local copy then shows no unread."""
    marked = mark_source_seen(client(server), store, tmp_path / "cache", SOURCE)
    assert marked == 2
    assert server.calls == [("seen", [f"{1:032x}", f"{2:032x}"])]
    local = store.source(SOURCE)
    assert local is not None
    assert local.unread == 0
    assert all(i.seen for i in store.items(SOURCE) if i.kind != "reply")
    assert mark_source_seen(client(server), store, tmp_path / "cache", SOURCE) == 0
    assert len(server.calls) == 1, "nothing left to mark: the server is not asked"


def test_seen_leaves_a_submission_whose_content_is_not_downloaded_unread(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """A submission this device could not download (missing or corrupted ciphertext) cannot
    have been read here: it is not marked seen, and stays unread for every journalist."""
    store.set_cache(f"{2:032x}", CacheState.MISSING)
    assert mark_source_seen(client(server), store, tmp_path / "cache", SOURCE) == 1
    assert server.calls == [("seen", [f"{1:032x}"])]


def test_deleting_an_item_removes_it_here_with_its_ciphertext(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """delete_item deletes a submission or a reply through the matching call, then drops the
    item here and its cached file; the other items stay."""
    message, reply = store.item(f"{1:032x}"), store.item(f"{4:032x}")
    assert message is not None
    assert reply is not None
    delete_item(client(server), store, tmp_path / "cache", message)
    delete_item(client(server), store, tmp_path / "cache", reply)
    assert server.calls == [("delete submission", message.id), ("delete reply", reply.id)]
    assert store.item_ids() == {f"{2:032x}", f"{3:032x}"}
    assert cached(tmp_path) == {f"{2:032x}", f"{3:032x}"}


def test_an_item_already_deleted_on_the_server_goes_here_too(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """The server's 404 (a colleague deleted it first) is not an error: the item goes here."""
    item = store.item(f"{2:032x}")
    assert item is not None
    del server.items[item.id]
    delete_item(client(server), store, tmp_path / "cache", item)
    assert store.item(item.id) is None
    assert item.id not in cached(tmp_path)


def test_deleting_a_source_removes_it_here_with_every_cached_file(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """delete_source deletes on the server, then forgets the source, its items and their files."""
    removed = delete_source(client(server), store, tmp_path / "cache", SOURCE)
    assert server.calls == [("delete source", SOURCE)]
    assert len(removed) == 4
    assert store.source(SOURCE) is None
    assert store.item_ids() == set()
    assert cached(tmp_path) == set()


def test_a_source_gone_on_the_server_is_forgotten_by_delete_and_refresh(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """With the source deleted on the server by someone else, both delete_source and
    refresh_source forget it here instead of failing."""
    server.source_row = None
    assert len(refresh_source(client(server), store, tmp_path / "cache", SOURCE)) == 4
    assert store.source(SOURCE) is None
    assert cached(tmp_path) == set()
    assert delete_source(client(server), store, tmp_path / "cache", SOURCE) == []


def test_a_refused_delete_changes_nothing_here(
    tmp_path: Path, server: FakeServer, store: Store
) -> None:
    """An error other than 404 (here, the server refusing) propagates, and the local copy and
    its cached files stay as they were."""

    def refuse(source_id: str) -> None:
        raise ApiError(403, "forbidden", "not allowed")

    server.delete_source = refuse  # type: ignore[method-assign]
    before = (store.item_ids(), cached(tmp_path))
    with pytest.raises(ApiError):
        delete_source(client(server), store, tmp_path / "cache", SOURCE)
    assert store.source(SOURCE) is not None
    assert (store.item_ids(), cached(tmp_path)) == before
