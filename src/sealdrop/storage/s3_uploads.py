"""One S3 multipart upload whose parts go up from a thread of their own (``S3StagedBlob``'s).

Why a thread: the staged blob is written by the thread that reads the encryptor's output; if
that thread also sent each part, encryption would stall for as long as a part takes to go up.
Here ``send`` hands a full part to one uploader thread and returns at once, so the caller fills
part N+1 while part N is being sent. Parts still go up one at a time and in order.

Memory bound: ``send`` first waits for the part before to be stored, so an upload holds at most
two parts (the one being sent, the one being filled), whatever its size; the caller gets the sent
part's buffer back to fill again (no new allocation, no copy).

Errors: a part that fails is reported to the writer at its next ``check``, ``send`` or
``complete`` (as a ``StorageError``), and the writer aborts the upload. ``abort`` first waits for
a part in flight to end: a part that reached the store after the abort could otherwise be kept
by it (AWS documents this) as storage nobody would ever free.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from sealdrop.errors import StorageFull
from sealdrop.storage.s3_objects import error_code, storage_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = ["MAX_PARTS", "MultipartUpload", "abort_upload"]

# S3's limit of parts in one upload.
MAX_PARTS = 10_000


def abort_upload(client: S3Client, bucket: str, name: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
    except ClientError as exc:
        if error_code(exc) != "NoSuchUpload":  # already gone: aborting is idempotent
            raise storage_error(exc) from exc
    except BotoCoreError as exc:
        raise storage_error(exc) from exc


class MultipartUpload:
    """The upload of one object, begun at the first ``send``; not thread-safe (one writer)."""

    def __init__(self, client: S3Client, bucket: str, name: str) -> None:
        self._client = client
        self._bucket = bucket
        self._name = name
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future[str] | None = None
        self._in_flight_part: bytearray | None = None
        self._free: bytearray | None = None  # a sent part's buffer, for the writer to refill

    @property
    def begun(self) -> bool:
        return self._upload_id is not None

    def _upload_part(self, part: bytearray, number: int) -> str:
        # In the uploader thread. The bytearray goes to the socket as it is: botocore wraps only
        # ``bytes`` in a BytesIO (which urllib3 then reads back 16 KiB at a time); a buffer is
        # handed to ``sendall`` whole. Nobody writes into it until this returns.
        assert self._upload_id is not None
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._name,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,  # type: ignore[arg-type]  # botocore takes any bytes-like body
        )
        return sent["ETag"]

    def _settle(self) -> None:
        """Wait for the part in flight and record it; its buffer is free again. Raises
        StorageError if it failed."""
        future, part = self._in_flight, self._in_flight_part
        self._in_flight = self._in_flight_part = None
        if future is None:
            return
        try:
            etag = future.result()
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc
        self._parts.append({"ETag": etag, "PartNumber": len(self._parts) + 1})
        self._free = part

    def check(self) -> None:
        """Raise now (StorageError) if the part in flight has failed; never waits."""
        if self._in_flight is not None and self._in_flight.done():
            self._settle()

    def send(self, part: bytearray) -> bytearray | None:
        """Queue ``part`` (owned by the upload until sent) after the previous part is stored.
        Returns the previous part's buffer for the caller to fill again, or None."""
        self._settle()
        free, self._free = self._free, None
        if len(self._parts) >= MAX_PARTS:
            raise StorageFull("the blob is larger than the object store takes in one upload")
        if self._upload_id is None:
            try:
                # No Metadata, no ContentType, no Tagging: the object says nothing (invariant 6).
                created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._name)
            except (ClientError, BotoCoreError) as exc:
                raise storage_error(exc) from exc
            self._upload_id = created["UploadId"]
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
        self._in_flight = self._sender.submit(self._upload_part, part, len(self._parts) + 1)
        self._in_flight_part = part
        return free

    def complete(self) -> None:
        """Wait for the last part, then make the object visible, whole (S3 answers once it is
        stored)."""
        self._settle()
        self._stop_sender()
        assert self._upload_id is not None
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc
        self._upload_id = None

    def abort(self) -> None:
        """Abort the upload (if begun) once no part is in flight; idempotent."""
        future, self._in_flight, self._in_flight_part = self._in_flight, None, None
        self._free = None
        if future is not None:
            future.exception()  # waits; its error no longer matters, the upload goes anyway
        self._stop_sender()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            abort_upload(self._client, self._bucket, self._name, upload_id)

    def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.shutdown(wait=True)
