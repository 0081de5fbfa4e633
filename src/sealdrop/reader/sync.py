"""One sync with the server: new and changed sources, their item lists, missing ciphertext.

It is built to be interrupted. Metadata goes first, a page of sources at a time, each source in
one transaction; the watermark moves past a page only once every source on it is stored. Ciphertext
is fetched afterwards for every item not cached (whatever sync listed it), resuming ``.part``
files. So a sync stopped anywhere (server gone, token expired, laptop closed) loses nothing, and
the next one, with idempotent upserts, duplicates nothing.

The changes a journalist makes (star, seen, delete) go to the server first; the source is then
stored as the server has it now (``refresh_source``), so the local copy never claims what the
server did not do. The local interface and the command line both make them through here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from sealdrop import wire
from sealdrop.errors import ApiError, Corrupted, RemoteNotFound
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.client import ApiClient
from sealdrop.reader.store import CacheState, LocalItem, Store

# The API's largest page: every sync lists every source (see ``sync``), so fewer requests.
PAGE_SIZE = 200

Progress = Callable[[LocalItem, int, int], None]
"""Called as ciphertext arrives: the item, bytes so far, bytes in all."""


@dataclass
class SyncReport:
    sources: int = 0  # sources whose metadata was refreshed
    downloaded: list[str] = field(default_factory=list)  # item ids now cached
    corrupted: list[str] = field(default_factory=list)  # digest mismatch: not cached
    failed: list[str] = field(default_factory=list)  # the server refused the download
    removed: list[str] = field(default_factory=list)  # items (or sources) deleted on the server


def sync(
    client: ApiClient,
    store: Store,
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    page_size: int = PAGE_SIZE,
    full: bool = True,
    keep: Collection[str] = (),
) -> SyncReport:
    """Bring ``store`` and the cache in ``cache_dir`` up to date with the server.

    ``full`` (the default) lists every source from the start and forgets local sources the
    server no longer has: a deleted source never shows up as a change, and sources go without
    anyone here asking (a colleague's delete, the server's retention rules), so that what the
    server dropped leaves this computer at the next sync. A source whose version did not move
    costs only its line in the listing. ``full=False`` lists only what changed since the last
    sync. Of a source the server no longer has whose id is in ``keep`` (one with replies waiting
    here, failed or queued: the journalist must see why they failed), only the items go; its
    name stays until those replies are discarded. :class:`TokenExpired` and
    :class:`ServerUnreachable` propagate; what was stored by then stays, and the next sync goes on.
    """
    cache = CiphertextCache(cache_dir)
    report = SyncReport()
    _sync_metadata(client, store, cache, report, page_size, full, keep)
    store.check_cache(cache)
    cache.prune(store.item_ids())
    for item in store.items_to_fetch():
        _fetch(client, store, cache, item, report, progress)
    return report


def _sync_metadata(
    client: ApiClient,
    store: Store,
    cache: CiphertextCache,
    report: SyncReport,
    page_size: int,
    full: bool,
    keep: Collection[str],
) -> None:
    start = 0 if full else store.watermark()
    watermark = store.watermark()
    listed: set[str] = set()
    for page in client.list_sources(start, page_size):
        for source in page.sources:
            listed.add(source.id)
            known = store.source(source.id)
            if known is not None and known.items_version == source.version:
                continue  # its items were stored at this version already (an interrupted sync)
            try:
                items = _items(client, source.id)
            except RemoteNotFound:  # deleted since the listing
                report.removed += _forget(store, cache, source.id, source.id in keep)
                continue
            report.removed += _save(store, cache, source, items)
            report.sources += 1
        if page.sources:
            watermark = max(watermark, max(s.version for s in page.sources))
            store.set_watermark(watermark)
    if full:
        for source_id in store.source_ids() - listed:
            report.removed += _forget(store, cache, source_id, source_id in keep)


def _items(client: ApiClient, source_id: str) -> list[wire.Item]:
    """A source's complete item list on the server: submissions and replies."""
    return client.submissions(source_id) + client.replies(source_id)


def _save(
    store: Store, cache: CiphertextCache, source: wire.Source, items: list[wire.Item]
) -> list[str]:
    """Store ``source`` with ``items``; the ciphertext of items no longer listed goes too."""
    gone = store.save_source(source, items)
    for item_id in gone:
        cache.remove(item_id)
    return gone


def _forget(
    store: Store, cache: CiphertextCache, source_id: str, keep_row: bool = False
) -> list[str]:
    """Drop a source (``keep_row``: only its items), its items and their cached ciphertext here;
    returns the item ids."""
    gone = store.delete_source(source_id, keep_row=keep_row)
    for item_id in gone:
        cache.remove(item_id)
    return gone


def _fetch(
    client: ApiClient,
    store: Store,
    cache: CiphertextCache,
    item: LocalItem,
    report: SyncReport,
    progress: Progress | None,
) -> None:
    done = 0

    def advance(received: int) -> None:
        nonlocal done
        done += received
        if progress is not None:
            progress(item, done, item.size)

    try:
        client.download(item.content_path, cache.path(item.id), item.digest, advance)
    except Corrupted:
        # Never kept: the client deleted the partial file; the next sync tries again.
        cache.remove(item.id)
        store.set_cache(item.id, CacheState.CORRUPTED)
        report.corrupted.append(item.id)
        return
    except ApiError:
        # Deleted since it was listed (the next sync drops it), or refused: the rest goes on.
        report.failed.append(item.id)
        return
    store.set_cache(item.id, CacheState.CACHED)
    report.downloaded.append(item.id)


# -- changes ---------------------------------------------------------------------------------


def refresh_source(client: ApiClient, store: Store, cache_dir: Path, source_id: str) -> list[str]:
    """Store one source as the server has it now, with its complete item list, and remove the
    cached ciphertext of items the server no longer lists; returns their ids.

    Needed after a change because seen and star marks may not change the version an incremental
    sync looks at. A source the server no longer has is forgotten here too, as a full sync would.
    """
    cache = CiphertextCache(cache_dir)
    try:
        remote = client.source(source_id)
        items = _items(client, source_id)
    except RemoteNotFound:
        return _forget(store, cache, source_id)
    return _save(store, cache, remote, items)


def star_source(
    client: ApiClient, store: Store, cache_dir: Path, source_id: str, starred: bool
) -> None:
    """Set or clear the source's star (one flag, shared by every journalist)."""
    client.set_starred(source_id, starred)
    refresh_source(client, store, cache_dir, source_id)


def mark_source_seen(client: ApiClient, store: Store, cache_dir: Path, source_id: str) -> int:
    """Mark the source's submissions held here as seen by this journalist; returns how many
    were marked.

    Only what this device has: a submission that arrived since the last sync, or whose content
    is not downloaded (a failed or pending download), is still unread, as it should be, since
    the journalist cannot have read it. Replies are left alone, as they count for nobody's
    unread.
    """
    unseen = [
        i.id
        for i in store.items(source_id)
        if not i.seen and i.kind != "reply" and i.cache is CacheState.CACHED
    ]
    if unseen:
        client.mark_seen(unseen)
    refresh_source(client, store, cache_dir, source_id)
    return len(unseen)


def delete_source(client: ApiClient, store: Store, cache_dir: Path, source_id: str) -> list[str]:
    """Delete a source and all its items on the server, then here with their cached ciphertext;
    returns the item ids removed here."""
    # The server answers 404 for a source deleted already (by a colleague, say): forgetting it
    # here is all that is left to do.
    with contextlib.suppress(RemoteNotFound):
        client.delete_source(source_id)
    return _forget(store, CiphertextCache(cache_dir), source_id)


def delete_item(client: ApiClient, store: Store, cache_dir: Path, item: LocalItem) -> None:
    """Delete one submission or reply on the server, then here with its cached ciphertext."""
    # As for a source: 404 means it is gone already, and the refresh below drops it here.
    with contextlib.suppress(RemoteNotFound):
        if item.kind == "reply":
            client.delete_reply(item.id)
        else:
            client.delete_submission(item.id)
    refresh_source(client, store, cache_dir, item.source_id)
