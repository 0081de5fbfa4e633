"""Passphrase files and age's self-timed scrypt limit (crypto/passphrase.py).

age (rage, through pyrage) refuses a passphrase file whose work factor is more than 4 above what
one tiny timing of this machine suggests, and picks a new file's factor from that same timing.
Under load the timing reads low: a right passphrase was reported as wrong, and new identity files
were made cheaper to guess. These tests pin down what Sealdrop does about it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pyrage import DecryptError

from sealdrop.crypto import passphrase
from sealdrop.crypto.passphrase import (
    WORK_FACTOR_FLOOR,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
    work_factor,
)
from sealdrop.errors import DecryptionError, ExcessiveWork, IdentityBusy
from sealdrop.reader import keystore

PASSPHRASE = "correct horse battery staple"


def with_factor(ciphertext: bytes, factor: int) -> bytes:
    """The same age file with its scrypt stanza's work factor replaced (the header MAC no longer
    matches, but age refuses an excessive factor before it gets that far)."""
    header, rest = ciphertext.split(b"\n--- ", 1)
    intro, stanza, *body = header.split(b"\n")
    words = stanza.split(b" ")
    stanza = b" ".join([*words[:-1], str(factor).encode()])
    return b"\n".join([intro, stanza, *body]) + b"\n--- " + rest


def test_work_factor_is_read_from_a_real_files_header() -> None:
    """work_factor() gives the log2 N that age wrote into the scrypt stanza."""
    ciphertext = encrypt_with_passphrase(b"payload", PASSPHRASE)
    factor = work_factor(ciphertext)
    assert factor is not None
    assert 10 <= factor <= 30
    assert f" {factor}\n--- ".encode() in ciphertext or f" {factor}\n".encode() in ciphertext
    assert work_factor(b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- mac\n") is None


def test_a_file_age_will_not_run_is_excessive_work_not_a_wrong_passphrase(tmp_path: Path) -> None:
    """A file whose factor age will not run (here 2^40, with the stock pyrage) raises ExcessiveWork
    naming the factor, never DecryptionError; the reader says the passphrase was not tried rather
    than that it is wrong."""
    real = encrypt_with_passphrase(b"payload", PASSPHRASE)
    costly = with_factor(real, 40)
    with pytest.raises(ExcessiveWork, match=r"2\^40") as caught:
        decrypt_with_passphrase(costly, PASSPHRASE)
    assert not isinstance(caught.value, DecryptionError)
    assert PASSPHRASE not in str(caught.value)

    path = tmp_path / "identity.age"
    keystore.create_identity(path, PASSPHRASE)
    path.write_bytes(with_factor(path.read_bytes(), 40))
    with pytest.raises(IdentityBusy, match="passphrase not tried"):
        keystore.load_identity(path, PASSPHRASE)


def test_a_wrong_passphrase_is_still_a_decryption_error() -> None:
    """The retries concern only age's excessive-work refusal: a wrong passphrase fails at once
    with DecryptionError (real pyrage)."""
    ciphertext = encrypt_with_passphrase(b"payload", PASSPHRASE)
    with pytest.raises(DecryptionError):
        decrypt_with_passphrase(ciphertext, "not the passphrase at all")


def test_decryption_tries_again_when_the_timing_read_the_machine_as_too_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """age's refusal for excessive work is a timing, not a verdict: after two such refusals the
    third try (which times the machine again) opens the file. (pyrage is replaced here: a busy
    scheduler cannot be summoned on demand; the refusal's text is the one measured under load.)"""
    refusals = ["Excessive work parameter for passphrase.\nDecryption would take around 512 s."] * 2
    calls: list[bytes] = []

    def decrypt(data: bytes, secret: str) -> bytes:
        calls.append(data)
        if refusals:
            raise DecryptError(refusals.pop())
        return b"plaintext"

    monkeypatch.setattr(passphrase, "_passphrase", SimpleNamespace(decrypt=decrypt))
    assert decrypt_with_passphrase(b"file", PASSPHRASE) == b"plaintext"
    assert len(calls) == 3


def test_encryption_keeps_the_strongest_try_when_the_timing_reads_low(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new file made while the machine timed itself as slow (factor below age's reference 18)
    is made again; the first try at or above the floor is kept, and if none reaches it, the
    strongest one. (pyrage's encrypt is replaced by one that returns real files whose header says
    the factor a busy timing would have chosen.)"""
    real = encrypt_with_passphrase(b"payload", PASSPHRASE)
    factors = [15, 16, WORK_FACTOR_FLOOR + 1, WORK_FACTOR_FLOOR + 2]
    calls: list[int] = []

    def encrypt(data: bytes, secret: str) -> bytes:
        calls.append(factors[len(calls)])
        return with_factor(real, calls[-1])

    monkeypatch.setattr(passphrase, "_passphrase", SimpleNamespace(encrypt=encrypt))
    assert work_factor(encrypt_with_passphrase(b"payload", PASSPHRASE)) == WORK_FACTOR_FLOOR + 1
    assert calls == [15, 16, WORK_FACTOR_FLOOR + 1]

    calls.clear()
    factors[:] = [14, 16, 15, 13]
    assert work_factor(encrypt_with_passphrase(b"payload", PASSPHRASE)) == 16
    assert len(calls) == 4
