"""A staged file written by another process, hashed by this one as it grows.

The encrypting ``age`` child writes a file upload's ciphertext straight into its staged file
(``FilesystemStagedBlob.direct_write``; the child's stdout is the file). Before, the ciphertext came
back through a pipe and this process wrote it: per GiB ~0.55 CPU-seconds of the server's own
(the pipe read and the page-cache write, bench/README.md), for bytes it does not change.

The row still needs the digest of exactly the bytes stored (``sealdrop.digests``: the API's ETag,
the reader's integrity check): a thread hashes the file as the child writes it, a window behind,
through read-only mappings of the page cache (BLAKE3 releases the GIL; no copy into a buffer of
this process: ~0.05 CPU-s/GiB less than 1 MiB ``preadv``s, bench/README.md). Only the region below
the file's size is mapped, which is safe while another process appends: the kernel raises the size
only after the bytes are in the page cache, and the child only appends and never truncates (a
mapping past the end would fault), so what is mapped is final. After the child exits, the rest
is hashed to the end; the count hashed must equal the file's size.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections.abc import Callable

from sealdrop import digests
from sealdrop.errors import StorageError

# The mapped windows of the growing file: a GiB is 128 maps and unmaps, and the hashing stays a
# window (8 MiB, ~16 ms of writing at 500 MB/s) behind the writer. A multiple of the page size,
# as a mapping's offset must be.
_WINDOW = 8 * 1024 * 1024
# How long the reader sleeps when no whole window is written yet. The wake-ups (an fstat each,
# ≤ 500/s, only while waiting) cost nothing measurable.
_POLL_SECONDS = 0.002
# A blob_dir on a filesystem that cannot map files (FUSE with direct_io, some network mounts):
# the file is then read back instead, in reads of this size.
_NO_MMAP = (errno.ENODEV, errno.EACCES, errno.EOPNOTSUPP)
_READ_SIZE = 1024 * 1024


class FileDirectWrite:
    """``blobs.DirectWrite`` for a staged file: ``fd`` is opened read-write by the blob, the
    child writes through it, a thread here hashes it through mappings (never a read, so the shared
    offset of the child's writes is never touched)."""

    def __init__(
        self,
        fd: int,
        done: Callable[[int, str], None],
        storage_error: Callable[[OSError], StorageError],
    ) -> None:
        self._fd = fd
        self._done = done  # the blob's: (size, digest) of what was written
        # The blob store's own mapping of an OSError (a full disk: StorageFull), so that what the
        # writer or the read-back meets is reported as a write of the store's would be.
        self._storage_error = storage_error
        self._hash = digests.new()
        self._size = 0
        self._writer_exited = threading.Event()
        self._stop = False
        self._error: BaseException | None = None
        self._mappable = True
        self._thread = threading.Thread(target=self._follow, name="staged-digest", daemon=True)
        self._thread.start()

    @property
    def fd(self) -> int:
        return self._fd

    def _follow(self) -> None:
        try:
            while not self._stop:
                # The flag is taken before the size: a size looked at after the writer exited
                # is the final one, so a window found short then is truly the end.
                exited = self._writer_exited.is_set()
                written = os.fstat(self._fd).st_size - self._size
                if written >= _WINDOW or (exited and written > 0):
                    start = self._size
                    self._hash_window(min(written, _WINDOW))
                    self._write_back_early(start, self._size)
                elif exited:
                    return
                else:
                    self._writer_exited.wait(_POLL_SECONDS)
        except BaseException as exc:  # an I/O error reading back: the blob is not kept
            self._error = exc

    def _write_back_early(self, start: int, end: int) -> None:
        """Have the kernel start writing [start, end), a window just hashed, to disk now, while
        the upload goes on.

        Without this, a GiB upload's ciphertext sat dirty in the page cache (far below the
        kernel's background write-back threshold on a machine with memory to spare) until the
        final fsync wrote all of it while the upload waited: receiving and writing to disk came
        one after the other. POSIX_FADV_DONTNEED starts write-back of a range's dirty pages
        without waiting for it (Linux) and drops only pages that are clean, unmapped and not
        under write-back, i.e. hardly any of a window just written: it never discards data, and
        durability still comes from the fsync in close(), before the rename and the row
        (blobs_fs.py). Measured (bench/README.md, session 9): 473 -> 539 MB/s for 1 GiB, the
        server's CPU per GiB unchanged (1.56 / 1.57); also advising the window before, to drop
        its pages once on disk, cost ~0.2 CPU-s/GiB for no speed: not done. Advisory: where a
        filesystem refuses or ignores it, nothing changes."""
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_DONTNEED)

    def _hash_window(self, length: int) -> None:
        # Read-only, dropped as soon as it is hashed: the server's RSS holds at most one window
        # of the file (ciphertext). Without MAP_POPULATE: the kernel maps the page cache's large
        # folios a fault at a time (~1,000 faults per GiB here), and populating measured slower.
        if self._mappable:
            try:
                window = mmap.mmap(
                    self._fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=self._size
                )
            except OSError as exc:
                if exc.errno not in _NO_MMAP:
                    raise
                self._mappable = False
            else:
                with window:
                    self._hash.update(window)
                self._size += length
                return
        end = self._size + length
        while self._size < end:
            data = os.pread(self._fd, min(end - self._size, _READ_SIZE), self._size)
            if not data:  # below the size seen: cannot happen unless the file was cut
                raise StorageError("the staged file changed while it was read back")
            self._hash.update(data)
            self._size += len(data)

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
        self._done(self._size, self._hash.text())

    def abandon(self) -> None:
        self._stop = True
        self._writer_exited.set()
        self._thread.join()

    def failure(self, exc: OSError) -> Exception:
        return self._storage_error(exc)
