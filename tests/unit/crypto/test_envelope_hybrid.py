"""envelope with post-quantum hybrid keys: our own age writer and reader (age_encrypt/age_decrypt).

Interop with other implementations is in tests/interop (the CCTV vectors, typage).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealdrop.crypto import age_encrypt, age_stream, envelope, keys
from sealdrop.crypto.age_header import read_header
from sealdrop.errors import (
    DamagedPayload,
    DecryptionError,
    MixedRecipientKinds,
    NoIdentityMatches,
    StorageFull,
    UploadTooLarge,
)

CHUNK = age_stream.CHUNK


def _hybrid() -> keys.Identity:
    return keys.generate_identity(post_quantum=True)


class _Dribble(io.RawIOBase):
    """A reader that returns odd-sized pieces, sometimes more than asked (memoryviews)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._turn = 0

    def read(self, size: int = -1, /) -> bytes:
        self._turn += 1
        take = 7 if self._turn % 3 else size + 1000
        piece, self._data = self._data[:take], self._data[take:]
        return bytes(piece)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17])
def test_hybrid_round_trip_across_chunk_boundaries(size: int) -> None:
    """A file to a hybrid recipient decrypts to the exact bytes at every chunk edge."""
    identity = _hybrid()
    data = os.urandom(size)
    sink = io.BytesIO()
    envelope.encrypt(_Dribble(data), sink, [keys.recipient_of(identity)])
    ciphertext = sink.getvalue()
    header_len = ciphertext.index(b"\n", ciphertext.index(b"\n---") + 1) + 1 + 16
    assert len(ciphertext) == age_stream.ciphertext_size(header_len, size)
    out = io.BytesIO()
    envelope.decrypt(io.BytesIO(ciphertext), out, [identity])
    assert out.getvalue() == data
    assert envelope.decrypt_bytes(ciphertext, [identity]) == data
    assert envelope.check_age_structure(ciphertext) is None


def test_hybrid_file_has_one_mlkem768x25519_stanza_per_recipient() -> None:
    """The header holds one mlkem768x25519 stanza per recipient, each opening for its identity."""
    identities = [_hybrid() for _ in range(3)]
    ciphertext = envelope.encrypt_bytes(b"hello", [keys.recipient_of(i) for i in identities])
    header = read_header(io.BytesIO(ciphertext).read)
    assert [s.args[0] for s in header.stanzas] == [b"mlkem768x25519"] * 3
    assert all(len(s.body) == 32 for s in header.stanzas)
    for identity in identities:
        assert envelope.decrypt_bytes(ciphertext, [identity]) == b"hello"


def test_hybrid_file_does_not_open_with_another_identity() -> None:
    """A hybrid file and another (hybrid or X25519) identity: NoIdentityMatches."""
    ciphertext = envelope.encrypt_bytes(b"x", [keys.recipient_of(_hybrid())])
    for stranger in (_hybrid(), keys.generate_identity()):
        with pytest.raises(NoIdentityMatches):
            envelope.decrypt_bytes(ciphertext, [_hybrid(), stranger])


def test_a_keystore_with_both_kinds_opens_files_of_either_kind() -> None:
    """Identities [X25519, hybrid] open files of either kind (a reader after the switch)."""
    old, new = keys.generate_identity(), _hybrid()
    for owner in (old, new):
        ciphertext = envelope.encrypt_bytes(b"either", [keys.recipient_of(owner)])
        assert envelope.decrypt_bytes(ciphertext, [old, new]) == b"either"
        out = io.BytesIO()
        envelope.decrypt(io.BytesIO(ciphertext), out, [new, old])
        assert out.getvalue() == b"either"


@pytest.mark.parametrize("cut", [1, 16, 17, CHUNK + 16])
def test_truncated_hybrid_file_is_a_decryption_error(cut: int) -> None:
    """Cutting bytes off the end of a hybrid file (even at a chunk edge) is refused."""
    identity = _hybrid()
    ciphertext = envelope.encrypt_bytes(os.urandom(2 * CHUNK), [keys.recipient_of(identity)])
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext[:-cut], [identity])


def test_flipped_payload_bit_in_hybrid_file_is_damaged_payload() -> None:
    """One flipped bit in the payload: DamagedPayload."""
    identity = _hybrid()
    ciphertext = bytearray(envelope.encrypt_bytes(b"a" * 1000, [keys.recipient_of(identity)]))
    ciphertext[-100] ^= 1
    with pytest.raises(DamagedPayload):
        envelope.decrypt_bytes(bytes(ciphertext), [identity])


def test_resumable_writer_accepts_hybrid_recipients_and_refuses_a_mix() -> None:
    """age_stream.new_stream writes hybrid headers; hybrid + X25519 is MixedRecipientKinds."""
    identity = _hybrid()
    header, stream_keys = age_stream.new_stream([keys.recipient_of(identity)])
    ciphertext = header + age_stream.encrypt_chunk(stream_keys, 0, b"resumed", last=True)
    assert envelope.decrypt_bytes(ciphertext, [identity]) == b"resumed"
    with pytest.raises(MixedRecipientKinds):
        age_stream.new_stream(
            [keys.recipient_of(identity), keys.recipient_of(keys.generate_identity())]
        )


@pytest.mark.parametrize("error", [UploadTooLarge(10), StorageFull("disk"), KeyboardInterrupt()])
def test_hybrid_encrypt_reraises_the_streams_own_exception(error: BaseException) -> None:
    """An exception from read() or write() reaches the caller as the same object."""

    class Failing(io.RawIOBase):
        def read(self, size: int = -1, /) -> bytes:
            raise error

    with pytest.raises(type(error)) as caught:
        envelope.encrypt(Failing(), io.BytesIO(), [keys.recipient_of(_hybrid())])
    assert caught.value is error

    class FullDisk(io.RawIOBase):
        def write(self, data: object, /) -> int:
            raise error

    with pytest.raises(type(error)) as caught:
        envelope.encrypt(io.BytesIO(b"data"), FullDisk(), [keys.recipient_of(_hybrid())])
    assert caught.value is error


@pytest.mark.skipif(shutil.which("age") is None, reason="the age binary is not installed")
def test_our_x25519_writer_output_still_decrypts_with_stock_age(tmp_path: Path) -> None:
    """age_encrypt's X25519 output (the same writer as the hybrid one) opens with stock `age -d`."""
    identity = keys.generate_identity()
    data = os.urandom(2 * CHUNK + 3)
    sink = io.BytesIO()
    age_encrypt.encrypt_stream(io.BytesIO(data).read, sink.write, [keys.recipient_of(identity)])
    key = tmp_path / "key.txt"
    key.write_text(f"{identity}\n")
    blob = tmp_path / "blob.age"
    blob.write_bytes(sink.getvalue())
    done = subprocess.run(["age", "-d", "-i", str(key), str(blob)], capture_output=True, check=True)
    assert done.stdout == data


def test_a_hybrid_file_to_many_recipients_is_well_formed() -> None:
    """50 hybrid recipients make a 78 KB header: check_age_structure (replies, restore) and
    decryption accept it (the former 64 KiB bound held only 41 hybrid stanzas)."""
    identities = [_hybrid() for _ in range(50)]
    ciphertext = envelope.encrypt_bytes(b"many", [keys.recipient_of(i) for i in identities])
    assert len(ciphertext) > 64 * 1024
    assert envelope.check_age_structure(ciphertext) is None
    assert envelope.decrypt_bytes(ciphertext, [identities[-1]]) == b"many"


_FUZZ_IDENTITY = keys.generate_identity(post_quantum=True)
_FUZZ_FILE = envelope.encrypt_bytes(os.urandom(CHUNK + 100), [keys.recipient_of(_FUZZ_IDENTITY)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(_FUZZ_FILE) - 1),
    change=st.sampled_from(["flip", "cut", "insert", "drop"]),
    value=st.integers(min_value=0, max_value=255),
)
def test_any_damage_to_a_hybrid_file_is_a_decryption_error(
    position: int, change: str, value: int
) -> None:
    """A flipped, cut, inserted or dropped byte anywhere: DecryptionError, never another
    exception, never wrong plaintext accepted."""
    data = bytearray(_FUZZ_FILE)
    if change == "flip":
        data[position] ^= value or 1
    elif change == "cut":
        del data[position:]
    elif change == "insert":
        data.insert(position, value)
    else:
        del data[position]
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(bytes(data), [_FUZZ_IDENTITY])


def test_hybrid_encrypt_and_decrypt_stream_in_bounded_memory() -> None:
    """32 MiB through the hybrid writer and reader: Python's peak allocation stays under 1 MiB
    (a few 64 KiB chunks), whatever the size (invariant 1)."""
    size = 32 * 1024 * 1024
    identity = _hybrid()

    class Zeros:
        left = size

        def read(self, n: int) -> bytes:
            take = min(n, self.left)
            self.left -= take
            return bytes(take)

    class Hasher:
        digest = hashlib.sha256()

        def write(self, data: bytes) -> int:
            self.digest.update(data)
            return len(data)

    with tempfile.TemporaryFile() as blob:
        tracemalloc.start()
        try:
            envelope.encrypt(Zeros(), blob, [keys.recipient_of(identity)])
            blob.seek(0)
            sink = Hasher()
            envelope.decrypt(blob, sink, [identity])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert sink.digest.hexdigest() == hashlib.sha256(bytes(size)).hexdigest()
    assert peak < 1024 * 1024
