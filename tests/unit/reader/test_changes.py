"""sealdrop.reader.sync's changes (star, seen, delete, refresh) through the real ApiClient against
canned answers of the journalist API (httpx.MockTransport): the server is asked first, then the
local copy and its cached ciphertext follow what the server answers.

The answers are fixed JSON written in each test, never computed by a fake: what the local copy
shows after a change is either the server's literal answer (so the test checks that the reader
asked for it and stored it) or counted by the reader itself (which submissions it sends as seen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealdrop.errors import ApiError
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.client import ApiClient
from sealdrop.reader.store import CacheState, Store
from sealdrop.reader.sync import (
    delete_item,
    delete_source,
    mark_source_seen,
    refresh_source,
    star_source,
    sync,
)

SOURCE = "5" * 32
TOKEN = "t" * 43


def item_id(n: int) -> str:
    return f"{n:032x}"


def item_json(n: int, kind: str = "message", seen: bool = False) -> dict[str, Any]:
    """An item as GET /sources/{id}/submissions (or /replies) lists it."""
    return {
        "id": item_id(n),
        "source_id": SOURCE,
        "seq": n,
        "kind": kind,
        "arrival_day": None,
        "size": 100,
        "digest": f"blake3:{n:064x}",
        "seen": seen,
        "metadata": None,
        "author": "reporter" if kind == "reply" else None,
    }


def source_json(*, starred: bool = False, unread: int, submissions: int = 3) -> dict[str, Any]:
    """The source as GET /sources/{id} returns it."""
    return {
        "id": SOURCE,
        "pseudonym": "quiet heron",
        "reply_key": "age1reply",
        "starred": starred,
        "version": 1,
        "created_day": None,
        "submissions": submissions,
        "unread": unread,
    }


class CannedApi:
    """The journalist API as canned answers: (method, path) -> (status, JSON body), set by the
    test; anything else answers the API's 404. Every request the reader sends is logged."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, path, body))
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "no"}})
        status, answer = self.answers.get(
            (request.method, path), (404, {"error": {"code": "not_found", "message": "no such"}})
        )
        return httpx.Response(status, json=answer) if answer is not None else httpx.Response(status)

    def answer(self, method: str, path: str, status: int, body: Any = None) -> None:
        self.answers[(method, path)] = (status, body)

    def serve(self, source: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """What the reads of one source answer from now on."""
        self.answer("GET", f"/sources/{SOURCE}", 200, source)
        submissions = [i for i in items if i["kind"] != "reply"]
        replies = [i for i in items if i["kind"] == "reply"]
        self.answer("GET", f"/sources/{SOURCE}/submissions", 200, {"items": submissions})
        self.answer("GET", f"/sources/{SOURCE}/replies", 200, {"items": replies})

    def gone(self) -> None:
        """The source deleted on the server: its reads answer 404."""
        for path in ("", "/submissions", "/replies"):
            self.answers.pop(("GET", f"/sources/{SOURCE}{path}"), None)

    def changes(self) -> list[tuple[str, str, Any]]:
        """The requests that ask the server to change something (every method but GET)."""
        return [r for r in self.requests if r[0] != "GET"]


def before() -> list[dict[str, Any]]:
    """Two unseen messages, one seen message and a reply."""
    return [item_json(1), item_json(2), item_json(3, seen=True), item_json(4, "reply")]


@pytest.fixture
def api() -> CannedApi:
    canned = CannedApi()
    canned.serve(source_json(unread=2), before())
    return canned


@pytest.fixture
def client(api: CannedApi) -> Iterator[ApiClient]:
    with ApiClient("http://api.test", transport=httpx.MockTransport(api.handle)) as real:
        real.use_token(TOKEN)
        yield real


@pytest.fixture
def store(tmp_path: Path, api: CannedApi, client: ApiClient) -> Iterator[Store]:
    """The local copy of the source, fetched through the client, every item's ciphertext
    cached; the request log starts empty."""
    with Store(tmp_path / "reader.sqlite3") as local:
        refresh_source(client, local, tmp_path / "cache", SOURCE)
        cache = CiphertextCache(tmp_path / "cache")
        for n in (1, 2, 3, 4):
            cache.path(item_id(n)).write_bytes(b"age ciphertext")
            local.set_cache(item_id(n), CacheState.CACHED)
        api.requests.clear()
        yield local


def cached(tmp_path: Path) -> set[str]:
    """The ids whose ciphertext is in the cache folder."""
    return {p.name for p in (tmp_path / "cache").iterdir()}


def test_star_and_unstar_set_the_servers_flag_and_the_local_copy(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """star_source sends the flag, and the local source then shows what the server answers."""
    api.answer("PUT", f"/sources/{SOURCE}/star", 200, source_json(starred=True, unread=2))
    api.serve(source_json(starred=True, unread=2), before())
    star_source(client, store, tmp_path / "cache", SOURCE, True)
    assert api.changes() == [("PUT", f"/sources/{SOURCE}/star", {"starred": True})]
    local = store.source(SOURCE)
    assert local is not None
    assert local.starred

    api.answer("PUT", f"/sources/{SOURCE}/star", 200, source_json(starred=False, unread=2))
    api.serve(source_json(starred=False, unread=2), before())
    star_source(client, store, tmp_path / "cache", SOURCE, False)
    assert api.changes()[-1] == ("PUT", f"/sources/{SOURCE}/star", {"starred": False})
    local = store.source(SOURCE)
    assert local is not None
    assert not local.starred


def test_seen_sends_and_counts_only_the_unseen_submissions_held_here(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """mark_source_seen sends the unseen submissions (not the seen one, not the reply), returns
    how many it sent, and the local copy then shows the server's answer (no unread); with
    nothing left unseen it asks the server nothing."""
    api.answer("POST", "/seen", 200, {"marked": 2})
    after = [item_json(n, seen=True) for n in (1, 2, 3)]
    api.serve(source_json(unread=0), [*after, item_json(4, "reply")])
    assert mark_source_seen(client, store, tmp_path / "cache", SOURCE) == 2
    [(method, path, body)] = api.changes()
    assert (method, path) == ("POST", "/seen")
    assert sorted(body["ids"]) == [item_id(1), item_id(2)]
    local = store.source(SOURCE)
    assert local is not None
    assert local.unread == 0
    assert all(i.seen for i in store.items(SOURCE) if i.kind != "reply")

    assert mark_source_seen(client, store, tmp_path / "cache", SOURCE) == 0
    assert len(api.changes()) == 1, "nothing left to mark: the server is not asked"


def test_seen_leaves_a_submission_whose_content_is_not_downloaded_unread(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """A submission this device could not download (missing or corrupted ciphertext) cannot
    have been read here: it is not sent as seen, and stays unread for every journalist."""
    api.answer("POST", "/seen", 200, {"marked": 1})
    store.set_cache(item_id(2), CacheState.MISSING)
    assert mark_source_seen(client, store, tmp_path / "cache", SOURCE) == 1
    assert api.changes() == [("POST", "/seen", {"ids": [item_id(1)]})]


def test_deleting_an_item_removes_it_here_with_its_ciphertext(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """delete_item deletes a submission or a reply through the matching call, then drops the
    item here and its cached file; the other items stay."""
    message, reply = store.item(item_id(1)), store.item(item_id(4))
    assert message is not None
    assert reply is not None
    api.answer("DELETE", f"/submissions/{message.id}", 204)
    api.answer("DELETE", f"/replies/{reply.id}", 204)
    api.serve(source_json(unread=1, submissions=2), before()[1:])
    delete_item(client, store, tmp_path / "cache", message)
    api.serve(source_json(unread=1, submissions=2), before()[1:3])
    delete_item(client, store, tmp_path / "cache", reply)
    assert api.changes() == [
        ("DELETE", f"/submissions/{message.id}", None),
        ("DELETE", f"/replies/{reply.id}", None),
    ]
    assert store.item_ids() == {item_id(2), item_id(3)}
    assert cached(tmp_path) == {item_id(2), item_id(3)}


def test_an_item_already_deleted_on_the_server_goes_here_too(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """The server's 404 (a colleague deleted it first) is not an error: the item goes here."""
    item = store.item(item_id(2))
    assert item is not None
    api.serve(source_json(unread=1, submissions=2), [before()[0], *before()[2:]])
    delete_item(client, store, tmp_path / "cache", item)  # DELETE answers the default 404
    assert api.changes() == [("DELETE", f"/submissions/{item.id}", None)]
    assert store.item(item.id) is None
    assert item.id not in cached(tmp_path)


def test_deleting_a_source_removes_it_here_with_every_cached_file(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """delete_source deletes on the server, then forgets the source, its items and their files."""
    api.answer("DELETE", f"/sources/{SOURCE}", 204)
    removed = delete_source(client, store, tmp_path / "cache", SOURCE)
    assert api.changes() == [("DELETE", f"/sources/{SOURCE}", None)]
    assert len(removed) == 4
    assert store.source(SOURCE) is None
    assert store.item_ids() == set()
    assert cached(tmp_path) == set()


def test_a_source_gone_on_the_server_is_forgotten_by_delete_and_refresh(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """With the source deleted on the server by someone else (404s), both delete_source and
    refresh_source forget it here instead of failing."""
    api.gone()
    assert len(refresh_source(client, store, tmp_path / "cache", SOURCE)) == 4
    assert store.source(SOURCE) is None
    assert cached(tmp_path) == set()
    assert delete_source(client, store, tmp_path / "cache", SOURCE) == []


def test_a_refused_delete_changes_nothing_here(
    tmp_path: Path, api: CannedApi, client: ApiClient, store: Store
) -> None:
    """An error other than 404 (here, the server refusing) propagates, and the local copy and
    its cached files stay as they were."""
    forbidden = {"error": {"code": "forbidden", "message": "not allowed"}}
    api.answer("DELETE", f"/sources/{SOURCE}", 403, forbidden)
    was = (store.item_ids(), cached(tmp_path))
    with pytest.raises(ApiError) as refused:
        delete_source(client, store, tmp_path / "cache", SOURCE)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert store.source(SOURCE) is not None
    assert (store.item_ids(), cached(tmp_path)) == was


def test_sync_forgets_a_source_the_server_no_longer_lists_except_its_name_while_kept(
    api: CannedApi, client: ApiClient, store: Store, tmp_path: Path
) -> None:
    """A plain sync lists every source: one the server no longer lists (deleted by a colleague
    or by retention) loses its items and cached ciphertext; its row stays only while it is in
    ``keep`` (replies to it wait here), and goes at the next sync without it."""
    api.gone()
    api.answer("GET", "/sources", 200, {"sources": [], "next": None})
    cache = tmp_path / "cache"
    kept = sync(client, store, cache, keep={SOURCE})
    assert sorted(kept.removed) == [item_id(n) for n in (1, 2, 3, 4)]
    assert store.source(SOURCE) is not None
    assert store.items(SOURCE) == []
    assert not any((cache / item_id(n)).exists() for n in (1, 2, 3, 4))
    sync(client, store, cache)
    assert store.source(SOURCE) is None
