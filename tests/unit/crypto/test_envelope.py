"""sealdrop.crypto.envelope: age encryption, streaming, interop with the stock `age` binary."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealdrop.crypto import envelope, keys
from sealdrop.errors import (
    ClientDisconnected,
    CryptoError,
    DecryptionError,
    MixedRecipientKinds,
    StorageFull,
    UploadTooLarge,
)

MIB = 1 << 20
# age's STREAM chunk is 64 KiB of plaintext + a 16-byte tag.
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def identity() -> keys.Identity:
    return keys.generate_identity()


@pytest.fixture(scope="module")
def recipient(identity: keys.Identity) -> keys.Recipient:
    return keys.recipient_of(identity)


def _encrypt_stream(data: bytes, recipients: list[keys.Recipient]) -> bytes:
    out = io.BytesIO()
    envelope.encrypt(io.BytesIO(data), out, recipients)
    return out.getvalue()


def _decrypt_stream(data: bytes, identities: list[keys.Identity]) -> bytes:
    out = io.BytesIO()
    envelope.decrypt(io.BytesIO(data), out, identities)
    return out.getvalue()


class _RaisingReader:
    """Yields ``good_reads`` chunks of data, then raises ``error`` on every later read."""

    def __init__(self, error: BaseException, good_reads: int) -> None:
        self.error = error
        self.good_reads = good_reads
        self.calls = 0

    def read(self, size: int) -> bytes:
        self.calls += 1
        if self.calls > self.good_reads:
            raise self.error
        return b"x" * size


class _RaisingWriter:
    """Accepts ``good_writes`` writes, then raises ``error``."""

    def __init__(self, error: BaseException, good_writes: int) -> None:
        self.error = error
        self.good_writes = good_writes
        self.calls = 0

    def write(self, data: bytes) -> int:
        self.calls += 1
        if self.calls > self.good_writes:
            raise self.error
        return len(data)


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_stream_round_trip_across_chunk_boundaries(
    size: int, identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """encrypt then decrypt gives the exact bytes back, for sizes around age's 64 KiB chunks."""
    data = os.urandom(size)
    ciphertext = _encrypt_stream(data, [recipient])
    assert envelope.looks_like_age(ciphertext)
    assert _decrypt_stream(ciphertext, [identity]) == data
    assert envelope.decrypt_bytes(ciphertext, [identity]) == data


def test_bytes_round_trip_and_mixing_with_stream_api(
    identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """encrypt_bytes output decrypts via the stream API, and the reverse."""
    data = b"a message \xf0\x9f\x94\x92"
    assert _decrypt_stream(envelope.encrypt_bytes(data, [recipient]), [identity]) == data
    assert envelope.decrypt_bytes(_encrypt_stream(data, [recipient]), [identity]) == data


def test_each_of_several_recipients_can_decrypt() -> None:
    """A file encrypted to two journalists opens with either identity alone."""
    alice, bob = keys.generate_identity(), keys.generate_identity()
    ciphertext = envelope.encrypt_bytes(b"both", [keys.recipient_of(alice), keys.recipient_of(bob)])
    assert envelope.decrypt_bytes(ciphertext, [alice]) == b"both"
    assert envelope.decrypt_bytes(ciphertext, [bob]) == b"both"


def test_encryption_is_randomised(recipient: keys.Recipient) -> None:
    """The same plaintext encrypts to different ciphertexts (nothing links two submissions)."""
    assert envelope.encrypt_bytes(b"same", [recipient]) != envelope.encrypt_bytes(
        b"same", [recipient]
    )


def test_reader_may_return_short_reads_bytearray_or_memoryview(
    identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """Readers returning short reads, bytearray or memoryview chunks still encrypt correctly."""
    data = os.urandom(200_000)

    class Odd:
        def __init__(self) -> None:
            self.src = io.BytesIO(data)
            self.turn = 0

        def read(self, size: int) -> bytes:
            self.turn += 1
            chunk = self.src.read(min(size, 1000 + self.turn))
            kind = self.turn % 3
            return chunk if kind == 0 else bytearray(chunk) if kind == 1 else memoryview(chunk)  # type: ignore[return-value]

    out = io.BytesIO()
    envelope.encrypt(Odd(), out, [recipient])
    assert envelope.decrypt_bytes(out.getvalue(), [identity]) == data


def test_reader_returning_more_than_asked_is_accepted(
    identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """A reader that ignores n and returns its own large chunks still encrypts every byte."""
    data = os.urandom(300_000)

    class Greedy:
        def __init__(self) -> None:
            self.src = io.BytesIO(data)

        def read(self, size: int) -> bytes:
            return self.src.read(100_000)

    out = io.BytesIO()
    envelope.encrypt(Greedy(), out, [recipient])
    assert envelope.decrypt_bytes(out.getvalue(), [identity]) == data


def test_writer_returning_none_is_accepted(
    identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """A sink whose write() returns None (not a count) receives the whole file."""
    received = bytearray()

    class Sink:
        def write(self, data: bytes) -> None:
            received.extend(data)

    envelope.encrypt(io.BytesIO(b"z" * 100_000), Sink(), [recipient])
    assert envelope.decrypt_bytes(bytes(received), [identity]) == b"z" * 100_000


# --- interop with the stock age binary (invariant 5) ---------------------------------------------


def test_age_cli_decrypts_encrypt_bytes_output_exactly(
    age_bin: str,
    identity: keys.Identity,
    recipient: keys.Recipient,
    write_identity_file: Callable[[keys.Identity], Path],
    tmp_path: Path,
) -> None:
    """`age -d -i` turns what encrypt_bytes produced back into the exact bytes (sha256)."""
    data = "Dokument für die Redaktion — ✉\n".encode() + os.urandom(1000)
    blob = tmp_path / "message.age"
    blob.write_bytes(envelope.encrypt_bytes(data, [recipient]))
    done = subprocess.run(
        [age_bin, "-d", "-i", str(write_identity_file(identity)), str(blob)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert hashlib.sha256(done.stdout).digest() == hashlib.sha256(data).digest()


def test_age_cli_decrypts_a_message_to_its_utf8_text(
    age_bin: str,
    identity: keys.Identity,
    recipient: keys.Recipient,
    write_identity_file: Callable[[keys.Identity], Path],
) -> None:
    """A message blob opened with `age -d` reads as the original UTF-8 text."""
    text = "Ich habe Beweise. 我有证据。 لدي أدلة"
    done = subprocess.run(
        [age_bin, "-d", "-i", str(write_identity_file(identity))],
        input=envelope.encrypt_bytes(text.encode("utf-8"), [recipient]),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.decode("utf-8") == text


def test_age_cli_decrypts_a_streamed_multi_mib_file_exactly(
    age_bin: str,
    write_identity_file: Callable[[keys.Identity], Path],
    tmp_path: Path,
) -> None:
    """A 5 MiB + odd-sized stream encrypted to two recipients opens with `age -d` for each one."""
    data = os.urandom(5 * MIB + 12345)
    first, second = keys.generate_identity(), keys.generate_identity()
    blob = tmp_path / "file.age"
    with blob.open("wb") as sink:
        envelope.encrypt(
            io.BytesIO(data), sink, [keys.recipient_of(first), keys.recipient_of(second)]
        )
    for who in (first, second):
        done = subprocess.run(
            [age_bin, "-d", "-i", str(write_identity_file(who)), str(blob)],
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert hashlib.sha256(done.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 10, 3 * MIB + 7])
def test_envelope_decrypts_what_age_cli_encrypted(
    size: int, age_bin: str, identity: keys.Identity, recipient: keys.Recipient, tmp_path: Path
) -> None:
    """`age -e -r age1…` output is decrypted by decrypt and decrypt_bytes to the exact bytes."""
    data = os.urandom(size)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data)
    done = subprocess.run(
        [age_bin, "-e", "-r", str(recipient), str(plain)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert envelope.looks_like_age(done.stdout)
    assert _decrypt_stream(done.stdout, [identity]) == data
    assert envelope.decrypt_bytes(done.stdout, [identity]) == data


# --- failures: wrong key, tampering, truncation --------------------------------------------------


def test_wrong_identity_raises_decryption_error(recipient: keys.Recipient) -> None:
    """An identity the file was not encrypted to gets DecryptionError, from both APIs."""
    ciphertext = envelope.encrypt_bytes(b"secret", [recipient])
    stranger = keys.generate_identity()
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext, [stranger])
    with pytest.raises(DecryptionError):
        _decrypt_stream(ciphertext, [stranger])


def _tamper_positions(ciphertext: bytes) -> dict[str, int]:
    header_end = ciphertext.index(b"\n---") + 4
    return {
        "recipient stanza": 40,
        "header mac": header_end + 5,
        "payload nonce": ciphertext.index(b"\n", header_end) + 3,
        "first chunk": ciphertext.index(b"\n", header_end) + 100,
        "middle chunk": len(ciphertext) // 2,
        "last tag byte": len(ciphertext) - 1,
    }


@pytest.mark.parametrize(
    "where",
    [
        "recipient stanza",
        "header mac",
        "payload nonce",
        "first chunk",
        "middle chunk",
        "last tag byte",
    ],
)
def test_any_flipped_bit_raises_decryption_error(
    where: str, identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """Flipping one bit anywhere (header, nonce, body, tag) makes decryption fail, both APIs."""
    ciphertext = envelope.encrypt_bytes(os.urandom(3 * CHUNK + 5), [recipient])
    damaged = bytearray(ciphertext)
    damaged[_tamper_positions(ciphertext)[where]] ^= 0x01
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(bytes(damaged), [identity])
    with pytest.raises(DecryptionError):
        _decrypt_stream(bytes(damaged), [identity])


@pytest.mark.parametrize("cut", ["one byte", "last chunk", "whole chunks", "inside header"])
def test_truncated_ciphertext_raises_decryption_error(
    cut: str, identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """A truncated file fails, even when cut exactly at a chunk boundary (no silent short read)."""
    ciphertext = envelope.encrypt_bytes(os.urandom(3 * CHUNK + 5), [recipient])
    last_chunk_len = 5 + 16
    ends = {
        "one byte": len(ciphertext) - 1,
        "last chunk": len(ciphertext) - last_chunk_len,
        "whole chunks": len(ciphertext) - last_chunk_len - (CHUNK + 16),
        "inside header": 50,
    }
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext[: ends[cut]], [identity])
    with pytest.raises(DecryptionError):
        _decrypt_stream(ciphertext[: ends[cut]], [identity])


@pytest.mark.parametrize(
    "data", [b"", b"hello", envelope.AGE_INTRO, b"-----BEGIN AGE ENCRYPTED FILE-----\n"]
)
def test_non_age_input_raises_decryption_error(data: bytes, identity: keys.Identity) -> None:
    """Garbage, an empty file or a bare header raise DecryptionError, never a pyrage error."""
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(data, [identity])
    with pytest.raises(DecryptionError):
        _decrypt_stream(data, [identity])


def test_no_pyrage_exception_type_escapes(identity: keys.Identity) -> None:
    """The errors raised are Sealdrop's own, not subclasses of pyrage's."""
    with pytest.raises(DecryptionError) as caught:
        envelope.decrypt_bytes(b"nope", [identity])
    pyrage_errors = (pyrage.DecryptError, pyrage.EncryptError)
    assert not isinstance(caught.value, pyrage_errors)
    assert caught.value.__cause__ is None


# --- empty key lists -----------------------------------------------------------------------------


def test_encrypt_to_no_recipient_is_refused_before_touching_the_streams() -> None:
    """An empty recipient list raises a clear ValueError; nothing is read or written."""
    reader = _RaisingReader(AssertionError("read"), good_reads=0)
    writer = _RaisingWriter(AssertionError("write"), good_writes=0)
    with pytest.raises(ValueError, match="at least one recipient"):
        envelope.encrypt(reader, writer, [])
    with pytest.raises(ValueError, match="at least one recipient"):
        envelope.encrypt_bytes(b"data", [])
    assert reader.calls == writer.calls == 0


def test_decrypt_with_no_identity_is_refused(recipient: keys.Recipient) -> None:
    """An empty identity list raises a clear ValueError."""
    ciphertext = envelope.encrypt_bytes(b"data", [recipient])
    with pytest.raises(ValueError, match="at least one identity"):
        envelope.decrypt_bytes(ciphertext, [])
    with pytest.raises(ValueError, match="at least one identity"):
        _decrypt_stream(ciphertext, [])


# --- the caller's stream errors come back as themselves ------------------------------------------


@pytest.mark.parametrize("good_reads", [0, 1, 20])
@pytest.mark.parametrize(
    "error",
    [ClientDisconnected(), UploadTooLarge(1000), OSError(5, "EIO"), KeyboardInterrupt()],
    ids=["ClientDisconnected", "UploadTooLarge", "OSError", "KeyboardInterrupt"],
)
def test_encrypt_reraises_the_readers_own_exception(
    error: BaseException, good_reads: int, recipient: keys.Recipient
) -> None:
    """An exception from src.read reaches the caller as the very same object, not a pyrage error."""
    reader = _RaisingReader(error, good_reads)
    with pytest.raises(type(error)) as caught:
        envelope.encrypt(reader, io.BytesIO(), [recipient])
    assert caught.value is error
    assert reader.calls == good_reads + 1  # pyrage stops at the first failure


def test_reraised_exception_keeps_its_own_cause(recipient: keys.Recipient) -> None:
    """The original exception's __cause__ survives; it is not chained onto pyrage's copy."""
    root = ConnectionResetError("peer went away")
    error = ClientDisconnected()
    error.__cause__ = root
    with pytest.raises(ClientDisconnected) as caught:
        envelope.encrypt(_RaisingReader(error, 2), io.BytesIO(), [recipient])
    assert caught.value is error
    assert caught.value.__cause__ is root
    assert not isinstance(caught.value.__context__, pyrage.EncryptError)


@pytest.mark.parametrize("good_writes", [0, 2])
def test_encrypt_reraises_the_writers_own_exception(
    good_writes: int, recipient: keys.Recipient
) -> None:
    """A full disk (StorageFull from dst.write) propagates as itself."""
    error = StorageFull()
    with pytest.raises(StorageFull) as caught:
        envelope.encrypt(
            io.BytesIO(os.urandom(5 * CHUNK)), _RaisingWriter(error, good_writes), [recipient]
        )
    assert caught.value is error


@pytest.mark.parametrize("good_reads", [0, 1, 5])
def test_decrypt_reraises_the_readers_own_exception(
    good_reads: int, identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """An exception from src.read during decryption (header or body) propagates as itself."""
    ciphertext = envelope.encrypt_bytes(os.urandom(5 * CHUNK), [recipient])
    error = ClientDisconnected()

    class Reader:
        def __init__(self) -> None:
            self.src = io.BytesIO(ciphertext)
            self.calls = 0

        def read(self, size: int) -> bytes:
            self.calls += 1
            if self.calls > good_reads:
                raise error
            return self.src.read(size)

    with pytest.raises(ClientDisconnected) as caught:
        envelope.decrypt(Reader(), io.BytesIO(), [identity])
    assert caught.value is error


def test_decrypt_reraises_the_writers_own_exception(
    identity: keys.Identity, recipient: keys.Recipient
) -> None:
    """An OSError from dst.write while decrypting is the caller's, not a DecryptionError."""
    ciphertext = envelope.encrypt_bytes(os.urandom(3 * CHUNK), [recipient])
    error = PermissionError(13, "denied")
    with pytest.raises(PermissionError) as caught:
        envelope.decrypt(io.BytesIO(ciphertext), _RaisingWriter(error, 1), [identity])
    assert caught.value is error


def test_encryption_failure_is_a_crypto_error_not_a_pyrage_error() -> None:
    """CryptoError is the common parent callers can catch for any non-stream failure."""
    assert issubclass(DecryptionError, CryptoError)


# --- looks_like_age ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"age-encryption.org/v1\n-> X25519 abc\n", True),
        (b"age-encryption.org/v1\n", True),
        (b"age-encryption.org/v1", False),
        (b"age-encryption.org/v2\n", False),
        (b"-----BEGIN AGE ENCRYPTED FILE-----\n", False),
        (b"", False),
        (b"%PDF-1.7\n", False),
    ],
)
def test_looks_like_age_checks_the_v1_intro_line(header: bytes, expected: bool) -> None:
    """Only data starting with the exact binary age v1 intro line looks like age."""
    assert envelope.looks_like_age(header) is expected


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3 * CHUNK), read_size=st.integers(min_value=1, max_value=CHUNK))
def test_round_trip_property_for_arbitrary_bytes(data: bytes, read_size: int) -> None:
    """Any byte string survives encrypt/decrypt, whatever size chunks the reader hands over."""
    identity = _PROPERTY_IDENTITY
    recipient = keys.recipient_of(identity)

    class Chunked:
        def __init__(self) -> None:
            self.src = io.BytesIO(data)

        def read(self, size: int) -> bytes:
            return self.src.read(min(size, read_size))

    out = io.BytesIO()
    envelope.encrypt(Chunked(), out, [recipient])
    assert envelope.decrypt_bytes(out.getvalue(), [identity]) == data
    assert _decrypt_stream(envelope.encrypt_bytes(data, [recipient]), [identity]) == data


_PROPERTY_IDENTITY = keys.generate_identity()


# --- constant memory (invariant 1) ---------------------------------------------------------------

_STREAM_SCRIPT = r"""
import hashlib, json, os, resource, sys, time
from sealdrop.crypto import envelope, keys

def peak_rss_kib():
    # VmHWM is the peak of this process image only. ru_maxrss is not usable here: Linux carries
    # the peak of the (large) forking pytest process over into the child across exec.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

recipient = keys.parse_recipient(sys.argv[1])
total = int(sys.argv[2])
block = os.urandom(1 << 20)

class Generated:
    # total bytes, cycling through a 1 MiB random block; never holds more than the block.
    def __init__(self, total):
        self.left, self.offset, self.digest = total, 0, hashlib.sha256()
    def read(self, size):
        size = min(size, self.left, len(block) - self.offset)
        chunk = block[self.offset:self.offset + size]
        self.offset = (self.offset + size) % len(block)
        self.left -= size
        self.digest.update(chunk)
        return chunk

out = sys.stdout.buffer
envelope.encrypt(Generated(1 << 20), open(os.devnull, "wb"), [recipient])  # warm up
before = peak_rss_kib()
source = Generated(total)
started = time.perf_counter()
envelope.encrypt(source, out, [recipient])
seconds = time.perf_counter() - started
out.flush()
after = peak_rss_kib()
json.dump({"sha256": source.digest.hexdigest(), "growth_kib": after - before,
           "peak_kib": after, "seconds": seconds}, sys.stderr)
"""


@pytest.mark.slow
def test_256_mib_stream_encrypts_in_constant_memory_and_age_decrypts_it(
    age_bin: str,
    identity: keys.Identity,
    recipient: keys.Recipient,
    write_identity_file: Callable[[keys.Identity], Path],
) -> None:
    """A generated 256 MiB stream encrypts with < 32 MiB RSS growth; `age -d` restores its sha256.

    Runs in a fresh interpreter so the peak RSS is not polluted by other tests, and pipes the
    ciphertext straight into `age -d`, so nothing of the size of the stream is held anywhere.
    """
    total = 256 * MIB
    encryptor = subprocess.Popen(
        [sys.executable, "-c", _STREAM_SCRIPT, str(recipient), str(total)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert encryptor.stdout is not None
    decryptor = subprocess.Popen(
        [age_bin, "-d", "-i", str(write_identity_file(identity))],
        stdin=encryptor.stdout,
        stdout=subprocess.PIPE,
    )
    encryptor.stdout.close()  # age -d owns the pipe now
    assert decryptor.stdout is not None
    digest, received = hashlib.sha256(), 0
    while chunk := decryptor.stdout.read(MIB):
        digest.update(chunk)
        received += len(chunk)
    assert decryptor.wait(timeout=300) == 0
    _, report_text = encryptor.communicate(timeout=300)
    assert encryptor.returncode == 0, report_text.decode()
    report = json.loads(report_text)
    growth_mib, peak_mib = report["growth_kib"] / 1024, report["peak_kib"] / 1024
    print(  # shown with -s: the measured numbers
        f"\n256 MiB: {total / MIB / report['seconds']:.0f} MiB/s (into the age -d pipe), "
        f"RSS growth {growth_mib:.1f} MiB, peak {peak_mib:.1f} MiB"
    )
    assert received == total
    assert digest.hexdigest() == report["sha256"]
    assert report["growth_kib"] < 32 * 1024


def test_encrypt_refuses_a_mix_of_hybrid_and_x25519_recipients() -> None:
    """encrypt refuses a mixed recipient set (MixedRecipientKinds) before reading a byte."""
    classic = keys.recipient_of(keys.generate_identity())
    hybrid = keys.recipient_of(keys.generate_identity(post_quantum=True))
    source = io.BytesIO(b"secret")
    for mix in ([classic, hybrid], [hybrid, classic]):
        with pytest.raises(MixedRecipientKinds):
            envelope.encrypt(source, io.BytesIO(), mix)
        with pytest.raises(MixedRecipientKinds):
            envelope.encrypt_bytes(b"secret", mix)
    assert source.tell() == 0
