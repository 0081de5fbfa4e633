"""Resumable uploads in progress on the local filesystem: ciphertext so far, and sealed state.

Layout under the blob store's root: ``partial/<upload id>/data`` (the age file so far: header,
then whole encrypted chunks) and ``partial/<upload id>/state`` (one line ``expires durable``, then
the stream state sealed under the source's cookie-held key; storage never sees that key).
``partial/`` is apart from ``staging/`` on purpose: staging is emptied at every start, while an
upload in progress must survive a restart (it is removed when it expires instead).

Durability order (as ``blobs_fs`` for a blob): ciphertext is written, the data file **fsynced**,
and only then is the new durable length written to a new state file, fsynced and renamed over
the old one (directory fsynced). So the durable length on disk never counts a byte that is not
itself on disk; whatever lies past it (written before a crash, never checkpointed) is cut off
when writing resumes. Times are set to the epoch after each change (invariant 6).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sealdrop import digests
from sealdrop.errors import NotFound, StorageError
from sealdrop.ids import BlobKey
from sealdrop.storage.blobs_fs import (
    _private_dir,
    _settle,
    _storage_error,
)
from sealdrop.storage.partials import MAX_STATE_BYTES, PartialState

__all__ = ["Adopter", "PartialState", "PartialUploads", "PartialWriter"]

_ID = re.compile(r"[0-9a-f]{32}")
_EPOCH = (0, 0)


def _check(upload_id: str) -> str:
    if not isinstance(upload_id, str) or _ID.fullmatch(upload_id) is None:
        raise NotFound("no such upload")
    return upload_id


class Adopter(Protocol):
    def adopt(self, path: Path) -> tuple[BlobKey, int]:
        """Take a complete ciphertext file in as a new blob; return (key, size)."""
        ...


class PartialUploads:
    def __init__(self, root: Path, blobs: Adopter) -> None:
        self._root = root / "partial"
        self._blobs = blobs
        _private_dir(self._root)

    def _dir(self, upload_id: str) -> Path:
        return self._root / _check(upload_id)

    def create(self, upload_id: str, header: bytes, expires: int, sealed: bytes) -> None:
        """A new upload: its age header as the data so far, and its sealed state."""
        directory = self._dir(upload_id)
        try:
            directory.mkdir(mode=0o700)
            fd = os.open(
                directory / "data",
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
            try:
                os.write(fd, header)
                os.utime(fd, _EPOCH)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_state(directory, PartialState(expires, len(header), sealed))
            _settle(self._root)
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise _storage_error(exc) from exc

    def state(self, upload_id: str) -> PartialState:
        """The upload's state; NotFound if there is no such upload (or it is damaged)."""
        path = self._dir(upload_id) / "state"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle:
                raw = handle.read(MAX_STATE_BYTES)
        except FileNotFoundError:
            raise NotFound("no such upload") from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        state = PartialState.decode(raw)
        if state is None:
            raise NotFound("no such upload")
        return state

    def _write_state(self, directory: Path, state: PartialState) -> None:
        tmp = directory / "state.new"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
        try:
            os.write(fd, state.encode())
            os.utime(fd, _EPOCH)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, directory / "state")
        _settle(directory)

    def writer(self, upload_id: str, state: PartialState) -> PartialWriter:
        """Continue writing at the durable length (anything past it is cut off first)."""
        directory = self._dir(upload_id)
        try:
            fd = os.open(directory / "data", os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFound("no such upload") from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        return PartialWriter(self, directory, fd, state)

    def finish(self, upload_id: str) -> tuple[BlobKey, int, str]:
        """Move the complete, fsynced data into the blob store; return (key, size, digest)."""
        directory = self._dir(upload_id)
        data = directory / "data"
        digest = digests.new()
        try:
            with open(data, "rb") as handle:  # ciphertext only: hashing reads no plaintext
                while block := handle.read(1024 * 1024):
                    digest.update(block)
            key, size = self._blobs.adopt(data)
        except OSError as exc:
            raise _storage_error(exc) from exc
        self.delete(upload_id)
        return key, size, digest.text()

    def delete(self, upload_id: str) -> None:
        directory = self._dir(upload_id)
        shutil.rmtree(directory, ignore_errors=True)
        _settle(self._root)

    def ids(self) -> Iterator[str]:
        for entry in sorted(self._root.iterdir()):
            if _ID.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                yield entry.name

    def sweep(self, now: int) -> int:
        """Remove uploads whose time has passed (or whose state is unreadable)."""
        removed = 0
        for upload_id in list(self.ids()):
            try:
                expired = self.state(upload_id).expires <= now
            except (NotFound, StorageError):
                expired = True
            # No data left: a crash came between ``finish``'s rename and the removal of the
            # folder. The blob is an orphan (swept at start) or already has its row.
            expired = expired or not (self._root / upload_id / "data").exists()
            if expired:
                self.delete(upload_id)
                removed += 1
        return removed


class PartialWriter:
    """Appends ciphertext to an upload's data; ``checkpoint`` makes it count (module docstring)."""

    def __init__(self, store: PartialUploads, directory: Path, fd: int, state: PartialState):
        self._store = store
        self._directory = directory
        self._fd: int | None = fd
        self._state = state
        self._written = state.durable
        try:
            os.ftruncate(fd, state.durable)  # drop a tail that was never checkpointed
            os.lseek(fd, state.durable, os.SEEK_SET)
        except OSError as exc:
            self.close()
            raise _storage_error(exc) from exc

    @property
    def durable(self) -> int:
        return self._state.durable

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise StorageError("partial upload writer closed")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise _storage_error(exc) from exc
        self._written += len(data)

    def checkpoint(self) -> int:
        """fsync what was written, then record its length as durable; return that length."""
        if self._fd is None or self._written == self._state.durable:
            return self._state.durable
        try:
            os.utime(self._fd, _EPOCH)
            os.fsync(self._fd)
            self._state = PartialState(self._state.expires, self._written, self._state.sealed)
            self._store._write_state(self._directory, self._state)
        except OSError as exc:
            raise _storage_error(exc) from exc
        return self._state.durable

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
