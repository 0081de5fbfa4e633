"""The blob store's contract (``storage/blobs.py``), on every backend: the filesystem and S3
(a real SeaweedFS server). What only one backend does (file modes, fsync order, multipart
uploads) is in test_blobs_fs.py and test_blobs_s3.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealdrop.errors import BlobNotFound, StorageError
from sealdrop.ids import BlobKey, new_id
from sealdrop.storage.blobs import BlobStore, S3Location
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.blobs_s3 import S3BlobStore
from sealdrop.testing_s3 import SeaweedFS
from support_digests import blake3_digest


@dataclass
class Backend:
    store: BlobStore
    # What is staged but not committed: files in staging/, or multipart uploads in progress.
    leftovers: Callable[[], list[str]]
    # The same kind of store where its place is gone: the folders removed, a bucket that does
    # not exist.
    gone: Callable[[], BlobStore]


def fs_backend(tmp_path: Path) -> Backend:
    store = FilesystemBlobStore(tmp_path / "store")

    def gone() -> BlobStore:
        lost = FilesystemBlobStore(tmp_path / "lost")
        shutil.rmtree(tmp_path / "lost")  # as a disk no longer mounted
        return lost

    return Backend(store, lambda: os.listdir(tmp_path / "store" / "staging"), gone)


def s3_backend(seaweedfs: SeaweedFS, location: S3Location) -> Backend:
    client = seaweedfs.client()
    store = S3BlobStore(client, location)

    def uploads() -> list[str]:
        answer = client.list_multipart_uploads(Bucket=location.bucket, Prefix=location.prefix)
        return [upload["Key"] for upload in answer.get("Uploads", [])]

    return Backend(store, uploads, lambda: S3BlobStore(client, S3Location("no-such-bucket", "")))


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "fs":
        return fs_backend(tmp_path)
    return s3_backend(request.getfixturevalue("seaweedfs"), request.getfixturevalue("s3_location"))


def test_probe_reaches_the_store_and_fails_where_it_is_gone(backend: Backend) -> None:
    """probe() (the readiness check, every 10 s) succeeds on a working store without staging or
    writing anything, and raises StorageError where the store's place is gone."""
    backend.store.probe()
    assert list(backend.store.keys()) == []
    assert backend.leftovers() == []
    with pytest.raises(StorageError):
        backend.gone().probe()


def test_commit_makes_the_exact_bytes_visible(backend: Backend) -> None:
    """After commit the blob reads back byte for byte, under a fresh 32-hex key, with its size."""
    store = backend.store
    payload = [b"age-encryption.org/v1\n", os.urandom(70_000), b""]
    with store.stage() as staged:
        for chunk in payload:
            assert staged.write(chunk) == len(chunk)
        staged.flush()
        key, size = staged.commit()
    assert size == sum(map(len, payload))
    assert len(key) == 32
    assert int(key, 16) >= 0
    with store.open(key) as f:
        assert f.read() == b"".join(payload)
    assert store.size(key) == size
    assert list(store.keys()) == [key]
    assert backend.leftovers() == []


def test_digest_is_blake3_of_the_bytes_written(backend: Backend) -> None:
    """digest is "blake3:" and the BLAKE3 of everything written, known before commit (computed
    while writing, never by reading back), unchanged by commit, and BLAKE3 of b"" when empty."""
    store = backend.store
    chunks = [b"age-encryption.org/v1\n", os.urandom(200_000), b"", b"tail"]
    with store.stage() as staged:
        assert staged.digest == blake3_digest(b"")
        for chunk in chunks:
            staged.write(chunk)
        digest = staged.digest
        key, _ = staged.commit()
        assert staged.digest == digest
    with store.open(key) as f:
        content = f.read()
    assert digest == blake3_digest(content) == blake3_digest(b"".join(chunks))
    with store.stage() as empty:
        key, size = empty.commit()
        assert empty.digest == blake3_digest(b"")
    assert size == store.size(key) == 0
    with store.open(key) as f:
        assert f.read() == b""


def test_a_blob_reads_from_any_offset(backend: Backend) -> None:
    """open() gives a seekable stream: the API's Range downloads seek, then read to the end or a
    given length, and a seek back reads the start again."""
    store = backend.store
    data = os.urandom(300_000)
    with store.stage() as staged:
        staged.write(data)
        key, _ = staged.commit()
    with store.open(key) as f:
        f.seek(123_456)
        assert f.read(10) == data[123_456:123_466]
        assert f.read() == data[123_466:]
        f.seek(0)
        assert f.read(5) == data[:5]
        f.seek(len(data) - 3)
        assert f.read(100) == data[-3:]
        assert f.read(1) == b""


def test_staged_blob_is_invisible_until_commit(backend: Backend) -> None:
    """While being written the blob is not among the keys."""
    with backend.store.stage() as staged:
        staged.write(b"partial")
        staged.close()
        assert list(backend.store.keys()) == []
        staged.commit()
    assert len(list(backend.store.keys())) == 1


def test_leaving_the_block_without_commit_discards(backend: Backend) -> None:
    """Exiting the with block without commit() leaves nothing staged and nothing visible, whether
    the blob was closed (its last part sent) or not."""
    for close in (False, True):
        with backend.store.stage() as staged:
            staged.write(b"abandoned")
            if close:
                staged.close()
        assert backend.leftovers() == []
        assert list(backend.store.keys()) == []


def test_exception_inside_the_block_discards(backend: Backend) -> None:
    """An exception mid-upload leaves nothing staged and no blob, and propagates."""

    def abandoned_upload() -> None:
        with backend.store.stage() as staged:
            staged.write(b"half an upload")
            staged.close()
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        abandoned_upload()
    assert backend.leftovers() == []
    assert list(backend.store.keys()) == []


def test_discard_then_write_or_commit_is_refused(backend: Backend) -> None:
    """A discarded (or committed) staged blob refuses further writes and commits."""
    store = backend.store
    staged = store.stage()
    staged.discard()
    staged.discard()  # idempotent
    with pytest.raises(StorageError):
        staged.write(b"late")
    with pytest.raises(StorageError):
        staged.commit()
    with store.stage() as done:
        done.commit()
        with pytest.raises(StorageError):
            done.write(b"after commit")


def test_open_or_size_of_a_missing_blob_raises_blob_not_found(backend: Backend) -> None:
    """A well-formed key with no blob behind it is BlobNotFound; local_path() is None."""
    key = BlobKey(new_id())
    with pytest.raises(BlobNotFound):
        backend.store.open(key)
    with pytest.raises(BlobNotFound):
        backend.store.size(key)
    assert backend.store.local_path(key) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../" + "a" * 29,
        "a" * 31,
        "a" * 33,
        "A" * 32,
        "g" * 32,
        "a" * 32 + "\n",
        "/etc/passwd",
        "..",
        "aa/" + "a" * 29,
        "a" * 31 + "\x00",
    ],
)
def test_malformed_keys_are_rejected(backend: Backend, bad: str) -> None:
    """Anything but exactly 32 lowercase hex characters is refused before touching a path or an
    object name."""
    store = backend.store
    key = BlobKey(bad)
    for call in (store.open, store.size, store.local_path, store.delete):
        with pytest.raises(StorageError, match="not a blob key"):
            call(key)


def test_delete_removes_and_missing_is_not_an_error(backend: Backend) -> None:
    """delete() removes a blob; deleting again (or a never-stored key) is fine."""
    store = backend.store
    with store.stage() as staged:
        staged.write(b"bye")
        key, _ = staged.commit()
    store.delete(key)
    store.delete(key)
    store.delete(BlobKey(new_id()))
    assert list(store.keys()) == []
    with pytest.raises(BlobNotFound):
        store.open(key)


def test_closed_staged_blobs_commit_exactly(backend: Backend) -> None:
    """Staged blobs closed after writing (one request can stage many parts) each still commit
    to their exact bytes, and nothing stays staged."""
    store = backend.store
    staged = []
    for i in range(20):
        blob = store.stage()
        blob.write(b"ciphertext %d " % i + os.urandom(1000))
        blob.close()
        staged.append(blob)
    expected = [blob.digest for blob in staged]
    keys = [blob.commit()[0] for blob in staged]
    for key, digest in zip(keys, expected, strict=True):
        with store.open(key) as f:
            assert blake3_digest(f.read()) == digest
    assert sorted(store.keys()) == sorted(keys)
    assert backend.leftovers() == []


def test_a_closed_blob_refuses_writes_and_can_still_be_discarded(backend: Backend) -> None:
    """After close, write() is refused; leaving the block without commit still removes it."""
    with backend.store.stage() as staged:
        staged.write(b"written")
        staged.close()
        staged.close()  # idempotent
        with pytest.raises(StorageError):
            staged.write(b"late")
    assert backend.leftovers() == []
    assert list(backend.store.keys()) == []


def test_settled_keys_are_a_subset_of_keys(backend: Backend) -> None:
    """settled_keys() never names a blob that keys() does not (the orphan sweep's candidates)."""
    with backend.store.stage() as staged:
        key, _ = staged.commit()
    assert set(backend.store.settled_keys()) <= set(backend.store.keys()) == {key}
