"""One sync with the server: new and changed sources, their item lists, missing ciphertext.

It is built to be interrupted. Metadata goes first, a page of sources at a time, each source in
one transaction; the watermark moves past a page only once every source on it is stored. Ciphertext
is fetched afterwards for every item not cached (whatever sync listed it), resuming ``.part``
files. So a sync stopped anywhere (server gone, token expired, laptop closed) loses nothing, and
the next one, with idempotent upserts, duplicates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sealdrop.reader.client import ApiClient, ApiError, Corrupted, RemoteNotFound
from sealdrop.reader.store import CacheState, CiphertextCache, LocalItem, Store

PAGE_SIZE = 50

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
    full: bool = False,
) -> SyncReport:
    """Bring ``store`` and the cache in ``cache_dir`` up to date with the server.

    ``full`` lists every source from the start and forgets local sources the server no longer
    has (a deleted source never shows up as a change). :class:`TokenExpired` and
    :class:`ServerUnreachable` propagate; what was stored by then stays, and the next sync goes on.
    """
    cache = CiphertextCache(cache_dir)
    report = SyncReport()
    _sync_metadata(client, store, cache, report, page_size, full)
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
                items = client.submissions(source.id) + client.replies(source.id)
            except RemoteNotFound:
                _forget(store, cache, source.id, report)  # deleted since the listing
                continue
            gone = store.save_source(source, items)
            for item_id in gone:
                cache.remove(item_id)
            report.removed += gone
            report.sources += 1
        if page.sources:
            watermark = max(watermark, max(s.version for s in page.sources))
            store.set_watermark(watermark)
    if full:
        for source_id in store.source_ids() - listed:
            _forget(store, cache, source_id, report)


def _forget(store: Store, cache: CiphertextCache, source_id: str, report: SyncReport) -> None:
    gone = store.delete_source(source_id)
    for item_id in gone:
        cache.remove(item_id)
    report.removed += gone


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
        client.download(item.content_path, cache.path(item.id), item.sha256, advance)
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
