"""A staged file written by another process, hashed by this one as it grows.

The encrypting ``age`` child writes a file upload's ciphertext straight into its staged file
(``FilesystemStagedBlob.direct_write``; the child's stdout is the file). Before, the ciphertext came
back through a pipe and this process wrote it: per GiB ~0.55 CPU-seconds of the server's own
(the pipe read and the page-cache write, bench/README.md), for bytes it does not change.

The row still needs the SHA-256 of exactly the bytes stored (the API's ETag, the reader's
integrity check): a thread reads the file back from the page cache as the child writes it, a few
MiB behind, and hashes it (hashlib and ``preadv`` release the GIL). Reading below the file's size
is safe while another process appends: the kernel raises the size only after the bytes are in
the page cache, and the child only appends, so what is read is final. After the child exits, the
rest is read to the end; the count read must equal the file's size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable

from sealdrop.errors import StorageError, StorageFull

# Reads of the growing file: large enough that a GiB is ~1,000 reads, small enough to stay
# close behind the writer (the bytes are then still in the CPU's cache more often).
_READ_SIZE = 1024 * 1024
# How long the reader sleeps when it has caught up with the writer. At ~500 MB/s the writer is
# then ~1 MB ahead; the wake-ups (≤ 500/s, only while caught up) cost nothing measurable.
_POLL_SECONDS = 0.002
_FULL = (errno.ENOSPC, errno.EDQUOT)


class FileDirectWrite:
    """``blobs.DirectWrite`` for a staged file: ``fd`` is opened read-write by the blob, the
    child writes through it, a thread here reads it back (``pread``, so the shared offset of the
    child's writes is never touched)."""

    def __init__(self, fd: int, done: Callable[[int, str], None]) -> None:
        self._fd = fd
        self._done = done  # the blob's: (size, hex SHA-256) of what was written
        self._hash = hashlib.sha256()
        self._size = 0
        self._writer_exited = threading.Event()
        self._stop = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, name="staged-digest", daemon=True)
        self._thread.start()

    @property
    def fd(self) -> int:
        return self._fd

    def _follow(self) -> None:
        buffer = bytearray(_READ_SIZE)
        view = memoryview(buffer)
        try:
            while not self._stop:
                # Read before looking at the flag would miss bytes written between the two: the
                # flag is taken first, so a read that finds nothing after the writer exited is
                # truly the end.
                exited = self._writer_exited.is_set()
                count = os.preadv(self._fd, [buffer], self._size)
                if count:
                    self._hash.update(view[:count])
                    self._size += count
                elif exited:
                    return
                else:
                    self._writer_exited.wait(_POLL_SECONDS)
        except BaseException as exc:  # an I/O error reading back: the blob is not kept
            self._error = exc
        finally:
            view.release()

    def finish(self) -> None:
        self._writer_exited.set()
        self._thread.join()
        if self._error is not None:
            error = self._error
            if isinstance(error, OSError):
                raise self.failure(error) from error
            raise error
        size = os.fstat(self._fd).st_size
        if size != self._size:
            raise StorageError("the staged file changed while it was read back")
        self._done(self._size, self._hash.hexdigest())

    def abandon(self) -> None:
        self._stop = True
        self._writer_exited.set()
        self._thread.join()

    def failure(self, exc: OSError) -> Exception:
        if exc.errno in _FULL:
            return StorageFull("no space left for the blob store")
        return StorageError(f"blob store I/O error: {exc.strerror}")
