"""The blob store's seam: where ciphertext lives, whatever holds it.

Services depend only on these Protocols; ``blobs_fs.FilesystemBlobStore`` is the backend today, and
the blob store's one test suite is written against this interface so that another backend (object
storage) runs the same tests. Rows name blobs by ``BlobKey``; a blob is committed before the row
that names it (invariant 9), so a reader never finds a row without its blob.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from sealdrop.ids import BlobKey


class StagedBlob(Protocol):
    """A blob being written. Nothing is visible until ``commit``; leaving the ``with`` block
    without committing discards it."""

    def write(self, data: bytes) -> int: ...

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far (computed while writing)."""
        ...

    def flush(self) -> None: ...

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


class BlobStore(Protocol):
    def stage(self) -> StagedBlob: ...

    def open(self, key: BlobKey) -> BinaryIO:
        """Open a committed blob for reading. Raises BlobNotFound."""
        ...

    def size(self, key: BlobKey) -> int: ...

    def local_path(self, key: BlobKey) -> Path | None:
        """Where the blob lives on this machine's disk, if it does (for operators and tests)."""
        ...

    def delete(self, key: BlobKey) -> None: ...

    def keys(self) -> Iterator[BlobKey]: ...

    def clean_staging(self) -> int:
        """Remove every staged, uncommitted blob (at startup); return how many."""
        ...
