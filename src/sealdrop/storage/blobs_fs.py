"""``BlobStore`` on the local filesystem.

Layout under ``root``: ``blobs/ab/ab12…`` (committed, sharded by the key's first two hex digits)
and ``staging/<key>`` (being written). Both live on one filesystem, so the final rename is atomic:
a blob is either wholly visible or absent (invariant 9).

File and directory times are set to the epoch after each change (invariant 6: an mtime must not
tell when a submission arrived). ctime cannot be set from user space; that is for the operator's
threat model (docs/operator.md).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sealdrop import digests
from sealdrop.errors import BlobNotFound, StorageError, StorageFull
from sealdrop.ids import BlobKey, new_id
from sealdrop.storage.direct_write import FileDirectWrite

# Keys come from ids.new_id(), never from a request, but a path is built from them: accepting only
# exactly 32 lowercase hex characters makes "../", "/", NUL and the like impossible.
_KEY = re.compile(r"[0-9a-f]{32}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_FULL = (errno.ENOSPC, errno.EDQUOT)
_EPOCH = (0, 0)
# O_NOFOLLOW: a symlink planted in our directories is never followed.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
# O_NOATIME: reading a blob (a journalist's download) does not record when it was read.
_NOATIME = getattr(os, "O_NOATIME", 0)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise StorageError("not a blob key")
    return key


def _private_dir(path: Path) -> None:
    # 0700: other local users must not even list blob names or see their sizes.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(directory: Path) -> None:
    """Make a change to a directory durable, and hide when it happened."""
    os.utime(directory, _EPOCH)
    _fsync_dir(directory)


def _storage_error(exc: OSError) -> StorageError:
    if exc.errno in _FULL:
        return StorageFull("no space left for the blob store")
    return StorageError(f"blob store I/O error: {exc.strerror}")


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._staging = root / "staging"
        _private_dir(root)
        _private_dir(self._blobs)
        _private_dir(self._staging)

    def probe(self) -> None:
        """Both folders are there (a disk not mounted, a folder removed: StorageError)."""
        try:
            for folder in (self._blobs, self._staging):
                os.stat(folder)
        except OSError as exc:
            raise _storage_error(exc) from exc

    def _path(self, key: str) -> Path:
        key = _check_key(key)
        return self._blobs / key[:2] / key

    def stage(self) -> FilesystemStagedBlob:
        key = BlobKey(new_id())
        return FilesystemStagedBlob(key, self._staging / key, self._path(key))

    def adopt(self, path: Path) -> tuple[BlobKey, int]:
        """Rename a complete ciphertext file, already fsynced, on this filesystem into place as
        a new blob (a finished resumable upload, ``partials_fs``); the same steps 3-4 as
        ``FilesystemStagedBlob.commit``. Returns (key, size)."""
        key = BlobKey(new_id())
        final = self._path(key)
        try:
            size = os.lstat(path).st_size
            new_shard = not final.parent.exists()
            _private_dir(final.parent)
            os.replace(path, final)
            _settle(final.parent)
            if new_shard:
                _settle(final.parent.parent)
            _settle(path.parent)
        except OSError as exc:
            raise _storage_error(exc) from exc
        return key, size

    def open(self, key: BlobKey) -> BinaryIO:
        path = self._path(key)
        try:
            try:
                fd = os.open(path, _READ_FLAGS | _NOATIME)
            except PermissionError:
                # O_NOATIME needs file ownership (or CAP_FOWNER); fall back rather than fail.
                fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        return os.fdopen(fd, "rb")

    def size(self, key: BlobKey) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def local_path(self, key: BlobKey) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def delete(self, key: BlobKey) -> None:
        path = self._path(key)
        try:
            path.unlink()
            _settle(path.parent)
        except FileNotFoundError:
            return  # already gone: deleting is idempotent
        except OSError as exc:
            raise _storage_error(exc) from exc

    def keys(self) -> Iterator[BlobKey]:
        for shard in sorted(self._blobs.iterdir()):
            if not (_SHARD.fullmatch(shard.name) and shard.is_dir()):
                continue
            for entry in sorted(shard.iterdir()):
                name = entry.name
                if _KEY.fullmatch(name) and name[:2] == shard.name and entry.is_file():
                    yield BlobKey(name)

    def settled_keys(self) -> Iterator[BlobKey]:
        # One process owns this store (the instance lock): no other can be about to commit.
        return self.keys()

    def clean_staging(self) -> int:
        removed = 0
        for entry in self._staging.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        _settle(self._staging)
        return removed


class FilesystemStagedBlob:
    """A blob being written into ``staging/``; see ``blobs.StagedBlob``.

    Its file descriptor is held only while it is written: ``close`` makes the file durable and
    releases the descriptor, and ``commit`` renames it by path. A request that stages many parts
    so holds one descriptor at a time, not one per part until it ends: descriptors stay bounded
    by the uploads in flight, whatever a body holds (20,000 parts once took 19,052 of them).
    """

    def __init__(self, key: BlobKey, path: Path, final: Path) -> None:
        self._key = key
        self._path = path
        self._final = final
        self._size = 0
        # Hashed while written, so the digest (the API's ETag, a reader's integrity check) is
        # known at commit without reading the ciphertext back.
        self._hash = digests.new()
        self._digest: str | None = None  # set when another process wrote it (direct_write)
        self._direct: FileDirectWrite | None = None
        self._done = False
        try:
            # O_EXCL: never reuse or follow anything already at this name; 0600: owner only.
            # Read-write: a file written by a child (direct_write) is read back to hash it.
            fd = os.open(
                self._path,
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        except OSError as exc:
            raise _storage_error(exc) from exc
        self._fd: int | None = fd
        # Which file this is: commit renames it by name, so it checks the name still means it.
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)

    def __enter__(self) -> FilesystemStagedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.discard()

    def _open_fd(self) -> int:
        if self._done:
            raise StorageError("staged blob already committed or discarded")
        if self._fd is None:
            raise StorageError("staged blob already closed for writing")
        return self._fd

    def write(self, data: bytes) -> int:
        fd = self._open_fd()
        if self._direct is not None:
            raise StorageError("staged blob is written by another process")
        # Unbuffered: the ciphertext goes straight to the kernel, and a full disk shows up here,
        # on the write that hit it, not later in a flush.
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise _storage_error(exc) from exc
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        """The content digest (``sealdrop.digests``) of everything written so far."""
        return self._digest if self._digest is not None else self._hash.text()

    def direct_write(self) -> FileDirectWrite:
        """This staged file for another process to write into (``blobs.DirectWrite``): the
        encrypting child's stdout. Its size and digest are read back from the file
        (``storage/direct_write.py``); the durability order of ``commit`` is unchanged, the
        fsync in ``close`` covering whatever process wrote the bytes."""
        fd = self._open_fd()
        if self._size or self._direct is not None:
            raise StorageError("staged blob already written to")
        self._direct = FileDirectWrite(fd, self._written_directly, _storage_error)
        return self._direct

    def _written_directly(self, size: int, digest: str) -> None:
        self._size, self._digest = size, digest

    def flush(self) -> None:
        self._open_fd()  # writes are unbuffered: nothing to flush, but refuse a finished blob

    def close(self) -> None:
        """Writing is done: make the file durable and release its descriptor, now rather than
        when the request ends. Its times are set to the epoch first, so that no real time is
        ever seen, then it is fsynced through the descriptor that wrote it (a write-back error
        is reported there, never lost with the descriptor). Closing twice is harmless."""
        if self._done:
            raise StorageError("staged blob already committed or discarded")
        if self._fd is not None and self._direct is not None and self._digest is None:
            # Written by another process that never finished: what is there is not the blob.
            self.discard()
            raise StorageError("staged blob closed before its writer finished")
        fd, self._fd = self._fd, None  # closed below even if an error comes: never close twice
        if fd is None:
            return
        try:
            try:
                os.utime(fd, _EPOCH)
                os.fsync(fd)  # data and metadata on disk before any name points at them
            finally:
                os.close(fd)
        except OSError as exc:
            self.discard()
            raise _storage_error(exc) from exc

    def _check_still_staged(self) -> None:
        """The staged name must still be this blob's file (same inode, never a symlink, same
        size) before it is renamed into place. staging/ is 0700, so only our own user could
        change it: a consistency check, not a boundary, but what was not written here must
        never be committed."""
        st = os.lstat(self._path)
        if (st.st_dev, st.st_ino) != self._identity or st.st_size != self._size:
            raise OSError(errno.ESTALE, "the staged file was replaced")

    def commit(self) -> tuple[BlobKey, int]:
        """Make the blob durable, then visible. The order (invariant 9):

        1. ``write``: the ciphertext goes to the staged file, unbuffered;
        2. ``close`` (here, if the caller has not closed it already): times set to the epoch,
           **fsync**, close; a request with many parts closes each as it ends, so it holds one
           descriptor at a time;
        3. the staged name is checked to be still that file, and **renamed** into ``blobs/``;
        4. the shard (and ``blobs/`` for a new shard) and ``staging/`` are **fsynced**, so the
           name survives a crash;
        5. only then does the caller insert the row that points at it.
        """
        self.close()
        final = self._final
        try:
            self._check_still_staged()
            new_shard = not final.parent.exists()
            _private_dir(final.parent)
            os.replace(self._path, final)
            self._done = True
            _settle(final.parent)
            if new_shard:
                _settle(final.parent.parent)
            _settle(self._path.parent)
        except OSError as exc:
            if not self._done:
                self.discard()
            raise _storage_error(exc) from exc
        return self._key, self._size

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        if self._direct is not None:
            self._direct.abandon()  # its reading thread lets go of the descriptor first
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)
            self._path.unlink(missing_ok=True)
            _settle(self._path.parent)
        except OSError as exc:
            raise _storage_error(exc) from exc
