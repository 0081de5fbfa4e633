"""Encryption by the stock age program in a child process (large uploads, services/age_child.py):
the same contract as the in-process ``envelope.encrypt``: a valid age file, errors of the caller's
streams raised as themselves, and a failed child reported as a crypto error."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pyrage
import pytest

from sealdrop.crypto import envelope, keys
from sealdrop.errors import (
    CryptoError,
    MixedRecipientKinds,
    StorageError,
    StorageFull,
    UploadTooLarge,
)
from sealdrop.services import age_child
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from support_digests import blake3_digest


@pytest.fixture(scope="module")
def age_bin() -> str:
    """The stock `age` program, found the way the server finds it."""
    path = age_child.age_binary()
    if path is None:
        pytest.skip("the Debian `age` binary is not installed")
    return path


class FailingReader(io.RawIOBase):
    """A source that yields some bytes, then raises the caller's own error."""

    def __init__(self, good: int, error: BaseException) -> None:
        self._left = good
        self._error = error

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise self._error
        chunk = b"x" * min(size if size > 0 else 65536, self._left)
        self._left -= len(chunk)
        return chunk


class FailingWriter:
    def __init__(self, after: int, error: BaseException) -> None:
        self.written = 0
        self._after = after
        self._error = error

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self._after:
            raise self._error
        self.written += len(data)
        return len(data)


@pytest.mark.parametrize("size", [0, 1, 256 * 1024, 3 * 1024 * 1024 + 7])
def test_round_trip_to_every_recipient(age_bin: str, size: int) -> None:
    """What the child writes is an age file each recipient opens, holding exactly the input."""
    first, second = keys.generate_identity(), keys.generate_identity()
    plaintext = os.urandom(size)
    out = io.BytesIO()
    age_child.encrypt_in_child(
        age_bin,
        io.BytesIO(plaintext),
        out,
        [keys.recipient_of(first), keys.recipient_of(second)],
    )
    assert out.getvalue().startswith(envelope.AGE_INTRO)
    for identity in (first, second):
        assert pyrage.decrypt(out.getvalue(), [identity]) == plaintext


def test_an_error_of_the_source_is_raised_as_itself(age_bin: str) -> None:
    """An upload cut off mid-file (the body limit, a disconnect) reaches the caller unchanged,
    and the child is stopped."""
    error = UploadTooLarge(1000)
    with pytest.raises(UploadTooLarge) as raised:
        age_child.encrypt_in_child(
            age_bin,
            FailingReader(2 * 1024 * 1024, error),
            io.BytesIO(),
            [keys.recipient_of(keys.generate_identity())],
        )
    assert raised.value is error


def test_an_error_of_the_destination_is_raised_as_itself(age_bin: str) -> None:
    """A full disk while writing the ciphertext reaches the caller as StorageFull."""
    error = StorageFull("no space")
    with pytest.raises(StorageFull) as raised:
        age_child.encrypt_in_child(
            age_bin,
            io.BytesIO(os.urandom(4 * 1024 * 1024)),
            FailingWriter(100_000, error),
            [keys.recipient_of(keys.generate_identity())],
        )
    assert raised.value is error


def test_a_child_that_fails_is_a_crypto_error() -> None:
    """A program that exits with an error (here `false`) never passes for a finished file."""
    false = shutil.which("false")
    assert false is not None
    with pytest.raises(CryptoError, match="status"):
        age_child.encrypt_in_child(
            false,
            io.BytesIO(b"secret" * 100_000),
            io.BytesIO(),
            [keys.recipient_of(keys.generate_identity())],
        )


def test_no_recipient_is_refused_before_the_child_starts() -> None:
    """Encrypting to nobody (data nobody could open) is refused before a byte is read."""
    source = FailingReader(0, AssertionError("read"))
    with pytest.raises(ValueError, match="recipient"):
        age_child.encrypt_in_child("/nonexistent/age", source, io.BytesIO(), [])


@pytest.mark.parametrize("size", [0, 1, 3 * 1024 * 1024 + 7])
def test_hybrid_recipients_are_encrypted_by_a_python_child(size: int) -> None:
    """Hybrid (age1pq1…) recipients, which Debian's age does not know: the child is our own
    writer, and every hybrid identity opens the file to exactly the input."""
    first = keys.generate_identity(post_quantum=True)
    second = keys.generate_identity(post_quantum=True)
    plaintext = os.urandom(size)
    out = io.BytesIO()
    age_child.encrypt_in_child(
        "/nonexistent/age",  # not used for hybrid recipients
        io.BytesIO(plaintext),
        out,
        [keys.recipient_of(first), keys.recipient_of(second)],
    )
    assert b"\n-> mlkem768x25519 " in out.getvalue()[:4000]
    for identity in (first, second):
        assert envelope.decrypt_bytes(out.getvalue(), [identity]) == plaintext


def test_a_mix_of_kinds_is_refused_before_the_child_starts() -> None:
    """Hybrid and X25519 recipients together: MixedRecipientKinds, nothing read."""
    source = FailingReader(0, AssertionError("read"))
    mix = [
        keys.recipient_of(keys.generate_identity(post_quantum=True)),
        keys.recipient_of(keys.generate_identity()),
    ]
    with pytest.raises(MixedRecipientKinds):
        age_child.encrypt_in_child("/nonexistent/age", source, io.BytesIO(), mix)


def test_the_child_writes_a_staged_file_itself(
    age_bin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the filesystem store the age child's stdout is the staged file: no ciphertext comes
    back through this process (the blob's ``write`` is never called), and the committed blob
    decrypts to the input, with the SHA-256 and size of the stored bytes."""
    identity = keys.generate_identity()
    plaintext = os.urandom(3 * 1024 * 1024 + 7)
    store = FilesystemBlobStore(tmp_path / "store")
    staged = store.stage()

    def no_write(data: bytes) -> int:
        raise AssertionError("ciphertext written by the server process")

    monkeypatch.setattr(staged, "write", no_write)
    output = staged.direct_write()
    assert output is not None
    age_child.encrypt_in_child(
        age_bin, io.BytesIO(plaintext), output, [keys.recipient_of(identity)]
    )
    digest = staged.digest
    key, size = staged.commit()
    path = store.local_path(key)
    assert path is not None
    stored = path.read_bytes()
    assert (size, digest) == (len(stored), blake3_digest(stored))
    assert pyrage.decrypt(stored, [identity]) == plaintext


def test_a_full_disk_met_by_the_child_is_storage_full(tmp_path: Path) -> None:
    """A child writing the staged file itself that stops on a full disk (ENOSPC, as age words
    it) is reported as StorageFull, the blob store's error, not as a failed encryption; the
    staged file is then not kept. (The real full disk: tests/integration/test_faults.py.)"""
    fake_age = tmp_path / "age"
    fake_age.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        "echo 'age: error: failed to write: write /dev/stdout: no space left on device' >&2\n"
        "exit 1\n"
    )
    fake_age.chmod(0o700)
    store = FilesystemBlobStore(tmp_path / "store")
    staged = store.stage()
    output = staged.direct_write()
    assert output is not None
    with pytest.raises(StorageFull):
        age_child.encrypt_in_child(
            str(fake_age),
            io.BytesIO(b"x" * 1_000_000),
            output,
            [keys.recipient_of(keys.generate_identity())],
        )
    staged.discard()
    assert list((tmp_path / "store" / "staging").iterdir()) == []


def test_a_failed_child_writing_a_staged_file_is_a_crypto_error_and_never_committed(
    tmp_path: Path,
) -> None:
    """A child that exits with an error (here `false`) after the file was handed to it: a crypto
    error, and the staged blob refuses to commit what is there."""
    false = shutil.which("false")
    assert false is not None
    store = FilesystemBlobStore(tmp_path / "store")
    staged = store.stage()
    output = staged.direct_write()
    assert output is not None
    with pytest.raises(CryptoError, match="status"):
        age_child.encrypt_in_child(
            false,
            io.BytesIO(b"secret" * 100_000),
            output,
            [keys.recipient_of(keys.generate_identity())],
        )
    with pytest.raises(StorageError):
        staged.commit()
    assert list(store.keys()) == []
