"""Properties of the age envelope over generated plaintexts, chunkings and recipient sets: the
round trip is exact for every recipient, any damage or truncation is DecryptionError, and the
stock `age` binary opens what we write.

Complements test_envelope.py (fixed sizes, stream error handling, constant memory).
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealdrop.crypto import envelope, keys
from sealdrop.errors import DecryptionError

CHUNK = 64 * 1024  # age's STREAM chunk of plaintext
# A pool of identities, made once: X25519 key generation is cheap, but the pool lets a property
# pick "someone else" to check that a non-recipient cannot decrypt.
POOL = [keys.generate_identity() for _ in range(6)]
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Plaintexts that matter for age's framing: empty, short, around and across the 64 KiB chunk
# boundaries, and text-like content with line breaks (age's header is line-based).
plaintexts = st.one_of(
    st.binary(max_size=512),
    st.integers(0, 3 * CHUNK + 100).map(lambda n: bytes((i * 7 + n) % 256 for i in range(n))),
    st.sampled_from([CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK]).map(lambda n: b"\r\n" * (n // 2)),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
)


class Chunked:
    """A reader that hands out at most ``sizes[i]`` bytes on its i-th read (sizes cycled)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._src = io.BytesIO(data)
        self._sizes = sizes
        self._turn = 0

    def read(self, size: int) -> bytes:
        limit = self._sizes[self._turn % len(self._sizes)]
        self._turn += 1
        return self._src.read(min(size, limit))


read_sizes = st.lists(st.integers(1, CHUNK + 17), min_size=1, max_size=6)


def encrypt_stream(data: bytes, recipients: list[keys.Recipient], sizes: list[int]) -> bytes:
    out = io.BytesIO()
    envelope.encrypt(Chunked(data, sizes), out, recipients)
    return out.getvalue()


def decrypt_stream(ciphertext: bytes, identities: list[keys.Identity], sizes: list[int]) -> bytes:
    out = io.BytesIO()
    envelope.decrypt(Chunked(ciphertext, sizes), out, identities)
    return out.getvalue()


@PROPERTY
@given(
    data=plaintexts,
    count=st.integers(1, 4),
    encrypt_sizes=read_sizes,
    decrypt_sizes=read_sizes,
)
def test_round_trip_to_any_number_of_recipients_and_chunkings(
    data: bytes, count: int, encrypt_sizes: list[int], decrypt_sizes: list[int]
) -> None:
    """Encrypted to 1..4 recipients with any read chunking, the file decrypts to the exact bytes
    with each recipient's identity alone (streamed with any chunking, and in one piece), and not
    with an identity it was not encrypted to."""
    identities = POOL[:count]
    ciphertext = encrypt_stream(data, [keys.recipient_of(i) for i in identities], encrypt_sizes)
    assert envelope.check_age_structure(ciphertext) is None
    for identity in identities:
        assert decrypt_stream(ciphertext, [identity], decrypt_sizes) == data
        assert envelope.decrypt_bytes(ciphertext, [identity]) == data
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext, [POOL[-1]])


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, bytes, list[keys.Identity]]:
    """(original plaintext, a ciphertext of it with one byte changed, the identities)."""
    data = draw(st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"x" * (CHUNK + 5)])))
    count = draw(st.integers(1, 3), label="recipients")
    identities = POOL[:count]
    ciphertext = bytearray(envelope.encrypt_bytes(data, [keys.recipient_of(i) for i in identities]))
    # The position is drawn independently of the ciphertext, whose length varies from run to run
    # (age adds random "grease" stanzas), then mapped into it: half the time into the header
    # (stanzas, MAC), which is small next to the payload.
    in_header = draw(st.booleans(), label="in_header")
    at = draw(st.integers(0, 1 << 20), label="at")
    span = ciphertext.index(b"\n---") + 48 if in_header else len(ciphertext)
    ciphertext[at % span] ^= draw(st.integers(1, 255), label="xor")
    return data, bytes(ciphertext), identities


@settings(PROPERTY, max_examples=150)
@given(case=damaged(), sizes=read_sizes)
def test_any_single_changed_byte_raises_decryption_error(
    case: tuple[bytes, bytes, list[keys.Identity]], sizes: list[int]
) -> None:
    """Changing any one byte of an age file (intro, stanza, MAC, nonce, payload, tag) to any
    other value makes both APIs raise DecryptionError, for every recipient: never another
    exception, never plaintext."""
    _, ciphertext, identities = case
    for identity in identities:
        with pytest.raises(DecryptionError):
            envelope.decrypt_bytes(ciphertext, [identity])
        with pytest.raises(DecryptionError):
            decrypt_stream(ciphertext, [identity], sizes)


@settings(PROPERTY, max_examples=150)
@given(
    data=st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"y" * CHUNK, b"z" * 2 * CHUNK])),
    data_cut=st.data(),
)
def test_any_truncation_raises_decryption_error(data: bytes, data_cut: st.DataObject) -> None:
    """An age file cut at any length short of its end — inside the header, at a chunk boundary,
    one byte short — raises DecryptionError from both APIs."""
    identity = POOL[0]
    ciphertext = envelope.encrypt_bytes(data, [keys.recipient_of(identity)])
    # Where the payload's chunks begin: after the header line "--- mac\n" and the 16-byte nonce.
    payload = ciphertext.index(b"\n", ciphertext.index(b"\n---") + 1) + 1 + 16
    boundaries = range(payload - 16, len(ciphertext), CHUNK + 16)
    # Drawn independently of the ciphertext's length, which varies (random grease stanzas).
    at_boundary = data_cut.draw(st.booleans(), label="at_boundary")
    index = data_cut.draw(st.integers(0, 1 << 20), label="index")
    cut = boundaries[index % len(boundaries)] if at_boundary else index % len(ciphertext)
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext[:cut], [identity])
    with pytest.raises(DecryptionError):
        decrypt_stream(ciphertext[:cut], [identity], [4096])


@settings(PROPERTY, max_examples=60)
@given(data=st.binary(max_size=300), extra=st.binary(min_size=1, max_size=40))
def test_bytes_appended_after_the_last_chunk_raise_decryption_error(
    data: bytes, extra: bytes
) -> None:
    """Data after the final chunk is refused: a file cannot be extended unnoticed."""
    identity = POOL[0]
    ciphertext = envelope.encrypt_bytes(data, [keys.recipient_of(identity)]) + extra
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext, [identity])
    with pytest.raises(DecryptionError):
        decrypt_stream(ciphertext, [identity], [CHUNK])


@pytest.fixture(scope="module")
def identity_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each pool identity as an age identity file (0600) for `age -d -i`."""
    directory = tmp_path_factory.mktemp("identities")
    paths = []
    for index, identity in enumerate(POOL):
        path = directory / f"identity-{index}.txt"
        path.touch(mode=0o600)
        path.write_text(f"{identity}\n", encoding="ascii")
        paths.append(path)
    return paths


@settings(PROPERTY, max_examples=6)
@given(data=plaintexts, count=st.integers(1, 3), sizes=read_sizes)
def test_stock_age_opens_generated_files(
    data: bytes, count: int, sizes: list[int], age_bin: str, identity_files: list[Path]
) -> None:
    """`age -d -i` with any one of the recipients' identity files turns a generated, streamed
    encryption back into the exact bytes (invariant 5)."""
    ciphertext = encrypt_stream(data, [keys.recipient_of(i) for i in POOL[:count]], sizes)
    with tempfile.TemporaryDirectory() as scratch:
        blob = Path(scratch) / "blob.age"
        blob.write_bytes(ciphertext)
        for path in identity_files[:count]:
            done = subprocess.run(
                [age_bin, "-d", "-i", str(path), str(blob)],
                capture_output=True,
                check=True,
                timeout=60,
            )
            assert done.stdout == data
