"""Uploads that resume (tus 1.0): one file encrypted as one age file across many requests.

What the server keeps between requests, per upload (``storage/partials.py``: on the filesystem
or in the object store): the age file so far (header, then whole 64 KiB chunks, each encrypted
as it was completed), when the upload
expires, how much of the ciphertext is durable, and the stream state — the payload key, the
source id, the declared length, the file's name and type, the recipients — **sealed** with
ChaCha20-Poly1305 under a key derived from the session key that only the source's cookie holds
(``SourceSession.upload_key``; bound to the upload id as associated data). The file key is not
kept at all. So the server alone (a seized disk) cannot read the name, continue the stream, or
re-wrap it to another key; another session cannot even tell the upload exists (404).

Offsets: only whole chunks count. A request that ends mid-chunk has its partial chunk dropped
(it only ever lived in memory) and the offset reported is the last chunk boundary that is durably
on disk; the client sends the rest again from there (tus clients resume from the server's
offset). At most one chunk of plaintext per upload is in memory (invariant 1); nothing of it is
written to disk unencrypted.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sealdrop.crypto import age_stream, envelope, sealing
from sealdrop.crypto.keys import parse_recipient
from sealdrop.errors import (
    Conflict,
    CryptoError,
    FilesNotAccepted,
    MalformedUpload,
    NotAcceptingSubmissions,
    NotFound,
    SessionRequired,
    UploadTooLarge,
)
from sealdrop.ids import SourceId, new_id
from sealdrop.services.clock import Clock, Granularity, arrival_day
from sealdrop.services.instance_settings import InstanceSettings
from sealdrop.services.recipients import encryption_keys
from sealdrop.services.sessions import SourceSession
from sealdrop.services.upload_quota import UploadQuota
from sealdrop.storage.interfaces import Database, NewSubmission
from sealdrop.storage.partials import PartialState, PartialStore

__all__ = ["DEFAULT_EXPIRY_SECONDS", "ResumableUploads", "UploadStatus"]

DEFAULT_EXPIRY_SECONDS = 24 * 3600
# How much ciphertext is written between fsync + state checkpoints within one request: what a
# crash of the server can cost the client at most (it resends from the last checkpoint).
CHECKPOINT_BYTES = 8 * 1024 * 1024
# The sealed state is padded to a multiple of this, so its size does not tell a name's length.
_STATE_PAD = 1024
_SLOT = age_stream.CHUNK + age_stream.TAG


@dataclass(frozen=True, slots=True)
class UploadStatus:
    offset: int  # plaintext bytes durably stored (whole chunks), as tus reports it
    length: int
    expires: int
    finished: bool = False


@dataclass(frozen=True, slots=True)
class _Stream:
    keys: age_stream.StreamKeys
    source_id: str
    length: int
    header_len: int
    filename: str
    content_type: str
    recipients: list[str]

    def seal(self, key: bytes, upload_id: str) -> bytes:
        payload = json.dumps(
            {
                "k": base64.b64encode(self.keys.payload_key).decode("ascii"),
                "s": self.source_id,
                "n": self.length,
                "h": self.header_len,
                "f": self.filename,
                "t": self.content_type,
                "r": self.recipients,
            }
        ).encode("utf-8")
        payload += b" " * (-len(payload) % _STATE_PAD)
        return sealing.seal(key, payload, upload_id.encode("ascii"))

    @staticmethod
    def open(key: bytes, upload_id: str, sealed: bytes) -> _Stream:
        try:
            raw = json.loads(sealing.unseal(key, sealed, upload_id.encode("ascii")))
            return _Stream(
                age_stream.StreamKeys(base64.b64decode(raw["k"])),
                str(raw["s"]),
                int(raw["n"]),
                int(raw["h"]),
                str(raw["f"]),
                str(raw["t"]),
                [str(r) for r in raw["r"]],
            )
        except (CryptoError, ValueError, KeyError, TypeError):
            # Another session's key, or a damaged state: to this caller the upload does not exist.
            raise NotFound("no such upload") from None


def _offset(stream: _Stream, durable: int) -> int:
    """Plaintext bytes behind ``durable`` bytes of ciphertext (whole chunks only, or all)."""
    if durable >= age_stream.ciphertext_size(stream.header_len, stream.length):
        return stream.length  # the last, short chunk is written too
    chunks = (durable - stream.header_len) // _SLOT
    return min(chunks * age_stream.CHUNK, stream.length)


class ResumableUploads:
    def __init__(
        self,
        database: Database,
        partials: PartialStore,
        clock: Clock,
        granularity: Granularity,
        runtime: InstanceSettings,
        quota: UploadQuota | None,
        expiry_seconds: int = DEFAULT_EXPIRY_SECONDS,
    ) -> None:
        self._db = database
        self._partials = partials
        self._clock = clock
        self._granularity = granularity
        self._runtime = runtime
        self._quota = quota
        self.expiry_seconds = expiry_seconds
        # One request writes an upload at a time; a second one meanwhile gets Conflict.
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def create(
        self, session: SourceSession, length: int, filename: str, content_type: str
    ) -> tuple[str, UploadStatus]:
        """Begin an upload of ``length`` bytes: the same checks as a form's intake."""
        with self._db.transaction(read_only=True) as repos:
            if repos.sources.get(session.source_id) is None:
                raise SessionRequired()
            runtime = self._runtime.current_in(repos)
            keys = encryption_keys(repos)
        if not keys or not runtime.accepting_submissions:
            raise NotAcceptingSubmissions("no recipients configured, or intake switched off")
        if not runtime.files_enabled:
            raise FilesNotAccepted("this instance accepts messages only")
        if length < 0:
            raise MalformedUpload("negative Upload-Length")
        if length > runtime.max_upload_bytes:
            raise UploadTooLarge(runtime.max_upload_bytes)
        if self._quota is not None:
            # Checked, not held: the bytes are counted as they arrive (``receive``).
            reservation = self._quota.reserve(session.source_id, length)
            reservation.release()
            if reservation.granted < length:
                raise reservation.exceeded()
        header, stream_keys = age_stream.new_stream([parse_recipient(k) for k in keys])
        stream = _Stream(
            stream_keys, session.source_id, length, len(header), filename, content_type, keys
        )
        upload_id = new_id()
        expires = int(self._clock.now()) + self.expiry_seconds
        self._partials.sweep(int(self._clock.now()))
        self._partials.create(
            upload_id, header, expires, stream.seal(session.upload_key, upload_id)
        )
        return upload_id, UploadStatus(0, length, expires)

    def _open(self, session: SourceSession, upload_id: str) -> tuple[_Stream, PartialState]:
        state = self._partials.state(upload_id)
        if state.expires <= self._clock.now():
            self._partials.delete(upload_id)
            raise NotFound("no such upload")
        stream = _Stream.open(session.upload_key, upload_id, state.sealed)
        if stream.source_id != session.source_id:
            raise NotFound("no such upload")
        return stream, state

    def status(self, session: SourceSession, upload_id: str) -> UploadStatus:
        stream, state = self._open(session, upload_id)
        return UploadStatus(_offset(stream, state.durable), stream.length, state.expires)

    def delete(self, session: SourceSession, upload_id: str) -> None:
        self._open(session, upload_id)  # NotFound for anyone but its owner
        self._partials.delete(upload_id)

    def sweep(self) -> int:
        """Remove expired uploads (at start and with each new upload)."""
        return self._partials.sweep(int(self._clock.now()))

    def receive(
        self, session: SourceSession, upload_id: str, offset: int, read: Callable[[], bytes]
    ) -> UploadStatus:
        """Encrypt a PATCH body that continues the upload at ``offset``, as it arrives.

        ``read`` returns the next piece of body (b"" at its end) and may raise (a disconnect):
        what was completed and checkpointed before stays, the partial chunk is dropped.
        """
        with self._lock:
            if upload_id in self._busy:
                raise Conflict("another request is writing this upload")
            self._busy.add(upload_id)
        try:
            return self._receive(session, upload_id, offset, read)
        finally:
            with self._lock:
                self._busy.discard(upload_id)

    def _receive(
        self, session: SourceSession, upload_id: str, offset: int, read: Callable[[], bytes]
    ) -> UploadStatus:
        stream, state = self._open(session, upload_id)
        start = _offset(stream, state.durable)
        if offset != start:
            raise Conflict("Upload-Offset does not match the upload's offset")
        reservation = None
        if self._quota is not None and stream.length > start:
            reservation = self._quota.reserve(session.source_id, stream.length - start)
        writer = self._partials.writer(upload_id, state)
        position = start  # plaintext bytes encrypted so far
        buffer = bytearray()
        since_checkpoint = 0
        try:
            while position < stream.length:
                piece = read()
                if not piece:
                    break
                buffer += piece
                if position + len(buffer) > stream.length:
                    raise MalformedUpload("more bytes than Upload-Length")
                if reservation is not None and position + len(buffer) - start > reservation.granted:
                    raise reservation.exceeded()
                while len(buffer) >= age_stream.CHUNK or (
                    buffer and position + len(buffer) == stream.length
                ):
                    chunk = bytes(buffer[: age_stream.CHUNK])
                    del buffer[: age_stream.CHUNK]
                    index = position // age_stream.CHUNK
                    last = position + len(chunk) == stream.length
                    writer.write(age_stream.encrypt_chunk(stream.keys, index, chunk, last))
                    position += len(chunk)
                    since_checkpoint += len(chunk)
                    if since_checkpoint >= CHECKPOINT_BYTES:
                        writer.checkpoint()
                        since_checkpoint = 0
            if stream.length == 0 and position == 0:
                writer.write(age_stream.encrypt_chunk(stream.keys, 0, b"", True))
            if position >= stream.length and read():
                raise MalformedUpload("more bytes than Upload-Length")
        finally:
            # Whatever ended the body: what was encrypted becomes durable and counts; the
            # partial chunk (plaintext, memory only) is overwritten and dropped.
            buffer[:] = bytes(len(buffer))
            try:
                durable = writer.checkpoint()
            finally:
                writer.close()
                if reservation is not None:
                    done = _offset(stream, durable) - start
                    reservation.settle(max(0, done))
        offset_now = _offset(stream, durable)
        if offset_now < stream.length:
            return UploadStatus(offset_now, stream.length, state.expires)
        self._finish(upload_id, stream)
        return UploadStatus(stream.length, stream.length, state.expires, finished=True)

    def _finish(self, upload_id: str, stream: _Stream) -> None:
        """The same item a form upload makes: the blob, its sealed metadata, one row."""
        metadata = json.dumps(
            {
                "filename": stream.filename,
                "content_type": stream.content_type,
                "size": stream.length,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        sealed = envelope.encrypt_bytes(metadata, [parse_recipient(r) for r in stream.recipients])
        key, size, digest = self._partials.finish(upload_id)
        source_id = SourceId(stream.source_id)
        day = arrival_day(self._clock, self._granularity)
        with self._db.transaction() as repos:
            seq = repos.sources.reserve_sequence(source_id, 1)
            repos.sources.mark_active(source_id)
            repos.sources.bump_version(source_id)
            repos.notifications.note_activity()
            repos.submissions.add(
                source_id, seq, day, NewSubmission("file", key, size, sealed, digest)
            )
