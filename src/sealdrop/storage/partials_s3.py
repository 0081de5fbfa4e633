"""Resumable uploads in progress in the object store, so that any worker can continue one.

Layout under the store's prefix, per upload: ``partial/<upload id>/state`` (one line ``expires
durable``, then the stream state sealed under the source's cookie-held key, as on the filesystem)
and ``partial/<upload id>/<offset>`` (a segment: the ciphertext written between two checkpoints,
named by where it starts in the age file, 16 digits). ``create`` writes the header as the
segment at 0.

Durability order (as ``partials_fs``): a checkpoint first stores the segment (S3 answers only once
it is stored), and only then a new state naming the new durable length. The durable length so
never counts a byte that is not stored. A segment at or past the durable length (stored, but its
state never written: a crash, a lost connection) is not part of the upload: the next request
writes its own segment at that offset, which replaces it, and ``finish`` uses only the segments
that tile ``[0, durable)`` exactly.

A segment is at most one checkpoint (``CHECKPOINT_BYTES`` in services/resumable.py, 8 MiB) of
ciphertext, held in memory until it is stored: the same bound as a blob's part. ``finish``
streams the segments, in order, into a new blob (a multipart upload; the hash is computed on
the way), then removes the upload's objects.

One request at a time writes an upload: a worker refuses a second one (Conflict), but two
workers do not know of each other's requests; a client that sent two PATCHes for one upload to
two workers at once could interleave their segments. tus clients (and the source page's script)
send one at a time; docs/design.md says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from sealdrop.errors import NotFound, StorageError
from sealdrop.ids import BlobKey
from sealdrop.storage.blobs_s3 import S3BlobStore
from sealdrop.storage.partials import MAX_STATE_BYTES, PartialState
from sealdrop.storage.s3_objects import NOT_FOUND, error_code, storage_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

__all__ = ["S3PartialUploads", "S3PartialWriter"]

_ID = re.compile(r"[0-9a-f]{32}")
_SEGMENT = re.compile(r"[0-9]{16}")
_READ_BLOCK = 1024 * 1024
# A sweep lists every upload's objects and reads each state: requests to the store, not a local
# directory read. It runs with every new upload, so a flood of new uploads would make each one
# cost as many requests as there are uploads; once a minute per worker is enough (expiry is
# counted in hours).
SWEEP_INTERVAL = 60


def _check(upload_id: str) -> str:
    if not isinstance(upload_id, str) or _ID.fullmatch(upload_id) is None:
        raise NotFound("no such upload")
    return upload_id


class S3PartialUploads:
    def __init__(self, blobs: S3BlobStore) -> None:
        self._blobs = blobs
        self._client: S3Client = blobs.client
        self._bucket = blobs.bucket
        self._root = blobs.location.prefix + "partial/"
        self._last_sweep: int | None = None

    def _dir(self, upload_id: str) -> str:
        return f"{self._root}{_check(upload_id)}/"

    def _put(self, name: str, body: bytes) -> None:
        try:
            # No metadata, no content type (invariant 6), as for blobs.
            self._client.put_object(Bucket=self._bucket, Key=name, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def _write_state(self, upload_id: str, state: PartialState) -> None:
        self._put(self._dir(upload_id) + "state", state.encode())

    def _put_segment(self, upload_id: str, offset: int, data: bytes) -> None:
        self._put(f"{self._dir(upload_id)}{offset:016d}", data)

    def create(self, upload_id: str, header: bytes, expires: int, sealed: bytes) -> None:
        """A new upload: its age header as the segment at 0, then its state. (A state that
        names a header never stored, after a crash between the two, is a broken upload that
        ``finish`` refuses and the sweep removes at expiry.)"""
        self._put_segment(upload_id, 0, header)
        self._write_state(upload_id, PartialState(expires, len(header), sealed))

    def state(self, upload_id: str) -> PartialState:
        name = self._dir(upload_id) + "state"
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=name)
            with answer["Body"] as body:
                raw = body.read(MAX_STATE_BYTES)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise NotFound("no such upload") from None
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise storage_error(exc) from exc
        state = PartialState.decode(raw)
        if state is None:
            raise NotFound("no such upload")
        return state

    def writer(self, upload_id: str, state: PartialState) -> S3PartialWriter:
        return S3PartialWriter(self, _check(upload_id), state)

    def _objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    yield entry["Key"], int(entry["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def _segments(self, upload_id: str, durable: int) -> list[str]:
        """The segments that tile [0, durable) exactly, in order; NotFound if any is missing."""
        directory = self._dir(upload_id)
        sizes: dict[int, tuple[str, int]] = {}
        for name, size in self._objects(directory):
            tail = name[len(directory) :]
            if _SEGMENT.fullmatch(tail):
                sizes[int(tail)] = (name, size)
        chain, position = [], 0
        while position < durable:
            if position not in sizes or sizes[position][1] == 0:
                raise NotFound("no such upload")  # damaged: a segment is missing
            name, size = sizes[position]
            chain.append(name)
            position += size
        if position != durable:
            raise NotFound("no such upload")
        return chain

    def finish(self, upload_id: str) -> tuple[BlobKey, int, str]:
        """Stream the durable segments, in order, into a new blob; then remove the upload."""
        state = self.state(upload_id)
        chain = self._segments(upload_id, state.durable)
        with self._blobs.stage() as staged:
            for name in chain:
                try:
                    answer = self._client.get_object(Bucket=self._bucket, Key=name)
                    with answer["Body"] as body:
                        while block := body.read(_READ_BLOCK):
                            staged.write(block)
                except ClientError as exc:
                    if error_code(exc) in NOT_FOUND:
                        raise NotFound("no such upload") from None
                    raise storage_error(exc) from exc
                except BotoCoreError as exc:
                    raise storage_error(exc) from exc
            digest = staged.digest
            key, size = staged.commit()
        self.delete(upload_id)
        return key, size, digest

    def delete(self, upload_id: str) -> None:
        names = [name for name, _ in self._objects(self._dir(upload_id))]
        self._delete(names)

    def _delete(self, names: list[str]) -> None:
        try:
            for start in range(0, len(names), 1000):  # DeleteObjects takes 1,000 at a time
                batch: list[ObjectIdentifierTypeDef] = [
                    {"Key": name} for name in names[start : start + 1000]
                ]
                answer = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
                )
                if answer.get("Errors"):
                    raise StorageError("object store error: some objects were not deleted")
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc

    def ids(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._objects(self._root):
            upload_id = name[len(self._root) :].partition("/")[0]
            if _ID.fullmatch(upload_id) and upload_id not in seen:
                seen.add(upload_id)
                yield upload_id

    def sweep(self, now: int) -> int:
        """Remove uploads whose time has passed, whose state is unreadable, or that have no
        state (a crash before it was written; only once older than the store's sweep threshold,
        for the upload may be another worker's, being created right now). At most once a minute
        (``SWEEP_INTERVAL``); 0 when skipped."""
        if self._last_sweep is not None and 0 <= now - self._last_sweep < SWEEP_INTERVAL:
            return 0
        self._last_sweep = now
        removed = 0
        for upload_id in list(self.ids()):
            try:
                expired = self.state(upload_id).expires <= now
            except NotFound:
                expired = self._stateless_and_old(upload_id)
            if expired:
                self.delete(upload_id)
                removed += 1
        return removed

    def _stateless_and_old(self, upload_id: str) -> bool:
        paginator = self._client.get_paginator("list_objects_v2")
        cutoff = self._blobs.sweep_cutoff()
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._dir(upload_id)):
                for entry in page.get("Contents", []):
                    if entry["LastModified"].timestamp() > cutoff:
                        return False
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc) from exc
        return True


class S3PartialWriter:
    """Buffers the ciphertext of one checkpoint; ``checkpoint`` stores it as a segment, then the
    state (module docstring)."""

    def __init__(self, store: S3PartialUploads, upload_id: str, state: PartialState) -> None:
        self._store = store
        self._upload_id = upload_id
        self._state = state
        self._buffer: bytearray | None = bytearray()

    @property
    def durable(self) -> int:
        return self._state.durable

    def write(self, data: bytes) -> None:
        if self._buffer is None:
            raise StorageError("partial upload writer closed")
        self._buffer += data

    def checkpoint(self) -> int:
        if not self._buffer:
            return self._state.durable
        segment = bytes(self._buffer)
        self._store._put_segment(self._upload_id, self._state.durable, segment)
        state = PartialState(
            self._state.expires, self._state.durable + len(segment), self._state.sealed
        )
        self._store._write_state(self._upload_id, state)
        self._state = state
        self._buffer = bytearray()
        return state.durable

    def close(self) -> None:
        self._buffer = None
