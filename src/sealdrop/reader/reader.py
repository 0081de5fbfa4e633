"""The reader as one noun: what a journalist does with it, whichever front end they use.

The command line (``cli/reader.py``) and the local web interface (``reader/ui.py``) both drive a
:class:`Reader`, so that each decision is made once: how an item is shown, what happens after a
reply is sent (a sync, so the reply is in the conversation at once), where an export goes. The
front ends only ask for input and render what comes back.

The API client is opened on first use: reading what is synced (``view``, ``export``, the lists)
works offline and without a valid login.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sealdrop import wire
from sealdrop.crypto.envelope import decrypt_bytes
from sealdrop.crypto.keys import Identity
from sealdrop.errors import (
    ApiError,
    DecryptionError,
    ExportError,
    NotCached,
    NotHere,
    RemoteNotFound,
    ServerUnreachable,
    TokenExpired,
)
from sealdrop.reader import sync as syncing
from sealdrop.reader import triage
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import open_client
from sealdrop.reader.content import (
    DecryptProgress,
    FileInfo,
    decrypt_item,
    file_info,
    reply_key_for,
    seal_reply,
)
from sealdrop.reader.display import (
    CANNOT_DECRYPT,
    FILE_CANNOT_DECRYPT,
    REPLY_CANNOT_DECRYPT,
    not_synced,
    shown_name,
    shown_text,
)
from sealdrop.reader.export import ExportResult
from sealdrop.reader.export import export as export_file
from sealdrop.reader.keystore import public_key
from sealdrop.reader.outbox import Outbox, QueuedReply, ReplyState
from sealdrop.reader.profile import Profile
from sealdrop.reader.store import CacheState, LocalItem, LocalSource, Store

__all__ = ["Exported", "InboxRow", "ItemView", "PendingReply", "Reader"]

LAST_SYNCED = "last_synced"  # state key: when the last complete sync ended (epoch seconds)


@dataclass(frozen=True)
class ItemView:
    """An item as a front end shows it: a message or reply decrypted in memory (``text``), or a
    file's decrypted name and size, or why it cannot be shown (``problem``). Untrusted text is
    already made visible (``display.shown_*``); it still needs the front end's own escaping."""

    item: LocalItem
    text: str | None = None
    name: str | None = None
    size: int | None = None
    problem: str | None = None
    # This device's key cannot open it (see display.WHY_CANNOT_DECRYPT).
    not_for_this_device: bool = False
    content_type: str | None = None  # a file's type, as the source's browser named it


@dataclass(frozen=True)
class InboxRow:
    """A source as the inbox lists it."""

    source: LocalSource
    items: int
    last_day: str | None  # the day of its newest item (ISO), or of its creation
    queued: int  # replies written here and not sent yet


@dataclass(frozen=True)
class PendingReply:
    """A reply in the outbox, decrypted in memory with this device's key (it is sealed to it)."""

    entry: QueuedReply
    text: str | None


@dataclass(frozen=True)
class Exported:
    item: LocalItem
    name: str  # the name the source's browser sent (untrusted: show it with shown_name)
    result: ExportResult


class Reader:
    """One journalist's reader: the data folder (``profile``), its local copy (``store`` and the
    ciphertext cache) and, for what goes to the server, the API client that ``connect`` opens on
    first use."""

    def __init__(self, profile: Profile, store: Store, connect: Callable[[], ApiClient]) -> None:
        self.profile = profile
        self.store = store
        self.cache_dir = profile.cache_dir
        self.cache = CiphertextCache(profile.cache_dir)
        self._connect = connect
        self._client: ApiClient | None = None
        self.outbox = Outbox(store)

    @classmethod
    @contextmanager
    def open(
        cls, profile: Profile, connect: Callable[[], ApiClient] | None = None
    ) -> Iterator[Reader]:
        """The reader of ``profile``; the client comes from the saved login unless ``connect``
        is given (then the caller owns it and closes it)."""
        store = Store(profile.db_path)
        reader = cls(profile, store, connect or (lambda: open_client(profile)))
        try:
            yield reader
        finally:
            store.close()
            if connect is None and reader._client is not None:
                reader._client.close()

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    # -- the local copy --------------------------------------------------------------------

    def sources(self, *, include_spam: bool = True) -> list[tuple[LocalSource, int]]:
        """The synced sources, each with its number of items; without those labelled spam
        unless ``include_spam`` (the default views leave them out)."""
        return [
            (s, len(self.store.items(s.id)))
            for s in self.store.sources()
            if include_spam or not s.spam
        ]

    def inbox(self) -> list[InboxRow]:
        """The synced sources, the one with the newest activity first."""
        queued: dict[str, int] = {}
        for entry in self.outbox.entries():
            queued[entry.source_id] = queued.get(entry.source_id, 0) + 1
        rows = []
        for source in self.store.sources():
            items = self.store.items(source.id)
            days = [i.arrival_day for i in items if i.arrival_day]
            last = max(days) if days else source.created_day
            rows.append(InboxRow(source, len(items), last, queued.get(source.id, 0)))
        # The server's version counter breaks ties within a day: it grows with every change.
        rows.sort(key=lambda row: (row.last_day or "", row.source.version), reverse=True)
        return rows

    def last_synced(self) -> int | None:
        return self.store.state(LAST_SYNCED)

    def source(self, source_id: str) -> LocalSource:
        found = self.store.source(source_id)
        if found is None:
            raise NotHere("no such source")
        return found

    def find_source(self, wanted: str) -> LocalSource:
        """A source by id, pseudonym or the start of its id."""
        found = self.store.source(wanted.lower()) if len(wanted) == 32 else None
        if found is not None:
            return found
        matches = [
            s for s in self.store.sources() if s.pseudonym == wanted or s.id.startswith(wanted)
        ]
        if len(matches) != 1:
            what = "no source" if not matches else "several sources"
            raise NotHere(f"{what} match {wanted!r} (run `sealdrop reader list`)")
        return matches[0]

    def item(self, item_id: str) -> LocalItem:
        found = self.store.item(item_id.lower())
        if found is None:
            raise NotHere("no such item")
        return found

    def items(self, source_id: str) -> list[LocalItem]:
        return self.store.items(source_id)

    def view(
        self, item: LocalItem, identity: Identity, progress: DecryptProgress | None = None
    ) -> ItemView:
        """``item`` as a conversation shows it: text decrypted in memory, or a file's name and
        size (its content is only ever exported)."""
        if item.kind == "file":
            try:
                info = file_info(item, identity)
            except DecryptionError:
                return ItemView(item, problem=FILE_CANNOT_DECRYPT, not_for_this_device=True)
            cached = item.cache is CacheState.CACHED
            problem = None if cached else not_synced(item.cache.value)
            return ItemView(
                item,
                name=shown_name(info.name),
                size=info.size,
                problem=problem,
                content_type=shown_name(info.content_type),
            )
        try:
            plaintext = decrypt_item(self.cache, item, identity, progress)
        except NotCached:
            return ItemView(item, problem=not_synced(item.cache.value))
        except DecryptionError:
            what = REPLY_CANNOT_DECRYPT if item.kind == "reply" else CANNOT_DECRYPT
            return ItemView(item, problem=what, not_for_this_device=True)
        return ItemView(item, text=shown_text(plaintext.decode("utf-8", errors="replace")))

    def pending(self, source_id: str, identity: Identity) -> list[PendingReply]:
        """The source's replies not sent yet, decrypted in memory to be shown with their state."""
        shown = []
        for entry in self.outbox.entries(source_id):
            try:
                text: str | None = shown_text(
                    decrypt_bytes(entry.ciphertext, [identity]).decode("utf-8", errors="replace")
                )
            except DecryptionError:  # queued under another identity of this data folder
                text = None
            shown.append(PendingReply(entry, text))
        return shown

    def file(self, item_id: str, identity: Identity) -> tuple[LocalItem, FileInfo]:
        """A file item and its decrypted metadata (name, type, size: nothing of its content)."""
        item = self.store.item(item_id.lower())
        if item is None or item.kind != "file":
            raise NotHere(f"no file item {item_id!r}")
        return item, file_info(item, identity)

    def file_content(self, item: LocalItem, identity: Identity) -> bytes:
        """A file's plaintext, in memory, for a preview (never written here)."""
        return decrypt_item(self.cache, item, identity)

    def export_folder(self, chosen: Path | None) -> Path:
        """Where an export goes: by default the data folder's exports/ (made 0700 here); another
        folder must exist already (a typo must not create folders elsewhere)."""
        if chosen is None or chosen == self.profile.exports_dir:
            return self.profile.ensure_exports()
        if not chosen.is_dir():
            raise ExportError(f"the folder {chosen} does not exist: create it first")
        return chosen

    def export(
        self,
        item_id: str,
        identity: Identity,
        folder: Path,
        *,
        strip_metadata: bool = True,
        keep_original: bool = False,
        progress: DecryptProgress | None = None,
    ) -> Exported:
        """Decrypt a file item into ``folder`` through mat2 (see ``export.export``)."""
        item = self.store.item(item_id.lower())
        if item is None or item.kind != "file":
            raise NotHere(f"no file item {item_id!r}")
        info = file_info(item, identity)
        plaintext = decrypt_item(self.cache, item, identity, progress)
        result = export_file(
            plaintext,
            info.name,
            folder,
            strip_metadata=strip_metadata,
            keep_original=keep_original,
        )
        return Exported(item, info.name, result)

    # -- changes: to the server first, then here (see sync.py) -----------------------------

    def sync(self, progress: syncing.Progress | None = None) -> syncing.SyncReport:
        """Send the queued replies, then bring the local copy up to date; remembers the
        journalists' reply keys (for a reply written offline) and when it finished."""
        self.send_queued()
        # A source deleted on the server keeps its name here while replies to it wait (failed).
        waiting = {entry.source_id for entry in self.outbox.entries()}
        report = syncing.sync(self.client, self.store, self.cache_dir, progress, keep=waiting)
        self.outbox.remember_keys(self.client.reply_keys())
        self.store.set_state(LAST_SYNCED, int(time.time()))
        return report

    def queue_reply(self, source_id: str, text: str) -> QueuedReply:
        """Seal ``text`` to the source, every journalist device and this one, and queue it.

        The journalists' keys are asked for now if the server answers, otherwise those of the
        last sync are used: a reply written offline reaches the colleagues known then. This
        device's own key (from its public key file: no passphrase needed) is always added, so
        that the queued reply can be shown here."""
        source = self.source(source_id)
        with contextlib.suppress(ServerUnreachable, TokenExpired):
            self.outbox.remember_keys(self.client.reply_keys())
        others = [*self.outbox.keys(), public_key(self.profile.identity_path)]
        keys = [self._reply_key(source, others), *others]
        return self.outbox.add(source.id, seal_reply(text, keys))

    def _reply_key(self, source: LocalSource, others: list[str]) -> str:
        return reply_key_for(
            source.reply_key, others, lambda: self.client.source(source.id).reply_key
        )

    def send_queued(self) -> int:
        """Upload the queued replies, oldest first; returns how many went out. A refusal marks
        the reply failed (to retry or discard); an unreachable server or an expired login puts
        it back in the queue and propagates."""
        sent = 0
        for entry in self.outbox.to_send():
            if not self.outbox.claim(entry.id):
                continue  # another sync (the other front end) is sending it
            try:
                self.client.upload_reply(entry.source_id, entry.ciphertext)
            except (ServerUnreachable, TokenExpired):
                self.outbox.set_state(entry.id, ReplyState.QUEUED)
                raise
            except RemoteNotFound:
                self.outbox.set_state(entry.id, ReplyState.FAILED, "the source no longer exists")
            except ApiError as exc:
                self.outbox.set_state(entry.id, ReplyState.FAILED, str(exc))
            else:
                self.outbox.remove(entry.id)
                sent += 1
        return sent

    def retry_reply(self, reply_id: str) -> None:
        """Put a failed reply back in the queue (the next sync sends it)."""
        if self.outbox.get(reply_id) is None:
            raise NotHere("no such reply waiting")
        self.outbox.set_state(reply_id, ReplyState.QUEUED)

    def discard_reply(self, reply_id: str) -> None:
        self.outbox.remove(reply_id)

    def star(self, source_id: str, starred: bool) -> None:
        syncing.star_source(self.client, self.store, self.cache_dir, source_id, starred)

    def assign(self, source_id: str, username: str | None) -> None:
        """Assign the source to a journalist (an enabled account's username), or to nobody."""
        triage.assign_source(self.client, self.store, self.cache_dir, source_id, username)

    def hold(self, source_id: str, hold: bool) -> None:
        """Put the source on hold, exempt from the server's retention rules (or take it off)."""
        triage.hold_source(self.client, self.store, self.cache_dir, source_id, hold)

    def set_labels(self, source_id: str, labels: list[str]) -> None:
        """Replace the source's labels (shared by every journalist)."""
        triage.set_source_labels(self.client, self.store, self.cache_dir, source_id, labels)

    def change_labels(
        self, source_id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        """Add and remove labels, keeping the others the source has on the server now."""
        triage.change_source_labels(
            self.client, self.store, self.cache_dir, source_id, add or [], remove or []
        )

    def journalists(self) -> list[str]:
        """The usernames a source can be assigned to (every enabled account; needs the server)."""
        return self.client.journalists()

    def seen(self, source_id: str) -> int:
        return syncing.mark_source_seen(self.client, self.store, self.cache_dir, source_id)

    def delete_source(self, source_id: str) -> list[str]:
        return syncing.delete_source(self.client, self.store, self.cache_dir, source_id)

    def delete_item(self, item: LocalItem) -> None:
        syncing.delete_item(self.client, self.store, self.cache_dir, item)

    def send_reply(self, source_id: str, text: str) -> tuple[wire.Item, syncing.SyncReport]:
        """Encrypt ``text`` here to the source and every journalist's key, upload it, then sync,
        so that the reply is in the conversation (and cached) at once, on either front end."""
        source = self.source(source_id)
        others = self.client.reply_keys()
        ciphertext = seal_reply(text, [self._reply_key(source, others), *others])
        sent = self.client.upload_reply(source.id, ciphertext)
        return sent, self.sync()
