"""Receiving a submission: each part is encrypted while it streams in, then made durable.

The order is what makes a submission survive kill -9 and never appear half-stored (invariant 9):

1. every part is encrypted chunk by chunk into a staged blob (plaintext exists only as the chunk in
   hand; invariant 1), which is fsynced and closed as soon as its part ends, so that a body of
   many parts holds one file descriptor at a time, not one per part until the request ends;
2. on ``commit`` each staged blob is atomically renamed into place, and its directory fsynced;
3. only then are the rows inserted, in one transaction.

A crash before 3 leaves staged files (removed at the next start) or committed blobs no row points
to (orphans, swept at the next start); neither is ever shown as a submission.

What one request may store is bounded (invariant 10): one message (the form has one message box)
and at most ``MAX_ITEMS_PER_SUBMISSION`` items in all, counted before a part is read. A request
over either bound is refused whole: nothing it staged is kept.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Recipient, parse_recipient
from sealdrop.errors import (
    DuplicateMessage,
    EmptySubmission,
    FilesNotAccepted,
    MalformedUpload,
    MessageTooLong,
    NotAcceptingSubmissions,
    SessionRequired,
    TooManyItems,
    UploadTooLarge,
)
from sealdrop.ids import BlobKey, SourceId
from sealdrop.services import age_child
from sealdrop.services.clock import Clock, Granularity, arrival_day
from sealdrop.services.instance_settings import InstanceSettings, RuntimeSettings
from sealdrop.services.recipients import encryption_keys
from sealdrop.services.upload_quota import QuotaReservation, UploadQuota
from sealdrop.storage.blobs import BlobStore, StagedBlob
from sealdrop.storage.interfaces import (
    Database,
    NewSubmission,
    SubmissionKind,
)

# How many items (the message and the files together) one submission may carry; each is a blob
# and a row. Before this covered messages too, one body of 5,000 message parts stored 5,000.
MAX_ITEMS_PER_SUBMISSION = 100


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SourceOverview:
    received: list[tuple[dt.date | None, int]]
    accepting: bool
    runtime: RuntimeSettings


@dataclass(frozen=True, slots=True)
class Receipt:
    messages: int
    files: int


@dataclass(slots=True)
class _Pending:
    kind: SubmissionKind
    staged: StagedBlob
    metadata_ciphertext: bytes | None


class _MessageReader:
    """Passes a message through while checking it: valid UTF-8, at most ``limit`` characters.

    It never holds more than the chunk in hand, so a long message is not buffered as plaintext.
    """

    def __init__(self, stream: Readable, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.chars = 0
        self.has_text = False

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise MalformedUpload("message is not valid UTF-8") from None
        # Browsers count a line break as one character against the textarea's maxlength but
        # send it as CRLF; count it the same way so that what the form allowed is accepted.
        self.chars += len(text) - text.count("\r")
        if self.chars > self._limit:
            raise MessageTooLong(self._limit)
        self.has_text = self.has_text or text.strip() != ""
        return chunk


class _CountingReader:
    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        self.size += len(chunk)
        return chunk


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What every submission of one instance is received into, built once by
    ``SubmissionService``: each intake holds this and only its own submission's state."""

    database: Database
    blobs: BlobStore
    clock: Clock
    granularity: Granularity
    # The stock age program that encrypts files in a child process, or None: pyrage in-process.
    age_binary: str | None


class SubmissionIntake:
    """One submission being received, begun by ``SubmissionService.intake`` (which has checked
    the recipients and set the limits). Use as a context manager: leaving it without ``commit``
    discards everything staged."""

    def __init__(
        self,
        context: IntakeContext,
        source_id: SourceId,
        recipients: Sequence[Recipient],
        runtime: RuntimeSettings,
        reservation: QuotaReservation | None = None,
    ) -> None:
        self._context = context
        self._source_id = source_id
        self._recipients = list(recipients)
        # The limits as they were when the submission began: an admin's change applies to the
        # next one.
        self._runtime = runtime
        self._reservation = reservation
        # How many bytes of body this submission may have: the instance's upload limit, or what
        # the source's daily quota set aside for it if that is less. The body is read outside
        # services (by web), which stops reading there and refuses with ``too_large()``.
        self.limit = runtime.max_upload_bytes if reservation is None else reservation.granted
        self._pending: list[_Pending] = []
        self._items = 0  # parts taken so far, blank messages included
        self._has_message = False
        self._stored_bytes = 0  # what the quota counts: the bytes of the parts kept
        self._done = False

    def __enter__(self) -> SubmissionIntake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the intake: without ``commit``, discard what was staged and give back the quota
        set aside. Safe to call more than once, and after ``commit``."""
        if not self._done:
            self.abort()

    def too_large(self) -> Exception:
        """The refusal for a body beyond ``limit``: the upload limit, or the daily quota."""
        maximum = self._runtime.max_upload_bytes
        if self._reservation is None or self.limit >= maximum:
            return UploadTooLarge(maximum)
        return self._reservation.exceeded()

    def _take_item(self) -> None:
        """Count one more part against the cap, before any of it is read or staged."""
        if self._items >= MAX_ITEMS_PER_SUBMISSION:
            raise TooManyItems(MAX_ITEMS_PER_SUBMISSION)
        self._items += 1

    def add_message(self, stream: Readable) -> None:
        """Encrypt a message as it streams in. Empty or blank messages are dropped.

        One per submission: the form has one message box, so a second is a forged body, refused
        before it is read (even after a blank first one)."""
        if self._has_message:
            raise DuplicateMessage("more than one message")
        self._take_item()
        self._has_message = True
        reader = _MessageReader(stream, self._runtime.max_message_chars)
        counted = _CountingReader(reader)
        staged = self._encrypt_into_stage(counted)
        if not reader.has_text:
            staged.discard()
            return
        self._stored_bytes += counted.size
        self._pending.append(_Pending("message", staged, None))

    def add_file(self, filename: str, content_type: str, stream: Readable) -> None:
        """Encrypt a file as it streams in; its name and type go only into encrypted metadata.

        The file name is data, never a path: it is not used on this server for anything but being
        sealed into the metadata ciphertext.
        """
        if not self._runtime.files_enabled:
            raise FilesNotAccepted("this instance accepts messages only")
        self._take_item()
        reader = _CountingReader(stream)
        staged = self._encrypt_into_stage(reader, in_child=True)
        try:
            metadata = json.dumps(
                {"filename": filename, "content_type": content_type, "size": reader.size},
                ensure_ascii=False,
            ).encode("utf-8")
            sealed = envelope.encrypt_bytes(metadata, self._recipients)
        except BaseException:
            staged.discard()
            raise
        self._pending.append(_Pending("file", staged, sealed))
        self._stored_bytes += reader.size

    def _encrypt_into_stage(self, reader: Readable, in_child: bool = False) -> StagedBlob:
        """Encrypt into a new staged blob. Files (``in_child``), which can be gigabytes, are
        encrypted by the stock age program in a child process when it is installed: in-process
        encryption holds the GIL and caps an upload at one core. Messages are small; a child
        process would cost more than it saves."""
        staged = self._context.blobs.stage()
        age_binary = self._context.age_binary
        try:
            if in_child and age_binary is not None:
                output = staged.direct_write() or staged  # FS: the child writes the file
                age_child.encrypt_in_child(age_binary, reader, output, self._recipients)
            else:
                envelope.encrypt(reader, staged, self._recipients)
            # Written: fsync it and let go of its descriptor now (see the module docstring).
            staged.close()
        except BaseException:
            staged.discard()
            raise
        return staged

    def commit(self) -> Receipt:
        """Make every staged part durable, then record them all in one transaction."""
        if not self._pending:
            raise EmptySubmission("nothing to submit")
        durable: list[tuple[_Pending, BlobKey, int, str]] = []
        try:
            for pending in self._pending:
                digest = pending.staged.digest
                key, size = pending.staged.commit()
                durable.append((pending, key, size, digest))
            day = arrival_day(self._context.clock, self._context.granularity)
            with self._context.database.transaction() as repos:
                first = repos.sources.reserve_sequence(self._source_id, len(durable))
                # From now on the source is kept: forget when it began (see pending_since).
                repos.sources.mark_active(self._source_id)
                repos.sources.bump_version(self._source_id)
                # What the scheduled notices report; a counter, not a time (services/notifier.py).
                repos.notifications.note_activity()
                for offset, (pending, key, size, digest) in enumerate(durable):
                    new = NewSubmission(
                        pending.kind, key, size, pending.metadata_ciphertext, digest
                    )
                    repos.submissions.add(self._source_id, first + offset, day, new)
        except BaseException:
            # The rows were not written: the durable blobs are orphans; remove them now rather
            # than wait for the sweep at the next start.
            for _, key, _, _ in durable:
                self._context.blobs.delete(key)
            raise
        self._done = True
        if self._reservation is not None:
            self._reservation.settle(self._stored_bytes)
        files = sum(p.kind == "file" for p in self._pending)
        return Receipt(messages=len(self._pending) - files, files=files)

    def abort(self) -> None:
        for pending in self._pending:
            pending.staged.discard()
        self._pending.clear()
        self._done = True
        if self._reservation is not None:
            self._reservation.release()


class SubmissionService:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        clock: Clock,
        granularity: Granularity,
        runtime: InstanceSettings,
        age_binary: str | None = None,
        quota: UploadQuota | None = None,
    ) -> None:
        self._context = IntakeContext(database, blobs, clock, granularity, age_binary)
        self._runtime = runtime
        self._quota = quota

    def overview(self, source_id: SourceId) -> SourceOverview:
        """What the conversation page shows of the source's own side, read in one transaction:
        how many items arrived on which day, whether a new submission would be taken, and the
        limits the form states."""
        with self._context.database.transaction(read_only=True) as repos:
            records = repos.submissions.for_source(source_id)
            runtime = self._runtime.current_in(repos)
            has_recipients = bool(encryption_keys(repos, post_quantum=self._runtime.post_quantum))
        counts: dict[dt.date | None, int] = {}
        for record in records:
            counts[record.arrival_day] = counts.get(record.arrival_day, 0) + 1
        return SourceOverview(
            received=list(counts.items()),
            accepting=runtime.accepting_submissions and has_recipients,
            runtime=runtime,
        )

    def recipient_keys(self) -> list[str]:
        """Who submissions (and so replies) are encrypted to (``recipients.encryption_keys``)."""
        with self._context.database.transaction(read_only=True) as repos:
            return encryption_keys(repos, post_quantum=self._runtime.post_quantum)

    def accepting(self) -> bool:
        """Whether submissions are switched on and there is anyone to encrypt them to."""
        with self._context.database.transaction(read_only=True) as repos:
            if not self._runtime.current_in(repos).accepting_submissions:
                return False
            return bool(encryption_keys(repos, post_quantum=self._runtime.post_quantum))

    def intake(self, source_id: SourceId, declared_bytes: int | None = None) -> SubmissionIntake:
        """Begin receiving a submission of ``declared_bytes`` of body (None: not known before it
        is read). Raises NotAcceptingSubmissions when there is nobody to encrypt to (we refuse
        rather than store anything we could not seal), UploadTooLarge or UploadQuotaExceeded
        when the declared size is beyond the upload limit or the source's quota: all before a
        byte of the body is read. The intake's ``limit`` bounds the body that follows."""
        # One read-only transaction: no write lock is taken before the body is read (the rows
        # are written by ``commit``, once everything is encrypted and durable).
        with self._context.database.transaction(read_only=True) as repos:
            if repos.sources.get(source_id) is None:
                # The source was deleted while its session lived on.
                raise SessionRequired()
            runtime = self._runtime.current_in(repos)
            keys = encryption_keys(repos, post_quantum=self._runtime.post_quantum)
        if not keys or not runtime.accepting_submissions:
            raise NotAcceptingSubmissions("no recipients configured, or intake switched off")
        # Organisation keys and every active journalist's reader keys (invariant 2).
        recipients = [parse_recipient(key) for key in keys]
        maximum = runtime.max_upload_bytes
        if declared_bytes is not None and declared_bytes > maximum:
            raise UploadTooLarge(maximum)
        reservation = None
        if self._quota is not None:
            # Set aside now, so that uploads of one source running at once share the allowance
            # instead of each seeing all of it.
            wanted = maximum if declared_bytes is None else declared_bytes
            reservation = self._quota.reserve(source_id, wanted)
            if declared_bytes is not None and reservation.granted < declared_bytes:
                reservation.release()
                raise reservation.exceeded()
        return SubmissionIntake(self._context, source_id, recipients, runtime, reservation)

    def listing(self) -> list[StoredItem]:
        """Every stored item, for operators: ids, sizes and places, never content."""
        with self._context.database.transaction() as repos:
            records = list(repos.submissions.all())
            pseudonyms = {}
            for source_id in {r.source_id for r in records}:
                source = repos.sources.get(source_id)
                pseudonyms[source_id] = source.pseudonym if source else ""
        return [
            StoredItem(
                id=r.id,
                source=r.source_id,
                pseudonym=pseudonyms[r.source_id],
                kind=r.kind,
                arrival_day=r.arrival_day.isoformat() if r.arrival_day else None,
                size=r.size,
                seq=r.seq,
                path=str(path) if (path := self._context.blobs.local_path(r.blob_key)) else None,
            )
            for r in records
        ]

    def recover(self) -> tuple[int, int]:
        """After a start: drop staged uploads and blobs no row refers to.

        On the filesystem this runs before this process serves, under the instance lock: no
        other process receives into the same store. An object store may be shared by workers
        that are receiving right now, so there it removes only uploads and blobs older than its
        sweep threshold (``settled_keys``, ``clean_staging``). The candidates are listed before
        the rows are read: a blob whose row is committed meanwhile is then found referenced.
        Returns (staged files removed, orphan blobs removed).
        """
        staged = self._context.blobs.clean_staging()
        candidates = set(self._context.blobs.settled_keys())
        with self._context.database.transaction() as repos:
            referenced = repos.submissions.blob_keys() | repos.replies.blob_keys()
        orphans = candidates - referenced
        for key in orphans:
            self._context.blobs.delete(key)
        return staged, len(orphans)


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: str
    source: str
    pseudonym: str
    kind: str
    arrival_day: str | None
    size: int
    seq: int
    path: str | None
