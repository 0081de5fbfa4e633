"""``BlobStore`` on S3-compatible object storage (``storage.blobs = "s3://BUCKET/PREFIX"``).

Layout under ``PREFIX``: ``blobs/<key>`` (committed blobs; ``key`` is ``ids.new_id()``: 32 random
hex digits, so a name tells nothing). A staged blob is an S3 **multipart upload** to its final
name: S3 shows nothing at that name until ``CompleteMultipartUpload``, which makes the whole
object visible at once (invariant 9: a blob is wholly there or absent), and only then does the
caller insert the row that names it. Leaving a staged blob without committing aborts the upload.

Memory: ciphertext is buffered until a part is full (``PART_SIZE``), then sent, so one upload
holds at most one part in memory whatever its size; S3 allows 10,000 parts, which bounds a blob
at 10,000 × ``PART_SIZE``.

Metadata (invariant 6): objects are written with no user metadata, no content type, no tags, no
names; their key is random. What the store itself records cannot be set from here: each object's
``Last-Modified`` (the time of the upload's completion), the upload's initiation time while it is
in progress, and, depending on the operator's configuration, access logs and object versions
(docs/operator.md, threat model R39).

boto3 (not obstore): the store needs explicit control of multipart uploads (abort one that a
request abandoned, list the ones a crash left behind), which obstore's API does not expose; see
docs/design.md.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sealdrop.errors import BlobNotFound, StorageError, StorageFull
from sealdrop.ids import BlobKey, new_id
from sealdrop.storage.blobs import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = [
    "PART_SIZE",
    "S3BlobStore",
    "S3StagedBlob",
    "make_s3_client",
]

# 8 MiB: above S3's 5 MiB minimum for every part but the last; one part in memory per upload in
# flight (4 GiB: 512 parts). 10,000 parts: a blob of up to 78 GiB.
PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
# What a sweep leaves alone: an upload initiated (or an object without a row written) less than
# this long ago may belong to a request another worker is still receiving or about to commit.
DEFAULT_SWEEP_AFTER_SECONDS = 24 * 3600
_KEY = re.compile(r"[0-9a-f]{32}")
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_FULL = frozenset({"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull"})
_READ_BLOCK = 1024 * 1024


def _check_key(key: str) -> str:
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise StorageError("not a blob key")
    return key


def make_s3_client(
    endpoint_url: str | None, region: str | None, access_key_id: str, secret_access_key: str
) -> S3Client:
    """A boto3 S3 client for this store: path-style addressing (works with every S3-compatible
    server), checksums only where the API requires them (not every such server accepts the
    newer trailing checksums), a few retries."""
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 5, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=10,
        read_timeout=60,
        # Enough pooled connections for the uploads and downloads a worker runs at once.
        max_pool_connections=64,
    )
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )
    return client


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage_error(exc: Exception) -> StorageError:
    """The store's answer as one of ours; its text names the operation and S3's error code, never
    a key's secret or a response body."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _FULL:
            return StorageFull("the object store refused the blob (full or too large)")
        return StorageError(f"object store error: {code or 'unknown'}")
    return StorageError(f"object store unreachable: {type(exc).__name__}")


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

    def is_empty(self) -> bool:
        """Nothing at all under the prefix (no blob, no upload in progress)."""
        try:
            listing = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.location.prefix, MaxKeys=1
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc
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
        reader = _ObjectReader(self.client, self.bucket, name, key)
        return io.BufferedReader(reader, buffer_size=_READ_BLOCK)

    def size(self, key: BlobKey) -> int:
        name = self.object_name(key)
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"])
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFound(key) from None
            raise _storage_error(exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc) from exc

    def local_path(self, key: BlobKey) -> Path | None:
        _check_key(key)
        return None  # in the object store, never on this machine's disk

    def delete(self, key: BlobKey) -> None:
        name = self.object_name(key)
        try:
            # Idempotent: S3 answers 204 for a name that is not there.
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc

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
            raise _storage_error(exc) from exc

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
            raise _storage_error(exc) from exc

    def clean_staging(self) -> int:
        """Abort multipart uploads that a crash (or a lost connection to the store) abandoned.
        Several workers may share the store, so only uploads initiated longer ago than the sweep
        threshold are aborted: never one that another worker is still receiving."""
        cutoff = self.sweep_cutoff()
        removed = 0
        for name, upload_id, initiated in list(self._uploads()):
            if initiated <= cutoff:
                _abort(self.client, self.bucket, name, upload_id)
                removed += 1
        return removed


def _abort(client: S3Client, bucket: str, name: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
    except ClientError as exc:
        if _error_code(exc) != "NoSuchUpload":  # already gone: aborting is idempotent
            raise _storage_error(exc) from exc
    except BotoCoreError as exc:
        raise _storage_error(exc) from exc


class S3StagedBlob:
    """A blob being written as a multipart upload; see ``blobs.StagedBlob``.

    The upload is begun when the first part is full (or at ``close``), so nothing exists in the
    store for a blob that is discarded before then. ``close`` sends what is buffered as the last
    part and frees the buffer: a request that stages many parts holds one buffer at a time.
    """

    def __init__(self, store: S3BlobStore, key: BlobKey) -> None:
        self._store = store
        self._client = store.client
        self._bucket = store.bucket
        self._name = store.object_name(key)
        self._key = key
        self._buffer = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        self._upload_id: str | None = None
        self._size = 0
        self._hash = hashlib.sha256()
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
        self._buffer += data
        self._hash.update(data)
        self._size += len(data)
        while len(self._buffer) >= self._store._part_size:
            part = bytes(self._buffer[: self._store._part_size])
            del self._buffer[: self._store._part_size]
            self._send(part)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def flush(self) -> None:
        self._check_open()  # parts go out when full; S3 has nothing like a partial flush

    def _send(self, part: bytes) -> None:
        try:
            if len(self._parts) >= MAX_PARTS:
                raise StorageFull("the blob is larger than the object store takes in one upload")
            if self._upload_id is None:
                # No Metadata, no ContentType, no Tagging: the object says nothing (invariant 6).
                created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._name)
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            sent = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
            self._parts.append({"ETag": sent["ETag"], "PartNumber": number})
        except (ClientError, BotoCoreError, StorageError) as exc:
            self.discard()
            raise _storage_error(exc) from exc

    def close(self) -> None:
        """Writing is done: the buffered rest goes up as the last part, and the buffer is freed.
        Closing twice is harmless."""
        if self._done:
            raise StorageError("staged blob already committed or discarded")
        if self._closed:
            return
        self._closed = True
        if self._buffer or not self._parts:
            last, self._buffer = bytes(self._buffer), bytearray()
            self._send(last)

    def commit(self) -> tuple[BlobKey, int]:
        """Send the last part if not sent yet, then complete the upload: S3 makes the object
        visible, whole, only now (and it is durable once S3 answers). The caller inserts the row
        after this returns (invariant 9)."""
        self.close()
        assert self._upload_id is not None  # close sent at least one part
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (ClientError, BotoCoreError) as exc:
            self.discard()
            raise _storage_error(exc) from exc
        self._done = True
        return self._key, self._size

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            _abort(self._client, self._bucket, self._name, upload_id)


class _ObjectReader(io.RawIOBase):
    """A committed object as a seekable stream: a ranged GET from the current position, opened
    when reading starts and again after a seek. The first GET happens in the constructor, so a
    missing blob is ``BlobNotFound`` at ``open`` as on the filesystem."""

    def __init__(self, client: S3Client, bucket: str, name: str, key: BlobKey) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._name = name
        self._key = key
        self._pos = 0
        self._body: Any = None
        self._body_pos = 0
        self._get(0)
        self._size = self._length

    def _get(self, start: int) -> None:
        self._close_body()
        try:
            if start == 0:
                answer = self._client.get_object(Bucket=self._bucket, Key=self._name)
            else:
                answer = self._client.get_object(
                    Bucket=self._bucket, Key=self._name, Range=f"bytes={start}-"
                )
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFound(self._key) from None
            raise _storage_error(exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc) from exc
        self._length = int(answer["ContentLength"])
        self._body = answer["Body"]
        self._body_pos = start

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError("invalid whence")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not view or self._pos >= self._size:
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._get(self._pos)
        try:
            data = self._body.read(len(view))
        except (BotoCoreError, OSError) as exc:
            raise _storage_error(exc) from exc
        view[: len(data)] = data
        self._pos += len(data)
        self._body_pos += len(data)
        return len(data)

    def close(self) -> None:
        self._close_body()
        super().close()
