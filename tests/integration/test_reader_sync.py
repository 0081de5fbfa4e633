"""The reader's sync against a real server: it caches exactly the server's ciphertext, verified,
resumable and incremental; altered blobs are reported corrupted and never cached; an interrupted
sync (server gone, token revoked) goes on next time without losing or duplicating anything;
deletions on the server disappear locally; no plaintext lands in the reader's data folder.

One server serves the module (logins are rate-limited and cost an Argon2 verification); every
test syncs into a fresh data folder and makes the sources it looks at.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from support_api import (
    Account,
    age_decrypt,
    age_keygen,
    blob_files,
    cli_account,
    encrypt_reply,
    new_source,
    start_instance,
)
from support_http import JournalistKey, Source, setup_cli

from sealdrop.config import load_settings
from sealdrop.errors import ServerUnreachable, TokenExpired
from sealdrop.ids import SourceId
from sealdrop.reader.client import ApiClient, content_path
from sealdrop.reader.download import DownloadResult, Progress
from sealdrop.reader.store import CacheState, Store
from sealdrop.reader.sync import SyncReport, sync
from sealdrop.services.retention import Retention, Rules, jitter_key
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock, ServerProcess
from sealdrop.wire import Item as RemoteItem
from support_digests import blake3_digest

KiB = 1024


@dataclass
class Deployment:
    instance: Path
    server: ServerProcess
    journalist: Account
    client: ApiClient
    device: JournalistKey

    def login(self) -> None:
        j = self.journalist
        self.client.login(j.username, j.passphrase, j.fresh_code())


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A server whose only recipient is the journalist's reader device, registered over the API."""
    root = tmp_path_factory.mktemp("reader-sync")
    instance, server = start_instance(root)
    try:
        journalist = cli_account(instance, "reporter")
        client = ApiClient(server.api_url)
        device = age_keygen(root / "device.txt")
        found = Deployment(instance, server, journalist, client, device)
        found.login()
        client.register_key(device.recipient, "laptop")
        assert [k.public_key for k in client.me().keys] == [device.recipient]
        yield found
        client.close()
    finally:
        server.stop()


@dataclass
class Reader:
    folder: Path
    store: Store
    cache: Path

    def sync(self, client: ApiClient, **kwargs: int | bool) -> SyncReport:
        return sync(client, self.store, self.cache, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    folder = tmp_path / "reader-data"
    store = Store(folder / "reader.sqlite3")
    yield Reader(folder, store, folder / "cache")
    store.close()


def submit(server: ServerProcess, message: str, files: list[tuple[str, bytes, str]]) -> Source:
    source, _ = new_source(server, message, files=files)
    return source


def items_of(client: ApiClient, message: str) -> tuple[str, list[RemoteItem]]:
    """The source whose first submission is this message (found by its latest change)."""
    page = client.source_page(0, 200)
    newest = max(page.sources, key=lambda s: s.version)
    return newest.id, client.submissions(newest.id)


def server_blob(instance: Path, digest: str) -> Path:
    (path,) = [p for p in blob_files(instance) if blake3_digest(p.read_bytes()) == digest]
    return path


def assert_no_plaintext(folder: Path, *canaries: bytes) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary not in data, f"plaintext in {path}"


class FlakyClient(ApiClient):
    """A client whose connection breaks after ``downloads`` downloads."""

    def __init__(self, base: ApiClient, downloads: int) -> None:
        self.__dict__.update(base.__dict__)
        self.left = downloads

    def download(
        self, path: str, dest: Path, expected_digest: str, progress: Progress | None = None
    ) -> DownloadResult:
        if self.left == 0:
            raise ServerUnreachable("connection failed: test")
        self.left -= 1
        return super().download(path, dest, expected_digest, progress)


class RecordingClient(ApiClient):
    """A client that remembers how each download went."""

    def __init__(self, base: ApiClient) -> None:
        self.__dict__.update(base.__dict__)
        self.results: dict[str, DownloadResult] = {}

    def download(
        self, path: str, dest: Path, expected_digest: str, progress: Progress | None = None
    ) -> DownloadResult:
        result = super().download(path, dest, expected_digest, progress)
        self.results[dest.name] = result
        return result


def test_sync_caches_the_servers_ciphertext_and_then_only_what_is_new(
    deployment: Deployment, reader: Reader
) -> None:
    """Sync caches a message and a file byte-identical to the server's blobs, which stock
    `age -d` opens to the originals; a second sync fetches nothing; a new submission and a reply
    are all the next one fetches; no plaintext and nothing world-readable in the data folder."""
    client, instance = deployment.client, deployment.instance
    canary = "CANARY-message-7f3a9c"
    content = b"CANARY-file-0b44e1 " + os.urandom(64 * KiB)
    source = submit(deployment.server, canary, [("secret plan ✓.pdf", content, "application/pdf")])
    source_id, items = items_of(client, canary)
    message, file = sorted(items, key=lambda i: i.seq)

    first = reader.sync(client)
    assert {message.id, file.id} <= set(first.downloaded)
    assert first.corrupted == first.failed == []
    for item in (message, file):
        cached = reader.cache / item.id
        assert cached.read_bytes() == server_blob(instance, item.digest).read_bytes()
        assert reader.store.item(item.id).cache is CacheState.CACHED  # type: ignore[union-attr]
    identity = deployment.device.identity_file
    assert age_decrypt(identity, (reader.cache / message.id).read_bytes()) == canary.encode()
    assert age_decrypt(identity, (reader.cache / file.id).read_bytes()) == content
    stored_file = reader.store.item(file.id)
    assert stored_file is not None
    assert stored_file.metadata is not None
    assert json.loads(age_decrypt(identity, stored_file.metadata))["filename"] == (
        "secret plan ✓.pdf"
    )
    local = reader.store.source(source_id)
    assert local is not None
    assert local.submissions == 2
    assert local.unread == 2

    again = reader.sync(client)
    assert again.downloaded == again.corrupted == again.failed == []
    assert again.sources == 0

    source.submit("CANARY-second-5d21aa")
    remote = client.source(source_id)
    reply_text = "CANARY-reply-93be10"
    reply = client.upload_reply(
        source_id, encrypt_reply(reply_text, remote.reply_key, deployment.device.recipient)
    )
    third = reader.sync(client)
    newest = max(client.submissions(source_id), key=lambda i: i.seq)
    assert sorted(third.downloaded) == sorted([newest.id, reply.id])
    assert third.sources == 1
    assert age_decrypt(identity, (reader.cache / reply.id).read_bytes()) == reply_text.encode()
    assert reader.store.item(reply.id).author == "reporter"  # type: ignore[union-attr]
    assert [i.seq for i in reader.store.items(source_id) if i.kind != "reply"] == [1, 2, 3]

    assert_no_plaintext(
        reader.folder,
        canary.encode(),
        b"CANARY-file-0b44e1",
        b"CANARY-second-5d21aa",
        reply_text.encode(),
        b"secret plan",
    )
    for path in reader.folder.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    source.http.close()


def test_a_blob_altered_on_the_server_is_reported_corrupted_and_the_rest_syncs(
    deployment: Deployment, reader: Reader
) -> None:
    """A file whose ciphertext was changed on the server is reported corrupted, never cached
    (no file, no .part); the message next to it is cached; once repaired, it syncs."""
    client, instance = deployment.client, deployment.instance
    source = submit(deployment.server, "next to an altered file", [("a.bin", b"x" * 5000, "")])
    _, items = items_of(client, "next to an altered file")
    message, file = sorted(items, key=lambda i: i.seq)
    blob = server_blob(instance, file.digest)
    original = blob.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01  # same size, one bit flipped
    blob.write_bytes(bytes(altered))
    try:
        report = reader.sync(client)
        assert report.corrupted == [file.id]
        assert message.id in report.downloaded
        assert file.id not in report.downloaded
        assert reader.store.item(file.id).cache is CacheState.CORRUPTED  # type: ignore[union-attr]
        assert not (reader.cache / file.id).exists()
        assert not (reader.cache / f"{file.id}.part").exists()
        assert (reader.cache / message.id).is_file()
    finally:
        blob.write_bytes(original)
    repaired = reader.sync(client)
    assert repaired.downloaded == [file.id]
    assert repaired.corrupted == []
    assert (reader.cache / file.id).read_bytes() == original
    source.http.close()


def set_digest(instance: Path, item_id: str, digest: str) -> None:
    """Give a submission's row another digest, as migration 0009 leaves older rows."""
    database = SqlDatabase(load_settings(instance).database_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(
                text("UPDATE submissions SET digest = :digest WHERE id = :id"),
                {"digest": digest, "id": item_id},
            )
    finally:
        database.close()


def test_items_stored_before_blake3_sync_with_the_digest_they_have(
    deployment: Deployment, reader: Reader
) -> None:
    """An item whose row holds a SHA-256 digest (stored before BLAKE3, "sha256:HEX" since
    migration 0009) is announced, sent with that ETag and checked with SHA-256, so an altered
    blob is still caught; an item stored before digests were kept ('') is announced with none,
    downloads, and is left to age's own check at decryption."""
    client, instance = deployment.client, deployment.instance
    submit(deployment.server, "stored long ago", [("old.bin", b"o" * 3000, "")])
    _, items = items_of(client, "stored long ago")
    message, file = sorted(items, key=lambda i: i.seq)
    blob = server_blob(instance, file.digest)
    original = blob.read_bytes()
    old_digest = "sha256:" + hashlib.sha256(original).hexdigest()
    set_digest(instance, file.id, old_digest)
    set_digest(instance, message.id, "")
    _, items = items_of(client, "stored long ago")
    assert sorted((i.seq, i.digest) for i in items) == [(1, ""), (2, old_digest)]

    altered = bytearray(original)
    altered[-20] ^= 0x01
    blob.write_bytes(bytes(altered))
    try:
        report = reader.sync(client)
        assert report.corrupted == [file.id]
        assert message.id in report.downloaded
    finally:
        blob.write_bytes(original)
    repaired = reader.sync(client)
    assert repaired.downloaded == [file.id]
    assert (reader.cache / file.id).read_bytes() == original
    assert reader.store.item(file.id).digest == old_digest  # type: ignore[union-attr]


def test_a_sync_cut_short_goes_on_next_time_without_loss_or_duplicates(
    deployment: Deployment, reader: Reader
) -> None:
    """A connection lost after one download, and then a stopped server, leave a store that the
    next sync completes: every item cached once, each downloaded exactly once overall."""
    client = deployment.client
    for n in range(2):
        submit(deployment.server, f"interrupted {n}", [(f"f{n}.txt", b"y" * 3000, "")])
    flaky = FlakyClient(client, downloads=1)
    with pytest.raises(ServerUnreachable):
        reader.sync(flaky, page_size=1)
    watermark = reader.store.watermark()
    assert watermark == max(s.version for s in client.source_page(0, 200).sources)
    cached_before = {i.id for i in reader.store.items() if i.cache is CacheState.CACHED}
    assert len(cached_before) == 1

    deployment.server.stop()
    try:
        with pytest.raises(ServerUnreachable):
            reader.sync(client)
    finally:
        deployment.server.start()
    assert reader.store.watermark() == watermark

    report = reader.sync(client)
    assert report.sources == 0  # metadata was all stored already
    assert not set(report.downloaded) & cached_before
    assert len(report.downloaded) == len(set(report.downloaded))
    items = reader.store.items()
    assert all(i.cache is CacheState.CACHED for i in items)
    server_ids = {
        i.id
        for s in client.source_page(0, 200).sources
        for i in client.submissions(s.id) + client.replies(s.id)
    }
    assert {i.id for i in items} == server_ids
    assert set(report.downloaded) | cached_before == server_ids
    assert not list(reader.cache.glob("*.part"))


def test_a_revoked_token_surfaces_and_the_sync_resumes_after_login(
    deployment: Deployment, reader: Reader
) -> None:
    """`sealdrop token revoke` makes the next sync raise TokenExpired with nothing half-stored;
    after a new login the same store syncs to completion."""
    client = deployment.client
    submit(deployment.server, "before the revocation", [])
    setup_cli("token", "revoke", deployment.instance, deployment.journalist.username)
    with pytest.raises(TokenExpired):
        reader.sync(client)
    assert reader.store.items() == []
    assert not client.logged_in
    assert "Bearer" not in repr(client)
    deployment.login()
    report = reader.sync(client)
    assert report.downloaded
    assert all(i.cache is CacheState.CACHED for i in reader.store.items())


def test_a_partial_download_resumes_with_a_range_request(
    deployment: Deployment, reader: Reader
) -> None:
    """A .part holding the first half of a blob is completed by asking for the rest only."""
    client = deployment.client
    submit(deployment.server, "a large file", [("big.bin", os.urandom(300 * KiB), "")])
    _, items = items_of(client, "a large file")
    file = max(items, key=lambda i: i.seq)
    whole = server_blob(deployment.instance, file.digest).read_bytes()
    half = len(whole) // 2
    reader.cache.mkdir(parents=True, exist_ok=True)
    (reader.cache / f"{file.id}.part").write_bytes(whole[:half])

    recording = RecordingClient(client)
    report = reader.sync(recording)
    assert file.id in report.downloaded
    assert recording.results[file.id] == DownloadResult(
        size=len(whole), resumed_from=half, received=len(whole) - half
    )
    assert (reader.cache / file.id).read_bytes() == whole
    assert not (reader.cache / f"{file.id}.part").exists()

    # A stale prefix that does not belong to the blob: one fresh download, verified.
    dest = reader.folder / "direct"
    dest.with_name("direct.part").write_bytes(b"\0" * half)
    result = client.download(content_path(file.kind, file.id), dest, file.digest)
    assert result.resumed_from == 0
    assert result.received == len(whole)
    assert dest.read_bytes() == whole


def test_deletions_on_the_server_disappear_locally(deployment: Deployment, reader: Reader) -> None:
    """A deleted submission goes from the store and the cache at the next sync; a deleted
    source goes at the next full sync."""
    client = deployment.client
    submit(deployment.server, "soon deleted", [("gone.txt", b"z" * 2000, "")])
    source_id, items = items_of(client, "soon deleted")
    message, file = sorted(items, key=lambda i: i.seq)
    reader.sync(client)
    assert (reader.cache / file.id).is_file()

    client.delete_submission(file.id)
    report = reader.sync(client)
    assert report.removed == [file.id]
    assert reader.store.item(file.id) is None
    assert not (reader.cache / file.id).exists()
    assert reader.store.item(message.id) is not None

    client.delete_source(source_id)
    full = reader.sync(client, full=True)
    assert full.removed == [message.id]
    assert reader.store.source(source_id) is None
    assert not (reader.cache / message.id).exists()
    assert reader.store.watermark() > 0


def test_what_retention_deleted_on_the_server_leaves_at_the_next_sync(
    deployment: Deployment, reader: Reader
) -> None:
    """Retention (run on the server's database with the clock moved two months on) deletes one
    source whole and another's first submission; the reader's next plain sync drops both from
    its store and its cache, and keeps the rest."""
    client = deployment.client
    submit(deployment.server, "idle source", [("idle.txt", b"i" * 2000, "")])
    idle_id, idle_items = items_of(client, "idle source")
    kept_source = submit(deployment.server, "expiring message", [])
    kept_source.submit("second message")
    kept_id, kept_items = items_of(client, "expiring message")
    expiring, second = sorted(kept_items, key=lambda i: i.seq)
    reader.sync(client)
    for item in [*idle_items, expiring, second]:
        assert (reader.cache / item.id).is_file()

    settings = load_settings(deployment.instance)
    database = SqlDatabase(settings.database_url)
    blobs = FilesystemBlobStore(settings.blob_dir)
    later = FakeClock(time.time() + 60 * 86400)
    key = jitter_key(settings.kdf_salt.reveal())
    try:
        # Aimed at this test's objects only: the module's other sources stay for its other tests.
        idle = Retention(database, blobs, later, Rules(idle_source_days=30), key)
        plan = idle.plan()
        assert idle_id in plan.sources
        plan.sources = [SourceId(idle_id)]
        assert idle.run(plan).sources == 1
        expire = Retention(database, blobs, later, Rules(submissions_days=30), key)
        plan = expire.plan()
        plan.submissions = {
            SourceId(kept_id): [
                i for i in plan.submissions[SourceId(kept_id)] if i.id == expiring.id
            ]
        }
        assert expire.run(plan).submissions == 1
    finally:
        database.close()

    report = reader.sync(client)
    assert sorted(report.removed) == sorted([*(i.id for i in idle_items), expiring.id])
    assert reader.store.source(idle_id) is None
    assert reader.store.item(expiring.id) is None
    for item in [*idle_items, expiring]:
        assert not (reader.cache / item.id).exists()
    assert (reader.cache / second.id).is_file()
    kept_source.http.close()
