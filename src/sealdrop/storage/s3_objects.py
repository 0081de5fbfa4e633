"""What the S3 blob store and its resumable uploads share: the client, and S3's answers as ours.

``make_s3_client`` builds the boto3 client from the settings' values; ``storage_error`` turns a
botocore exception into a ``StorageError`` (never quoting a response body); ``ObjectReader`` is
a committed object as a seekable stream (ranged GETs) for ``BlobStore.open``.
"""

from __future__ import annotations

import io
import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sealdrop.errors import BlobNotFound, StorageError, StorageFull
from sealdrop.ids import BlobKey

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "NOT_FOUND",
    "ObjectReader",
    "error_code",
    "make_s3_client",
    "signs_payload",
    "storage_error",
]

NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_FULL = frozenset({"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull"})


def signs_payload(endpoint_url: str | None) -> bool:
    """Whether requests to this endpoint carry the SHA-256 of their body in their signature.

    SigV4 may sign a body's SHA-256 or say ``UNSIGNED-PAYLOAD``; botocore signs it over plain
    HTTP, and over HTTPS unless the request carries a checksum header, so with the checksums
    below (``when_required``) it would hash every part a second time (we already hash the
    ciphertext for the row), ~0.6 CPU-s/GiB. The hash guards the body on its way to the store:
    - ``https://`` (and AWS's own endpoints, no ``endpoint_url``): TLS already does (its AEAD
      refuses a byte changed on the way), so no second hash;
    - ``http://`` to a loopback address: there is no wire between the two processes, nothing
      on the way to corrupt or change the bytes, so no second hash;
    - ``http://`` to any other host: the signed hash is the only check the store makes on what
      arrives (a corrupted part is refused, so the upload fails instead of keeping a blob that
      the reader would reject), and it stops anyone on the path from replacing the ciphertext;
      kept, whatever it costs.
    In every case the row's SHA-256, computed before the bytes leave the server, is checked by
    the reader on each download (and age's AEAD refuses a changed chunk): a change is found
    there, but only as a lost submission, not a refused upload.
    """
    if not endpoint_url:
        return False
    parts = urlsplit(endpoint_url)
    if parts.scheme == "https":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: we cannot know where it leads
        return True


def make_s3_client(
    endpoint_url: str | None, region: str | None, access_key_id: str, secret_access_key: str
) -> S3Client:
    """A boto3 S3 client for this store: path-style addressing (works with every S3-compatible
    server), checksums only where the API requires them (not every such server accepts the
    newer trailing checksums), the body's hash signed only where nothing else guards it
    (``signs_payload``), a few retries."""
    config = Config(
        s3={
            "addressing_style": "path",
            # An explicit setting: botocore's S3 signer follows it over http:// too.
            "payload_signing_enabled": signs_payload(endpoint_url),
        },
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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_error(exc: Exception) -> StorageError:
    """The store's answer as one of ours; its text names the operation and S3's error code, never
    a key's secret or a response body."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _FULL:
            return StorageFull("the object store refused the blob (full or too large)")
        return StorageError(f"object store error: {code or 'unknown'}")
    return StorageError(f"object store unreachable: {type(exc).__name__}")


class ObjectReader(io.RawIOBase):
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
            if error_code(exc) in NOT_FOUND:
                raise BlobNotFound(self._key) from None
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
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
            raise storage_error(exc) from exc
        view[: len(data)] = data
        self._pos += len(data)
        self._body_pos += len(data)
        return len(data)

    def close(self) -> None:
        self._close_body()
        super().close()
