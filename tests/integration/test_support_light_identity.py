"""The light identity files the reader's integration tests use (support_light_identity): age
files that the product's own opening path (pyrage) reads, at work factor 2^10, and only inside
``light_identity_kdf()``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_light_identity import LIGHT_WORK_FACTOR, encrypt_lightly, light_identity_kdf

from sealdrop.crypto import passphrase
from sealdrop.crypto.keys import recipient_of
from sealdrop.crypto.passphrase import decrypt_with_passphrase, work_factor
from sealdrop.errors import DecryptionError, WrongPassphrase
from sealdrop.reader import keystore

SECRET = "correct horse battery staple reader"


def test_pyrage_opens_a_light_file_and_refuses_a_wrong_passphrase() -> None:
    """pyrage (rage: another implementation than the one that wrote the file) opens it with the
    passphrase, refuses it without, and the header names work factor 2^10."""
    data = b"# created: 2026-12-06T10:00:00+00:00\nAGE-SECRET-KEY-1...\n"
    sealed = encrypt_lightly(data, SECRET)
    assert work_factor(sealed) == LIGHT_WORK_FACTOR
    assert decrypt_with_passphrase(sealed, SECRET) == data
    with pytest.raises(DecryptionError):
        decrypt_with_passphrase(sealed, SECRET + "!")
    assert encrypt_lightly(data, SECRET) != sealed  # a fresh salt, file key and nonce each time


def test_inside_the_context_the_keystore_writes_light_files_and_after_it_real_ones(
    tmp_path: Path,
) -> None:
    """create_identity inside light_identity_kdf() makes a file that load_identity opens (and a
    wrong passphrase does not); outside it, the keystore encrypts with the product's function."""
    with light_identity_kdf():
        public = keystore.create_identity(tmp_path / "identity.age", SECRET)
    data = (tmp_path / "identity.age").read_bytes()
    assert work_factor(data) == LIGHT_WORK_FACTOR
    assert str(recipient_of(keystore.load_identity(tmp_path / "identity.age", SECRET))) == public
    with pytest.raises(WrongPassphrase):
        keystore.load_identity(tmp_path / "identity.age", "another long passphrase")
    assert vars(keystore)["encrypt_with_passphrase"] is passphrase.encrypt_with_passphrase
