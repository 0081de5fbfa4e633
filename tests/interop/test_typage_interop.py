"""Interop both ways with typage (npm age-encryption 0.3.1, by age's author: pure JavaScript on the
noble libraries), for post-quantum hybrid files: until distributions ship age >= 1.3, typage is the
stock-tool referee for what our own age writer and reader do (tests/interop/typage)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sealdrop.crypto import age_stream, envelope, keys
from sealdrop.errors import DecryptionError

CHUNK = age_stream.CHUNK


def _typage(directory: Path, *args: str, data: bytes = b"") -> bytes:
    done = subprocess.run(
        ["node", str(directory / "typage.mjs"), *args],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 5])
def test_typage_decrypts_what_we_encrypt_to_hybrid_recipients(
    typage_dir: Path, tmp_path: Path, size: int
) -> None:
    """A file our writer encrypted to two hybrid recipients opens in typage with either identity."""
    identities = [keys.generate_identity(post_quantum=True) for _ in range(2)]
    data = os.urandom(size)
    ciphertext = envelope.encrypt_bytes(data, [keys.recipient_of(i) for i in identities])
    for number, identity in enumerate(identities):
        key = tmp_path / f"key-{number}.txt"
        key.write_text(f"{identity}\n")
        assert _typage(typage_dir, "decrypt", str(key), data=ciphertext) == data


def test_typage_decrypts_the_resumable_writers_hybrid_file(
    typage_dir: Path, tmp_path: Path
) -> None:
    """The resumable upload's header-then-chunks file to a hybrid recipient opens in typage."""
    identity = keys.generate_identity(post_quantum=True)
    data = os.urandom(2 * CHUNK)
    header, stream_keys = age_stream.new_stream([keys.recipient_of(identity)])
    chunks = [
        age_stream.encrypt_chunk(stream_keys, 0, data[:CHUNK], last=False),
        age_stream.encrypt_chunk(stream_keys, 1, data[CHUNK:], last=True),
    ]
    key = tmp_path / "key.txt"
    key.write_text(f"{identity}\n")
    assert _typage(typage_dir, "decrypt", str(key), data=header + b"".join(chunks)) == data


@pytest.mark.parametrize("size", [0, 1, CHUNK, 2 * CHUNK + 9])
def test_we_decrypt_what_typage_encrypts_to_its_own_hybrid_identity(
    typage_dir: Path, size: int
) -> None:
    """typage makes a hybrid identity and encrypts to it; our reader opens the file exactly, and
    computes the same age1pq1… recipient from typage's identity."""
    identity_text, recipient_text = _typage(typage_dir, "keygen-pq").decode().split()
    identity = keys.parse_identity(identity_text)
    assert str(keys.recipient_of(identity)) == recipient_text
    data = os.urandom(size)
    ciphertext = _typage(typage_dir, "encrypt", recipient_text, data=data)
    assert envelope.decrypt_bytes(ciphertext, [identity]) == data
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext, [keys.generate_identity(post_quantum=True)])


def test_we_decrypt_what_typage_encrypts_to_our_hybrid_recipient(typage_dir: Path) -> None:
    """typage encrypts to a recipient we generated (1,959 characters on its command line)."""
    identity = keys.generate_identity(post_quantum=True)
    data = os.urandom(CHUNK + 1)
    ciphertext = _typage(typage_dir, "encrypt", str(keys.recipient_of(identity)), data=data)
    assert envelope.decrypt_bytes(ciphertext, [identity]) == data
