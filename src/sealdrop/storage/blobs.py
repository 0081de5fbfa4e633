"""The blob store's seam: where ciphertext lives, whatever holds it.

Services depend only on these Protocols; ``blobs_fs.FilesystemBlobStore`` (the default) and
``blobs_s3.S3BlobStore`` (``storage.blobs = "s3://BUCKET/PREFIX"``) implement them, and the blob
store's shared test suite (tests/unit/storage/test_blob_stores.py) runs on both. Rows name blobs
by ``BlobKey``; a blob is committed before the row that names it (invariant 9), so a reader never
finds a row without its blob.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from sealdrop.errors import ConfigError
from sealdrop.ids import BlobKey

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]+")


@runtime_checkable
class DirectWrite(Protocol):
    """A staged blob's file opened for another process to write into (``StagedBlob.direct_write``):
    an encrypting child's stdout, so that the ciphertext is not piped back through the server to
    be written again. The blob still learns its size and digest from the bytes on disk."""

    @property
    def fd(self) -> int:
        """The descriptor to hand to the writing process (its stdout); owned by the blob."""
        ...

    def finish(self) -> None:
        """The writer has exited successfully: what it wrote is the blob's content (its size and
        digest, read back from the file). ``close``/``commit`` follow as usual."""
        ...

    def abandon(self) -> None:
        """The writer failed or was stopped: stop reading; the caller discards the blob."""
        ...

    def failure(self, exc: OSError) -> Exception:
        """The blob store's own error for what the writer met (a full disk: StorageFull)."""
        ...


class StagedBlob(Protocol):
    """A blob being written. Nothing is visible until ``commit``; leaving the ``with`` block
    without committing discards it."""

    def write(self, data: bytes) -> int: ...

    @property
    def digest(self) -> str:
        """The content digest (``sealdrop.digests``, ``blake3:HEX``) of everything written so
        far (computed while writing)."""
        ...

    def flush(self) -> None: ...

    def direct_write(self) -> DirectWrite | None:
        """The staged file for another process to write into, if this store keeps blobs in
        local files (the filesystem); None otherwise (S3: its parts are sent by this process).
        Only before anything was written with ``write``."""
        ...

    def close(self) -> None:
        """Writing is done: make it durable (fsync) and release what writing holds (a file
        descriptor), before ``commit``. ``write`` is refused afterwards; ``commit`` and
        ``discard`` still work. A submission closes each part once it is written, so what stays
        held is bounded by the uploads in flight, not by how many parts one body carries."""
        ...

    def commit(self) -> tuple[BlobKey, int]:
        """``close`` if not closed yet (fsync), atomically move into place, fsync the directory;
        return (key, size)."""
        ...

    def discard(self) -> None: ...

    def __enter__(self) -> StagedBlob: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"


def parse_s3_url(url: str) -> S3Location:
    """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``: a DNS-style bucket name, a prefix of plain path
    segments (no ``..``, no empty segment). ConfigError otherwise."""
    if not url.startswith("s3://"):
        raise ConfigError('storage.blobs must be empty (the filesystem) or "s3://BUCKET/PREFIX"')
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if _BUCKET.fullmatch(bucket) is None or ".." in bucket:
        raise ConfigError(f"storage.blobs: {bucket!r} is not a valid bucket name")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(_PREFIX_PART.fullmatch(p) is None or p in (".", "..") for p in parts):
        raise ConfigError("storage.blobs: the prefix must be plain path segments (A-Z a-z 0-9 ._-)")
    return S3Location(bucket, "".join(p + "/" for p in parts))


class BlobStore(Protocol):
    def stage(self) -> StagedBlob: ...

    def open(self, key: BlobKey) -> BinaryIO:
        """Open a committed blob for reading. Raises BlobNotFound."""
        ...

    def size(self, key: BlobKey) -> int: ...

    def probe(self) -> None:
        """Reach the store once, cheaply (a readiness check, services/readiness.py):
        StorageError if it cannot be reached. Reads and writes no blob."""
        ...

    def local_path(self, key: BlobKey) -> Path | None:
        """Where the blob lives on this machine's disk, if it does (for operators and tests)."""
        ...

    def delete(self, key: BlobKey) -> None: ...

    def keys(self) -> Iterator[BlobKey]: ...

    def settled_keys(self) -> Iterator[BlobKey]:
        """The keys that an orphan sweep may consider: every key on a store that one process
        holds (the filesystem, under the instance lock); on a store that several workers share,
        only blobs completed long enough ago that no worker can still be about to add their row
        (``blobs_s3``)."""
        ...

    def clean_staging(self) -> int:
        """Remove staged, uncommitted blobs (at startup); return how many. The filesystem
        removes every one (the instance lock says no other process writes); a shared store
        only those begun longer ago than its sweep threshold."""
        ...
