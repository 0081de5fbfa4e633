"""``BlobStore`` on S3-compatible object storage (``storage.blobs = "s3://BUCKET/PREFIX"``).

Layout under ``PREFIX``: ``blobs/<key>`` (committed blobs; ``key`` is ``ids.new_id()``: 32 random
hex digits, so a name tells nothing). A staged blob is an S3 **multipart upload** to its final
name: S3 shows nothing at that name until ``CompleteMultipartUpload``, which makes the whole
object visible at once (invariant 9: a blob is wholly there or absent), and only then does the
caller insert the row that names it. Leaving a staged blob without committing aborts the upload.

Memory: ciphertext is buffered until a part is full (``PART_SIZE``), then handed to the upload's
sending thread while the next part fills, so one upload holds at most two parts in memory
whatever its size (``s3_uploads``); S3 allows 10,000 parts, which bounds a blob at 10,000 ×
``PART_SIZE``.

Metadata (invariant 6): objects are written with no user metadata, no content type, no tags, no
names; their key is random. What the store itself records cannot be set from here: each object's
``Last-Modified`` (the time of the upload's completion), the upload's initiation time while it is
in progress, and, depending on the operator's configuration, access logs and object versions
(docs/operator.md, threat model R39).

boto3 (not obstore): the store needs explicit control of multipart uploads (abort one that a
request abandoned, list the ones a crash left behind), which obstore's API does not expose; see
docs/design.md. The client and the reading stream are in ``s3_objects``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from sealdrop import digests
from sealdrop.errors import BlobNotFound, StorageError
from sealdrop.ids import BlobKey, new_id
from sealdrop.storage.blobs import S3Location
from sealdrop.storage.s3_objects import (
    NOT_FOUND,
    ObjectReader,
    error_code,
    storage_error,
)
from sealdrop.storage.s3_uploads import MultipartUpload, abort_upload

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "PART_SIZE",
    "S3BlobStore",
    "S3StagedBlob",
]

# 8 MiB: above S3's 5 MiB minimum for every part but the last; two parts in memory per upload in
# flight (4 GiB: 512 parts). 10,000 parts (MAX_PARTS): a blob of up to 78 GiB.
PART_SIZE = 8 * 1024 * 1024
# What a sweep leaves alone: an upload initiated (or an object without a row written) less than
# this long ago may belong to a request another worker is still receiving or about to commit.
DEFAULT_SWEEP_AFTER_SECONDS = 24 * 3600
_KEY = re.compile(r"[0-9a-f]{32}")
_FULL = frozenset({"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull"})
_READ_BLOCK = 1024 * 1024
_T = TypeVar("_T")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise StorageError("not a blob key")
    return key


class S3BlobStore:
    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        *,
        part_size: int = PART_SIZE,
        sweep_after_seconds: int = DEFAULT_SWEEP_AFTER_SECONDS,
    ) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 parts (but the last) must be at least 5 MiB")
        self.client = client
        self.location = location
        self._blobs = location.prefix + "blobs/"
        self._part_size = part_size
        self._sweep_after = sweep_after_seconds

    @property
    def bucket(self) -> str:
        return self.location.bucket

    def sweep_cutoff(self) -> float:
        """Unix time before which an upload or object is old enough for a sweep to touch."""
        return time.time() - self._sweep_after

    def object_name(self, key: str) -> str:
        return self._blobs + _check_key(key)

    def stage(self) -> S3StagedBlob:
        key = BlobKey(new_id())
        return S3StagedBlob(self, key)

    def put_as(self, key: BlobKey, source: IO[bytes]) -> int:
        """Store ``source`` as the blob ``key`` (a restore puts each blob back under the key its
        rows name; the caller makes sure the store was empty). Returns its size."""
        with S3StagedBlob(self, BlobKey(_check_key(key))) as staged:
            while block := source.read(self._part_size):
                staged.write(block)
            return staged.commit()[1]

    def probe(self) -> None:
        """One HeadBucket: the store answers and these credentials reach the bucket."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def is_empty(self) -> bool:
        """Nothing at all under the prefix (no blob, no upload in progress)."""
        try:
            listing = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.location.prefix, MaxKeys=1
            )
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc
        return not listing.get("Contents")

    def adopt(self, path: Path) -> tuple[BlobKey, int]:
        """Upload a complete ciphertext file (a finished resumable upload kept on this machine)
        as a new blob, then remove the file; returns (key, size)."""
        with self.stage() as staged:
            try:
                with open(path, "rb") as handle:
                    while block := handle.read(self._part_size):
                        staged.write(block)
            except OSError as exc:
                raise StorageError(f"reading a finished upload: {exc.strerror}") from exc
            key, size = staged.commit()
        path.unlink(missing_ok=True)
        return key, size

    def open(self, key: BlobKey) -> BinaryIO:
        name = self.object_name(key)
        reader = ObjectReader(self.client, self.bucket, name, key)
        return io.BufferedReader(reader, buffer_size=_READ_BLOCK)

    def size(self, key: BlobKey) -> int:
        name = self.object_name(key)
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"])
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise BlobNotFound(key) from None
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc

    def local_path(self, key: BlobKey) -> Path | None:
        _check_key(key)
        return None  # in the object store, never on this machine's disk

    def delete(self, key: BlobKey) -> None:
        name = self.object_name(key)
        try:
            # Idempotent: S3 answers 204 for a name that is not there.
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def _listing(self) -> Iterator[tuple[BlobKey, float]]:
        """Each committed blob's key and the store's Last-Modified time (unix seconds)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._blobs):
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(self._blobs) :]
                    if _KEY.fullmatch(name):
                        yield BlobKey(name), entry["LastModified"].timestamp()
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def keys(self) -> Iterator[BlobKey]:
        for key, _ in sorted(self._listing()):
            yield key

    def settled_keys(self) -> Iterator[BlobKey]:
        """Keys of blobs completed longer ago than the sweep threshold: one that another worker
        completed just now may be about to get its row, so it is never taken for an orphan."""
        cutoff = self.sweep_cutoff()
        for key, modified in sorted(self._listing()):
            if modified <= cutoff:
                yield key

    def _uploads(self) -> Iterator[tuple[str, str, float]]:
        """Multipart uploads in progress under the blob prefix: (name, upload id, initiated)."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._blobs):
                for upload in page.get("Uploads", []):
                    yield upload["Key"], upload["UploadId"], upload["Initiated"].timestamp()
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def clean_staging(self) -> int:
        """Abort multipart uploads that a crash (or a lost connection to the store) abandoned.
        Several workers may share the store, so only uploads initiated longer ago than the sweep
        threshold are aborted: never one that another worker is still receiving."""
        cutoff = self.sweep_cutoff()
        removed = 0
        for name, upload_id, initiated in list(self._uploads()):
            if initiated <= cutoff:
                abort_upload(self.client, self.bucket, name, upload_id)
                removed += 1
        return removed


class S3StagedBlob:
    """A blob being written as a multipart upload; see ``blobs.StagedBlob``.

    The upload is begun when the first part is full (or at ``close``), so nothing exists in the
    store for a blob that is discarded before then. A full part is handed to the upload's own
    sending thread (``s3_uploads``) and the writer goes on filling the next one: at most two
    parts in memory per upload. Each byte is copied once, into the part being filled; a part is
    sent from that buffer, which is then filled again. ``close`` sends what is buffered as the
    last part.
    """

    def __init__(self, store: S3BlobStore, key: BlobKey) -> None:
        self._part_size = store._part_size
        self._upload = MultipartUpload(store.client, store.bucket, store.object_name(key))
        self._key = key
        # The part being filled: it grows up to a part while the first is written (a short
        # message never allocates a whole part); a refilled buffer is already a part long and
        # is written over in place, ``_used`` bytes of it being this part's.
        self._fill = bytearray()
        self._used = 0
        self._size = 0
        self._hash = digests.new()
        self._closed = False
        self._done = False

    def __enter__(self) -> S3StagedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.discard()

    def _check_open(self) -> None:
        if self._done:
            raise StorageError("staged blob already committed or discarded")
        if self._closed:
            raise StorageError("staged blob already closed for writing")

    def write(self, data: bytes) -> int:
        self._check_open()
        self._failing(self._upload.check)  # a part that failed in the background fails us now
        self._hash.update(data)
        self._size += len(data)
        view = memoryview(data).cast("B")
        while view:
            take = view[: self._part_size - self._used]
            end = self._used + len(take)
            if len(self._fill) == self._used:
                self._fill += take  # the buffer is still growing
            else:
                self._fill[self._used : end] = take  # same length: a copy in place
            self._used = end
            view = view[len(take) :]
            if self._used == self._part_size:
                self._send_full()
        return len(data)

    def _send_full(self) -> None:
        part = self._fill
        free = self._failing(lambda: self._upload.send(part))
        self._fill, self._used = (free if free is not None else bytearray()), 0

    def _failing(self, step: Callable[[], _T]) -> _T:
        """Run a step of the upload; if it fails, abort the upload and raise StorageError."""
        try:
            return step()
        except StorageError:
            self.discard()
            raise
        except (ClientError, BotoCoreError) as exc:
            self.discard()
            raise storage_error(exc) from exc

    @property
    def digest(self) -> str:
        return self._hash.text()

    def flush(self) -> None:
        self._check_open()  # parts go out when full; S3 has nothing like a partial flush

    def direct_write(self) -> None:
        """None: the parts are sent by this process, so the ciphertext must come through it."""

    def close(self) -> None:
        """Writing is done: the buffered rest goes up as the last part (an empty blob is one
        empty part). Closing twice is harmless."""
        if self._done:
            raise StorageError("staged blob already committed or discarded")
        if self._closed:
            return
        self._closed = True
        if self._used or not self._upload.begun:
            last, self._fill = self._fill, bytearray()
            del last[self._used :]  # a refilled buffer is longer than its last part
            self._used = 0
            self._failing(lambda: self._upload.send(last))

    def commit(self) -> tuple[BlobKey, int]:
        """Send the last part if not sent yet, wait until every part is stored, then complete
        the upload: S3 makes the object visible, whole, only now (and it is durable once S3
        answers). The caller inserts the row after this returns (invariant 9)."""
        self.close()
        self._failing(self._upload.complete)
        self._done = True
        return self._key, self._size

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self._fill, self._used = bytearray(), 0
        self._upload.abort()
