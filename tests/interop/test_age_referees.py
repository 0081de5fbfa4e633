"""Our age decryptor against the other X25519 writers here: stock `age` (Debian) and pyrage, whose
headers differ from ours (pyrage and age add random "grease" stanzas)."""

from __future__ import annotations

import io
import os
import subprocess

import pyrage
import pytest

from sealdrop.crypto import keys
from sealdrop.crypto.age_decrypt import decrypt_stream

CHUNK = 64 * 1024


def _ours(ciphertext: bytes, identities: list[keys.Identity]) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ciphertext).read, out.write, identities)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK, 2 * CHUNK + 1])
def test_our_decryptor_opens_what_stock_age_encrypts(age_bin: str, size: int) -> None:
    """`age -e -r age1… -r age1…` output opens with either identity in our decryptor."""
    identities = [keys.generate_identity() for _ in range(2)]
    data = os.urandom(size)
    command = [age_bin, "-e"]
    for identity in identities:
        command += ["-r", str(keys.recipient_of(identity))]
    ciphertext = subprocess.run(command, input=data, capture_output=True, check=True).stdout
    for identity in identities:
        # A hybrid identity beside it: the list a reader has after the switch.
        assert _ours(ciphertext, [keys.generate_identity(post_quantum=True), identity]) == data


@pytest.mark.parametrize("size", [0, CHUNK - 1, 3 * CHUNK])
def test_our_decryptor_opens_what_pyrage_encrypts(size: int) -> None:
    """pyrage's output (the X25519 path of envelope) opens in our decryptor exactly."""
    identity = keys.generate_identity()
    data = os.urandom(size)
    ciphertext = pyrage.encrypt(data, [keys.recipient_of(identity)])
    assert _ours(ciphertext, [identity]) == data
