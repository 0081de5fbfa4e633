"""FilesystemBlobStore: atomic commit, no staging leftovers, owner-only modes, epoch times.

The contract every backend keeps (discard, refused writes, keys, missing blobs) is tested on
both backends in test_blob_stores.py."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from sealdrop.errors import StorageError, StorageFull
from sealdrop.ids import new_id
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from support_digests import blake3_digest


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "store")


def staging_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "store" / "staging").iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_committed_blob_lives_at_its_sharded_path_and_leaves_no_staging_file(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """What only the filesystem store promises (the bytes themselves are test_blob_stores.py's,
    on both backends): the blob's path is store/blobs/<first two hex>/<key>, and nothing is left
    in staging."""
    with store.stage() as staged:
        staged.write(os.urandom(70_000))
        key, _ = staged.commit()
    assert store.local_path(key) == tmp_path / "store" / "blobs" / key[:2] / key
    assert staging_files(tmp_path) == []


def test_committed_blob_is_0600_with_epoch_times(store: FilesystemBlobStore) -> None:
    """The blob file is owner-only, and its and its shard directory's mtime say nothing (0)."""
    with store.stage() as staged:
        staged.write(b"ciphertext")
        key, _ = staged.commit()
    path = store.local_path(key)
    assert path is not None
    st = path.stat()
    assert mode(path) == 0o600
    assert (st.st_mtime, st.st_atime) == (0, 0)
    assert path.parent.stat().st_mtime == 0
    assert path.parent.parent.stat().st_mtime == 0  # blobs/ changed when the shard appeared


def test_reading_a_blob_keeps_its_atime_at_zero(store: FilesystemBlobStore) -> None:
    """open() uses O_NOATIME, so a download does not record when it happened."""
    with store.stage() as staged:
        staged.write(b"x" * 10)
        key, _ = staged.commit()
    with store.open(key) as f:
        f.read()
    path = store.local_path(key)
    assert path is not None
    assert path.stat().st_atime == 0


def test_directories_are_created_0700(tmp_path: Path) -> None:
    """root, blobs/, staging/ and every shard are owner-only, whatever the umask."""
    old = os.umask(0o022)
    try:
        store = FilesystemBlobStore(tmp_path / "a" / "store")
        with store.stage() as staged:
            key, _ = staged.commit()
    finally:
        os.umask(old)
    root = tmp_path / "a" / "store"
    for d in (root, root / "blobs", root / "staging", root / "blobs" / key[:2]):
        assert mode(d) == 0o700, d


def test_staging_file_is_0600_and_invisible_until_commit(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """While being written the blob is an owner-only staging file and not among the keys."""
    with store.stage() as staged:
        staged.write(b"partial")
        [path] = staging_files(tmp_path)
        assert mode(path) == 0o600
        assert list(store.keys()) == []
        staged.commit()


def test_clean_staging_removes_leftovers(store: FilesystemBlobStore, tmp_path: Path) -> None:
    """clean_staging() removes what a crash left in staging/, counts it, keeps committed blobs."""
    with store.stage() as staged:
        staged.write(b"keep")
        key, _ = staged.commit()
    staging = tmp_path / "store" / "staging"
    (staging / new_id()).write_bytes(b"crashed upload")
    (staging / "stray-dir").mkdir()
    (staging / "stray-dir" / "f").write_bytes(b"x")
    assert store.clean_staging() == 2
    assert staging_files(tmp_path) == []
    assert staging.stat().st_mtime == 0
    assert list(store.keys()) == [key]


def test_keys_ignores_foreign_files(store: FilesystemBlobStore, tmp_path: Path) -> None:
    """keys() lists only well-formed blobs in their right shard, not strays an operator left."""
    with store.stage() as staged:
        key, _ = staged.commit()
    blobs = tmp_path / "store" / "blobs"
    (blobs / "README").write_text("x")
    (blobs / key[:2] / "notes.txt").write_text("x")
    misplaced = "ff" + new_id()[2:] if key[:2] != "ff" else "00" + new_id()[2:]
    (blobs / key[:2] / misplaced).write_bytes(b"x")
    assert list(store.keys()) == [key]


def test_disk_full_during_write_raises_storage_full(
    store: FilesystemBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC (and EDQUOT) from the write path become StorageFull, and nothing is left behind.

    The full disk is simulated by monkeypatching os.write: no tiny filesystem is available here.
    """

    def upload_until_full(code: int) -> None:
        def full(fd: int, data: object) -> int:
            raise OSError(code, os.strerror(code))

        with store.stage() as staged:
            staged.write(b"fits")  # a real write
            with monkeypatch.context() as patch:
                patch.setattr(os, "write", full)
                staged.write(b"does not fit")

    for code in (errno.ENOSPC, errno.EDQUOT):
        with pytest.raises(StorageFull):
            upload_until_full(code)
        assert staging_files(tmp_path) == []
        assert list(store.keys()) == []


def test_short_writes_are_completed(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write() the kernel accepts only partly is continued until every byte is written."""
    real_write = os.write

    def one_byte_at_a_time(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data[:1]))

    with store.stage() as staged:
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", one_byte_at_a_time)
            staged.write(b"hello")
        assert staged.digest == blake3_digest(b"hello")
        key, size = staged.commit()
    with store.open(key) as f:
        assert f.read() == b"hello"
    assert size == 5


# --- closed while waiting for commit ------------------------------------------------------------


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_closed_staged_blobs_hold_no_descriptor_and_commit_exactly(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """Staged blobs closed after writing hold no file descriptor while they wait (one request
    can stage many parts), and each still commits to its exact bytes, owner-only, at epoch
    times, leaving nothing in staging/."""
    before = open_descriptors()
    staged = []
    for i in range(50):
        blob = store.stage()
        blob.write(b"ciphertext %d " % i + os.urandom(1000))
        blob.close()
        staged.append(blob)
    assert open_descriptors() == before
    assert len(staging_files(tmp_path)) == 50
    expected = [blob.digest for blob in staged]
    keys = [blob.commit()[0] for blob in staged]
    assert open_descriptors() == before
    for key, digest in zip(keys, expected, strict=True):
        path = store.local_path(key)
        assert path is not None
        assert blake3_digest(path.read_bytes()) == digest
        assert mode(path) == 0o600
        assert path.stat().st_mtime == 0
    assert staging_files(tmp_path) == []


def record_durability_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each fsync (of a file, with its mtime then, or of a directory) and each rename."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else f"file(mtime={int(st.st_mtime)})"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append("rename")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


@pytest.mark.parametrize("closed_first", [True, False], ids=["closed", "open"])
def test_durability_order_is_fsync_rename_fsync_directories(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch, closed_first: bool
) -> None:
    """Whether the blob was closed before commit or not: the file is fsynced once (with its
    epoch time already set) before it is renamed, and the directories after the rename, so a
    blob's name never points at data that is not on disk."""
    events = record_durability_steps(monkeypatch)
    with store.stage() as staged:
        staged.write(b"ciphertext")
        if closed_first:
            staged.close()
            assert events == ["fsync file(mtime=0)"]
        staged.commit()
    assert events[:2] == ["fsync file(mtime=0)", "rename"]
    assert set(events[2:]) == {"fsync dir"}
    assert len(events) >= 4  # the shard and staging/ (and blobs/ for a new shard)


def test_commit_refuses_a_staged_file_replaced_while_closed(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """commit renames the staged file by name, after checking that the name still means the
    file it wrote: another file put at that name, a symlink, or the file cut short is never
    committed, and nothing is left behind."""
    aside = tmp_path / "aside"
    for swap in ("other file", "symlink", "truncated"):
        with store.stage() as staged:
            staged.write(b"the real ciphertext")
            staged.close()
            [path] = staging_files(tmp_path)
            if swap == "truncated":
                os.truncate(path, 3)
            else:
                path.rename(aside)  # kept, so the new file cannot get the same inode number
                if swap == "other file":
                    path.write_bytes(b"the planted ciphertext")
                else:
                    path.symlink_to(aside)
            with pytest.raises(StorageError):
                staged.commit()
        aside.unlink(missing_ok=True)
        assert staging_files(tmp_path) == []
        assert list(store.keys()) == []


# --- a staged file written by another process (direct_write: the age child's stdout) --------


def test_a_file_written_by_another_process_commits_with_its_size_and_digest(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """What a child writes into ``direct_write().fd`` (here `head`, then more bytes while the
    file is read back) becomes the blob, with the digest and size of exactly the bytes on
    disk, and nothing is left in staging."""
    first, second = os.urandom(3 * 1024 * 1024 + 5), os.urandom(70_000)
    source = tmp_path / "source"
    source.write_bytes(first)
    staged = store.stage()
    direct = staged.direct_write()
    assert direct is not None
    subprocess.run(["head", "-c", str(len(first)), str(source)], stdout=direct.fd, check=True)
    time.sleep(0.05)  # the reading thread catches up and waits for more
    os.write(direct.fd, second)
    direct.finish()
    digest = staged.digest
    key, size = staged.commit()
    path = store.local_path(key)
    assert path is not None
    assert path.read_bytes() == first + second
    assert size == len(first + second)
    assert digest == blake3_digest(first + second)
    assert staging_files(tmp_path) == []


def test_a_blob_another_process_writes_refuses_writes_of_its_own(
    store: FilesystemBlobStore,
) -> None:
    """Once handed to another process, the blob takes no ``write`` and no second writer: two
    writers would interleave into one ciphertext."""
    with store.stage() as staged:
        staged.direct_write()
        with pytest.raises(StorageError):
            staged.write(b"x")
        with pytest.raises(StorageError):
            staged.direct_write()


def test_a_blob_whose_writer_did_not_finish_is_never_committed(
    store: FilesystemBlobStore, tmp_path: Path
) -> None:
    """A child that wrote part of a file and was stopped (no ``finish``): commit refuses it and
    the staged file is removed; nothing of it becomes a blob."""
    staged = store.stage()
    direct = staged.direct_write()
    assert direct is not None
    os.write(direct.fd, b"age-encryption.org/v1\n" + os.urandom(10_000))
    with pytest.raises(StorageError):
        staged.commit()
    assert list(store.keys()) == []
    assert staging_files(tmp_path) == []
