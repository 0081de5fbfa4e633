"""SubmissionService and SubmissionIntake on a real SQLite database and filesystem blob store:
streaming encryption, all-or-nothing commit, limits, and recovery after a crash."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealdrop.config import load_settings
from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.errors import (
    ClientDisconnected,
    CryptoError,
    DatabaseUnavailable,
    DuplicateMessage,
    EmptySubmission,
    MalformedUpload,
    MessageTooLong,
    NotAcceptingSubmissions,
    SessionRequired,
    StorageFull,
    TooManyItems,
    UploadTooLarge,
)
from sealdrop.ids import BlobKey, SourceId, new_id
from sealdrop.services.container import build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.submissions import (
    MAX_ITEMS_PER_SUBMISSION,
    Receipt,
    SubmissionIntake,
)
from sealdrop.storage.blobs_fs import FilesystemBlobStore, FilesystemStagedBlob
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import SubmissionRecord
from sealdrop.storage.repositories import SqlSubmissionRepository
from sealdrop.testing import FakeClock

MAX_CHARS = 20
# 2027-01-15 23:59:59 UTC: a second before midnight, so a local-time date would differ in many
# time zones.
NOW = dt.datetime(2027, 1, 15, 23, 59, 59, tzinfo=dt.UTC).timestamp()


class Chunks:
    """A stream that hands out the given chunks whatever size is asked for, then b""."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = list(chunks)
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        return self._chunks.pop(0) if self._chunks else b""


class Failing:
    """A stream that gives ``before`` bytes, then raises ``error`` (a client going away)."""

    def __init__(self, before: int, error: BaseException) -> None:
        self._left = before
        self._error = error

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            raise self._error
        n = min(self._left, 8192 if size < 0 else size)
        self._left -= n
        return b"p" * n


class Env:
    """A real instance (as `sealdrop init` makes it) with the service graph the server builds,
    a fake clock, and direct handles on its database and blob store for the checks."""

    def __init__(
        self, root: Path, granularity: str = "day", extra: dict[str, str] | None = None
    ) -> None:
        self.root = init_instance(root / "instance")
        settings = load_settings(
            self.root,
            env={
                "SEALDROP_LIMITS_MAX_MESSAGE_CHARS": str(MAX_CHARS),
                "SEALDROP_PRIVACY_ARRIVAL_GRANULARITY": granularity,
                **(extra or {}),
            },
        )
        self.settings = settings
        self.clock = FakeClock(NOW)
        self.services = build_services(settings, self.clock)
        self.service = self.services.submissions
        self.db = SqlDatabase(settings.database_url)
        self.blobs = FilesystemBlobStore(settings.blob_dir)
        self.staging_dir = settings.blob_dir / "staging"
        self.identity = generate_identity()
        with self.db.transaction() as repos:
            self.source = repos.sources.add(
                new_id().encode(), "age1placeholder", None, "test source", None
            ).id

    def add_recipient(self) -> None:
        with self.db.transaction() as repos:
            repos.recipients.add(str(recipient_of(self.identity)), "journalist")

    def rows(self, source: SourceId | None = None) -> list[SubmissionRecord]:
        with self.db.transaction() as repos:
            return list(repos.submissions.for_source(source or self.source))

    def plaintext(self, key: BlobKey, identity: Identity | None = None) -> bytes:
        with self.blobs.open(key) as f:
            return envelope.decrypt_bytes(f.read(), [identity or self.identity])

    def metadata(self, record: SubmissionRecord) -> dict[str, object]:
        assert record.metadata_ciphertext is not None
        return json.loads(envelope.decrypt_bytes(record.metadata_ciphertext, [self.identity]))  # type: ignore[no-any-return]

    def staging(self) -> list[Path]:
        return list(self.staging_dir.iterdir())

    def blob_keys(self) -> list[BlobKey]:
        return list(self.blobs.keys())

    def every_stored_byte(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.root.rglob("*") if p.is_file())

    def close(self) -> None:
        self.services.close()
        self.db.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    e.add_recipient()
    yield e
    e.close()


def intake(env: Env) -> SubmissionIntake:
    return env.service.intake(env.source)


def assert_nothing_stored(env: Env) -> None:
    assert env.rows() == []
    assert env.blob_keys() == []
    assert env.staging() == []


# --- the happy path ----------------------------------------------------------------------------


def test_message_and_files_commit_as_one_sequence(env: Env) -> None:
    """A message and two files become three rows numbered 1, 2, 3 that decrypt exactly."""
    files = [("a.txt", "text/plain", b"first file"), ("b.bin", "application/x-b", bytes(70_000))]
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"hello, journalists"))
        for name, content_type, content in files:
            submission.add_file(name, content_type, io.BytesIO(content))
        receipt = submission.commit()
    assert receipt == Receipt(messages=1, files=2)
    rows = env.rows()
    assert [(r.seq, r.kind) for r in rows] == [(1, "message"), (2, "file"), (3, "file")]
    assert env.plaintext(rows[0].blob_key) == b"hello, journalists"
    assert rows[0].metadata_ciphertext is None
    for row, (_, _, content) in zip(rows[1:], files, strict=True):
        assert env.plaintext(row.blob_key) == content
    assert all(r.arrival_day == dt.date(2027, 1, 15) for r in rows)
    assert all(r.size == env.blobs.size(r.blob_key) for r in rows)
    assert env.staging() == []


def test_a_second_submission_continues_the_sequence(env: Env) -> None:
    """Sequence numbers carry on from the source's previous submission."""
    for text in ("one", "two"):
        with intake(env) as submission:
            submission.add_message(io.BytesIO(text.encode()))
            submission.add_file("f", "text/plain", io.BytesIO(text.encode()))
            submission.commit()
    assert [r.seq for r in env.rows()] == [1, 2, 3, 4]


def test_file_metadata_decrypts_to_name_type_and_plaintext_size(env: Env) -> None:
    """Metadata is an age file holding exactly {filename, content_type, size}, names as sent."""
    names = ["../../etc/passwd", "C:\\Users\\me\\notes.txt", "a\x00b", "é😀 文件.pdf", "x" * 10_000]
    with intake(env) as submission:
        for i, name in enumerate(names):
            submission.add_file(name, f"type/{i}", io.BytesIO(b"z" * i))
        submission.commit()
    rows = env.rows()
    assert [env.metadata(r) for r in rows] == [
        {"filename": name, "content_type": f"type/{i}", "size": i} for i, name in enumerate(names)
    ]
    for row in rows:
        assert row.metadata_ciphertext is not None
        assert envelope.looks_like_age(row.metadata_ciphertext)


def test_nothing_in_plaintext_reaches_disk(env: Env) -> None:
    """After a commit no message text, file content or file name is found in any stored byte."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"CANARY-MESSAGE"))
        submission.add_file("CANARY-NAME.txt", "text/x-canary", io.BytesIO(b"CANARY-FILE" * 1000))
        submission.commit()
    stored = env.every_stored_byte()
    for canary in (b"CANARY-MESSAGE", b"CANARY-NAME", b"CANARY-FILE", b"text/x-canary"):
        assert canary not in stored


def test_staged_bytes_are_ciphertext_while_a_file_streams_in(env: Env) -> None:
    """Even mid-upload, what has reached the staging folder holds no plaintext (invariant 1).
    (Large enough that ciphertext has reached the file while the source still sends: files are
    encrypted by the age program behind 1 MiB pipes.)"""
    canary = b"STREAMING-CANARY"
    observed: list[bytes] = []

    class Watching:
        sent = 0

        def read(self, size: int = -1, /) -> bytes:
            if self.sent >= 8_000_000:
                return b""
            if self.sent > 5_000_000 and self.sent % 200_704 == 0:
                observed.append(b"".join(p.read_bytes() for p in env.staging()))
            self.sent += 4096
            return (canary * 256)[:4096]

    with intake(env) as submission:
        submission.add_file("f", "text/plain", Watching())
        submission.commit()
    assert any(len(snapshot) > 100_000 for snapshot in observed)
    assert all(canary not in snapshot for snapshot in observed)


def test_arrival_is_not_recorded_with_granularity_none(tmp_path: Path) -> None:
    """With arrival_granularity = none the row carries no day at all."""
    e = Env(tmp_path, granularity="none")
    try:
        e.add_recipient()
        with intake(e) as submission:
            submission.add_message(io.BytesIO(b"hi"))
            submission.commit()
        assert [r.arrival_day for r in e.rows()] == [None]
        assert [item.arrival_day for item in e.service.listing()] == [None]
    finally:
        e.close()


# --- empty and blank ---------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [b"", b" ", b"\r\n\t  \r\n", "\u3000\u00a0".encode()])
def test_blank_message_is_dropped(env: Env, blank: bytes) -> None:
    """A whitespace-only message is not stored; a file sent with it still is."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO(blank))
        submission.add_file("f.txt", "text/plain", io.BytesIO(b"data"))
        assert env.staging() != []
        assert submission.commit() == Receipt(messages=0, files=1)
    assert [r.kind for r in env.rows()] == ["file"]
    assert env.staging() == []


def test_nothing_to_commit_is_an_empty_submission(env: Env) -> None:
    """A submission with no part, or only a blank message, raises EmptySubmission and stores
    nothing."""
    with intake(env) as submission, pytest.raises(EmptySubmission):
        submission.commit()
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"   \n"))
        with pytest.raises(EmptySubmission):
            submission.commit()
    assert_nothing_stored(env)


def test_leaving_without_commit_discards_everything(env: Env) -> None:
    """An intake left without commit (an exception in the handler) leaves no file behind."""

    def handler() -> None:
        with intake(env) as submission:
            submission.add_message(io.BytesIO(b"hello"))
            submission.add_file("f", "text/plain", io.BytesIO(b"data"))
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        handler()
    assert_nothing_stored(env)


# --- message length and encoding ---------------------------------------------------------------


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_message_limit_counts_characters_not_bytes(env: Env, char: str) -> None:
    """Exactly MAX_CHARS characters pass whatever their UTF-8 width; one more is refused."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO((char * MAX_CHARS).encode()))
        submission.commit()
    assert env.plaintext(env.rows()[0].blob_key).decode() == char * MAX_CHARS
    with intake(env) as submission, pytest.raises(MessageTooLong) as raised:
        submission.add_message(Chunks([c.encode() for c in char * (MAX_CHARS + 1)]))
    assert raised.value.limit == MAX_CHARS
    assert len(env.rows()) == 1
    assert env.staging() == []


def test_too_long_message_discards_the_parts_before_it(env: Env) -> None:
    """A refused message takes the whole submission with it: nothing staged, stored or recorded."""

    def handler() -> None:
        with intake(env) as submission:
            submission.add_file("f.txt", "text/plain", io.BytesIO(b"data"))
            submission.add_message(io.BytesIO(b"x" * (MAX_CHARS * 1000)))

    with pytest.raises(MessageTooLong):
        handler()
    assert_nothing_stored(env)


def test_multibyte_character_split_across_reads_is_accepted(env: Env) -> None:
    """A character whose UTF-8 bytes arrive in separate reads is valid and kept intact."""
    text = "a€😀é"
    chunks = [bytes([b]) for b in text.encode()]
    with intake(env) as submission:
        submission.add_message(Chunks(chunks))
        submission.commit()
    assert env.plaintext(env.rows()[0].blob_key).decode() == text


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(min_size=1, max_size=MAX_CHARS).filter(lambda t: t.strip() != ""),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8),
)
def test_valid_utf8_is_accepted_however_it_is_chunked(env: Env, text: str, cuts: list[int]) -> None:
    """Any non-blank text within the limit, cut at any byte offsets, is stored byte-exact."""
    data = text.encode()
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points) if b > a]
    with intake(env) as submission:
        submission.add_message(Chunks(chunks))
        submission.commit()
    assert env.plaintext(env.rows()[-1].blob_key) == data


def test_line_breaks_count_as_the_form_counts_them(env: Env) -> None:
    """A message the textarea accepted at maxlength=MAX_CHARS (each line break one character,
    sent as CRLF) is within the server's limit too."""
    typed = ("x" * 9 + "\n") * (MAX_CHARS // 10)  # exactly MAX_CHARS in the textarea
    assert len(typed) == MAX_CHARS
    sent = typed.replace("\n", "\r\n").encode()
    with intake(env) as submission:
        submission.add_message(io.BytesIO(sent))
        submission.commit()
    assert env.plaintext(env.rows()[0].blob_key) == sent
    with intake(env) as submission, pytest.raises(MessageTooLong):
        submission.add_message(io.BytesIO(sent + b"x"))


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xff"],
        [b"abc", b"\xfe"],
        [b"abc\xe2\x82"],  # a character cut off at the very end of the message
        [b"abc\xe2", b"\x82"],
        [b"\xc0\xaf"],  # overlong encoding of "/"
        [b"\xed\xa0\x80"],  # a UTF-16 surrogate encoded in UTF-8
        [b"\xf4\x90\x80\x80"],  # beyond U+10FFFF
        [b"ok", b"\x80", b"ok"],
    ],
)
def test_invalid_utf8_message_is_malformed(env: Env, chunks: list[bytes]) -> None:
    """A message that is not UTF-8 is refused as MalformedUpload, leaving nothing staged."""
    with intake(env) as submission, pytest.raises(MalformedUpload):
        submission.add_message(Chunks(chunks))
    assert_nothing_stored(env)


# --- streams that fail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ClientDisconnected(), UploadTooLarge(1000), OSError("connection reset")],
    ids=["disconnected", "too-large", "oserror"],
)
@pytest.mark.parametrize("part", ["message", "file"])
def test_stream_error_propagates_unchanged_and_leaves_no_file(
    env: Env, error: BaseException, part: str
) -> None:
    """An exception from the body stream mid-part reaches the caller as the very same object,
    and the staged part, and the parts before it, are gone."""

    def handler() -> None:
        with intake(env) as submission:
            submission.add_file("earlier.txt", "text/plain", io.BytesIO(b"earlier"))
            # A message stays within its limit; a file spans several age chunks.
            stream = Failing(MAX_CHARS // 2 if part == "message" else 200_000, error)
            if part == "message":
                submission.add_message(stream)
            else:
                submission.add_file("f", "application/octet-stream", stream)

    with pytest.raises(type(error)) as raised:
        handler()
    assert raised.value is error
    assert_nothing_stored(env)


def test_stream_error_inside_add_file_leaves_the_intake_usable(env: Env) -> None:
    """The failed part is discarded at once; the intake still holds the earlier parts."""
    with intake(env) as submission:
        submission.add_file("kept.txt", "text/plain", io.BytesIO(b"kept"))
        with pytest.raises(ClientDisconnected):
            submission.add_file("lost.txt", "text/plain", Failing(10, ClientDisconnected()))
        assert len(env.staging()) == 1
        assert submission.commit() == Receipt(messages=0, files=1)
    [row] = env.rows()
    assert env.plaintext(row.blob_key) == b"kept"


# --- refusals before any work ------------------------------------------------------------------


def test_no_recipients_means_not_accepting(tmp_path: Path) -> None:
    """Without a recipient nothing can be sealed: intake refuses, accepting() says so."""
    e = Env(tmp_path)
    try:
        assert e.service.accepting() is False
        with pytest.raises(NotAcceptingSubmissions):
            e.service.intake(e.source)
        e.add_recipient()
        assert e.service.accepting() is True
        e.service.intake(e.source).abort()
        assert e.staging() == []
    finally:
        e.close()


def test_intake_for_a_deleted_source_requires_a_session(env: Env) -> None:
    """A session that outlived its source cannot start a submission."""
    with pytest.raises(SessionRequired):
        env.service.intake(SourceId(new_id()))


def test_every_recipient_can_decrypt(env: Env) -> None:
    """With two recipients, each one's identity opens the blob and the metadata."""
    second = generate_identity()
    with env.db.transaction() as repos:
        repos.recipients.add(str(recipient_of(second)), "second")
    with intake(env) as submission:
        submission.add_file("n.txt", "text/plain", io.BytesIO(b"both"))
        submission.commit()
    [row] = env.rows()
    assert row.metadata_ciphertext is not None
    for identity in (env.identity, second):
        assert env.plaintext(row.blob_key, identity) == b"both"
        assert envelope.decrypt_bytes(row.metadata_ciphertext, [identity])


def test_one_cap_covers_the_message_and_the_files_together(env: Env) -> None:
    """MAX_ITEMS_PER_SUBMISSION items in all, the message counted with the files: a message and
    MAX - 1 files are taken; one more file is refused before its stream is read, and leaving the
    intake keeps nothing of what was staged."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"and a message"))
        for i in range(MAX_ITEMS_PER_SUBMISSION - 1):
            submission.add_file(f"{i}.txt", "text/plain", io.BytesIO(b"x"))
        assert len(env.staging()) == MAX_ITEMS_PER_SUBMISSION
        extra = Chunks([b"never read"])
        with pytest.raises(TooManyItems) as refused:
            submission.add_file("one-too-many.txt", "text/plain", extra)
        assert refused.value.limit == MAX_ITEMS_PER_SUBMISSION
        assert extra.reads == 0
    assert_nothing_stored(env)


def test_a_message_after_the_cap_of_files_is_refused(env: Env) -> None:
    """Messages are not outside the cap: after MAX_ITEMS_PER_SUBMISSION files a message is
    refused unread (it used to be taken, so one body could store any number of messages)."""
    with intake(env) as submission:
        for i in range(MAX_ITEMS_PER_SUBMISSION):
            submission.add_file(f"{i}.txt", "text/plain", io.BytesIO(b"x"))
        extra = Chunks([b"never read"])
        with pytest.raises(TooManyItems):
            submission.add_message(extra)
        assert extra.reads == 0
    assert_nothing_stored(env)


@pytest.mark.parametrize("first", [b"the message", b"", b"  \r\n "])
def test_a_second_message_is_refused_unread(env: Env, first: bytes) -> None:
    """The form has one message box: a second message, even after an empty or blank first one,
    is refused before it is read, and nothing of the submission is stored."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO(first))
        submission.add_file("f.txt", "text/plain", io.BytesIO(b"a file"))
        second = Chunks([b"never read"])
        with pytest.raises(DuplicateMessage):
            submission.add_message(second)
        assert second.reads == 0
    assert_nothing_stored(env)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_staged_parts_hold_no_descriptor_until_commit(env: Env) -> None:
    """Each part's staged blob is closed once written: staging a message and MAX - 1 files
    holds no more descriptors than staging one (before, each part kept one open until the
    request ended, and 20,000 parts exhausted the server's descriptors); commit still stores
    them all."""
    with intake(env) as submission:
        submission.add_file("warm-up.txt", "text/plain", io.BytesIO(b"x"))
        before = open_descriptors()
        submission.add_message(io.BytesIO(b"a message"))
        for i in range(MAX_ITEMS_PER_SUBMISSION - 2):
            submission.add_file(f"{i}.txt", "text/plain", io.BytesIO(b"x"))
        assert open_descriptors() - before <= 2
        receipt = submission.commit()
    assert receipt == Receipt(messages=1, files=MAX_ITEMS_PER_SUBMISSION - 1)
    assert len(env.rows()) == MAX_ITEMS_PER_SUBMISSION
    assert env.staging() == []


# --- failures during commit --------------------------------------------------------------------


def test_database_failure_during_commit_leaves_no_orphan_blob(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If recording the rows fails, the already-renamed blobs are deleted, no row survives and
    the sequence is not consumed."""
    original = SqlSubmissionRepository.add
    calls: list[int] = []
    failure = DatabaseUnavailable("the database went away")

    def failing_add(self: SqlSubmissionRepository, *args: object) -> SubmissionRecord:
        calls.append(1)
        if len(calls) == 2:  # after the first row was added in the same transaction
            raise failure
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlSubmissionRepository, "add", failing_add)
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"hello"))
        submission.add_file("f.txt", "text/plain", io.BytesIO(b"data"))
        with pytest.raises(DatabaseUnavailable) as raised:
            submission.commit()
    assert raised.value is failure
    assert_nothing_stored(env)
    monkeypatch.setattr(SqlSubmissionRepository, "add", original)
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"again"))
        submission.commit()
    assert [r.seq for r in env.rows()] == [1]


def test_blob_commit_failure_midway_leaves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the disk fills while the second part is made durable, the first durable blob is
    deleted and the rest discarded."""
    original = FilesystemStagedBlob.commit
    calls: list[int] = []

    def failing_commit(self: FilesystemStagedBlob) -> tuple[BlobKey, int]:
        calls.append(1)
        if len(calls) == 2:
            raise StorageFull("disk full")
        return original(self)

    monkeypatch.setattr(FilesystemStagedBlob, "commit", failing_commit)
    with intake(env) as submission:
        for name in ("a", "b", "c"):
            submission.add_file(name, "text/plain", io.BytesIO(name.encode()))
        with pytest.raises(StorageFull):
            submission.commit()
    assert_nothing_stored(env)


# --- listing and recovery ----------------------------------------------------------------------


def test_listing_shows_places_and_sizes_but_no_content(env: Env) -> None:
    """listing() gives ids, kinds, day, sizes and blob paths; no text, name or type."""
    with intake(env) as submission:
        submission.add_message(io.BytesIO(b"CANARY-MSG"))
        submission.add_file("LISTING-CANARY.pdf", "application/x-canary", io.BytesIO(b"1234"))
        submission.commit()
    items = env.service.listing()
    rows = env.rows()
    assert [(i.id, i.kind, i.seq) for i in items] == [(r.id, r.kind, r.seq) for r in rows]
    for item, row in zip(items, rows, strict=True):
        assert item.source == env.source
        assert item.arrival_day == "2027-01-15"
        assert item.path is not None
        assert Path(item.path).stat().st_size == item.size == row.size
    shown = repr(items) + json.dumps([vars_of(i) for i in items])
    assert "CANARY" not in shown
    assert "canary" not in shown


def vars_of(item: object) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}  # type: ignore[attr-defined]


def test_recover_removes_staging_and_orphans_but_keeps_referenced_blobs(env: Env) -> None:
    """recover() empties staging, deletes blobs no row names, and keeps every submission."""
    with intake(env) as submission:
        submission.add_file("kept.txt", "text/plain", io.BytesIO(b"kept"))
        submission.commit()
    [row] = env.rows()
    # A crash between "rename the blob" and "insert the row" leaves an orphan ...
    with env.blobs.stage() as orphan:
        orphan.write(b"ciphertext nobody refers to")
        orphan_key, _ = orphan.commit()
    # ... and a crash mid-upload leaves staged files.
    half_written = env.blobs.stage()
    half_written.write(b"partial")
    (env.staging_dir / new_id()).write_bytes(b"partial too")
    assert env.service.recover() == (2, 1)
    assert env.staging() == []
    assert env.blob_keys() == [row.blob_key]
    assert env.plaintext(row.blob_key) == b"kept"
    assert orphan_key not in env.blob_keys()
    half_written.discard()
    assert env.service.recover() == (0, 0)


def test_recover_on_a_fresh_store_does_nothing(env: Env) -> None:
    """Recovery with nothing to recover reports (0, 0)."""
    assert env.service.recover() == (0, 0)


def test_failure_while_sealing_metadata_leaves_no_staged_file(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If sealing a file's metadata fails after its content was encrypted into staging, the
    error propagates and the staged content does not stay behind."""
    failure = CryptoError("sealing failed")

    def failing_encrypt_bytes(data: bytes, recipients: object) -> bytes:
        raise failure

    monkeypatch.setattr(envelope, "encrypt_bytes", failing_encrypt_bytes)
    with pytest.raises(CryptoError) as raised, intake(env) as submission:
        submission.add_file("name.txt", "text/plain", io.BytesIO(b"data"))
    assert raised.value is failure
    assert_nothing_stored(env)
