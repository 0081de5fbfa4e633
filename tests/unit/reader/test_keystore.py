"""sealdrop.reader.keystore: the journalist's identity in an age passphrase-encrypted file."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from bech32 import bech32_decode, convertbits

from sealdrop.crypto.envelope import decrypt_bytes, encrypt_bytes
from sealdrop.crypto.keys import Identity, generate_identity, parse_recipient, recipient_of
from sealdrop.crypto.passphrase import encrypt_with_passphrase
from sealdrop.errors import (
    IdentityExists,
    IdentityFileError,
    WeakPassphrase,
    WrongPassphrase,
)
from sealdrop.reader import keystore

# (argv, passphrase) -> (exit code, terminal transcript); the `age_on_pty` fixture in conftest.
AgeOnPty = Callable[[list[str], str], tuple[int, str]]

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Stored:
    folder: Path
    path: Path
    public: str
    identity: Identity


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    """One identity file, created and loaded once (each scrypt costs about a second)."""
    folder = tmp_path_factory.mktemp("reader-data")
    path = folder / "identity.age"
    public = keystore.create_identity(path, PASSPHRASE)
    return Stored(folder, path, public, keystore.load_identity(path, PASSPHRASE))


def file_modes(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): p.stat().st_mode & 0o777
        for p in directory.rglob("*")
        if p.is_file()
    }


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_create_then_load_round_trips(stored: Stored) -> None:
    """The loaded identity is the one whose public key create_identity returned and the sidecar
    holds, and it decrypts what is encrypted to that key."""
    assert stored.public.startswith("age1")
    assert str(recipient_of(stored.identity)) == stored.public
    assert keystore.public_key(stored.path) == stored.public
    assert (stored.folder / "identity.pub").read_text() == stored.public + "\n"
    blob = encrypt_bytes(b"a submission", [parse_recipient(stored.public)])
    assert decrypt_bytes(blob, [stored.identity]) == b"a submission"


def test_identity_file_is_private_and_sidecar_is_readable(stored: Stored) -> None:
    """The identity file is mode 0600, the public key sidecar 0644, and nothing else is left."""
    assert file_modes(stored.folder) == {"identity.age": 0o600, "identity.pub": 0o644}


def test_identity_file_is_a_passphrase_age_file(stored: Stored) -> None:
    """The file is a binary age file with a single scrypt recipient stanza."""
    data = stored.path.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n-> scrypt ")
    assert data.count(b"\n-> ") == 1


def test_no_plaintext_secret_key_in_the_data_folder(stored: Stored) -> None:
    """No file in the data folder holds the secret key, as text (any case) or as raw bytes."""
    secret_text = str(stored.identity)
    hrp, data = bech32_decode(secret_text.lower())
    assert hrp == "age-secret-key-"
    assert data is not None
    scalar = bytes(convertbits(data, 5, 8, False) or [])
    assert len(scalar) == 32
    needles = [secret_text.encode(), secret_text.lower().encode(), scalar, b"AGE-SECRET-KEY"]
    for name, content in _snapshot(stored.folder).items():
        for needle in needles:
            assert needle not in content, f"secret key material in {name}"


def test_wrong_passphrase_is_refused_and_changes_nothing(stored: Stored) -> None:
    """A wrong passphrase raises WrongPassphrase; the folder is byte-identical afterwards."""
    before = _snapshot(stored.folder)
    mtime = stored.path.stat().st_mtime_ns
    with pytest.raises(WrongPassphrase):
        keystore.load_identity(stored.path, "not the right passphrase")
    assert _snapshot(stored.folder) == before
    assert stored.path.stat().st_mtime_ns == mtime


def test_refuses_to_overwrite_an_existing_identity(stored: Stored) -> None:
    """create_identity on an existing file raises IdentityExists and leaves both files alone."""
    before = _snapshot(stored.folder)
    with pytest.raises(IdentityExists):
        keystore.create_identity(stored.path, "another long passphrase")
    assert _snapshot(stored.folder) == before


def test_refuses_short_passphrases(tmp_path: Path) -> None:
    """A passphrase under 12 characters raises WeakPassphrase and creates nothing."""
    with pytest.raises(WeakPassphrase) as caught:
        keystore.create_identity(tmp_path / "identity.age", "elevenchars")
    assert caught.value.min_length == 12
    assert list(tmp_path.iterdir()) == []


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """Loading a file that does not exist raises IdentityFileError, not an OSError."""
    with pytest.raises(IdentityFileError, match="no identity file"):
        keystore.load_identity(tmp_path / "identity.age", PASSPHRASE)
    with pytest.raises(IdentityFileError, match="no public key file"):
        keystore.public_key(tmp_path / "identity.age")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"AGE-SECRET-KEY-1 not encrypted at all\n",
        b"age-encryption.org/v1\n-> scrypt abc 18\ntruncated",
    ],
    ids=["empty", "plain-text", "truncated-age"],
)
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    """A file that is not a passphrase-encrypted age file raises IdentityFileError, unchanged."""
    path = tmp_path / "identity.age"
    path.write_bytes(content)
    with pytest.raises(IdentityFileError):
        keystore.load_identity(path, PASSPHRASE)
    assert path.read_bytes() == content


def test_age_file_to_a_key_is_not_an_identity_file(tmp_path: Path) -> None:
    """An age file encrypted to an X25519 key (not a passphrase) raises IdentityFileError."""
    path = tmp_path / "identity.age"
    path.write_bytes(encrypt_bytes(b"x", [recipient_of(generate_identity())]))
    with pytest.raises(IdentityFileError, match="not passphrase-encrypted"):
        keystore.load_identity(path, PASSPHRASE)


def test_swapped_sidecar_is_detected(stored: Stored, tmp_path: Path) -> None:
    """A public key sidecar that does not match the identity makes load_identity refuse."""
    path = tmp_path / "identity.age"
    shutil.copy2(stored.path, path)
    (tmp_path / "identity.pub").write_text(f"{recipient_of(generate_identity())}\n")
    with pytest.raises(IdentityFileError, match="does not match"):
        keystore.load_identity(path, PASSPHRASE)


@pytest.mark.parametrize(
    "plaintext",
    [b"# just a comment\n", b"AGE-SECRET-KEY-1QQQ\n", b"\xff\xfe", b"KEY-ONE\nKEY-TWO\n"],
    ids=["no-key", "bad-key", "not-ascii", "two-keys"],
)
def test_encrypted_content_that_is_not_an_identity_is_refused(
    stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plaintext: bytes
) -> None:
    """A passphrase age file whose plaintext is not exactly one age identity raises
    IdentityFileError (the decryption is stubbed: a real one costs a second of scrypt)."""
    path = tmp_path / "identity.age"
    shutil.copy2(stored.path, path)
    monkeypatch.setattr(keystore, "decrypt_with_passphrase", lambda data, passphrase: plaintext)
    with pytest.raises(IdentityFileError) as caught:
        keystore.load_identity(path, PASSPHRASE)
    assert "QQQ" not in str(caught.value)


def test_passphrase_encryption_refuses_an_empty_passphrase() -> None:
    """crypto.passphrase never makes an age file that an empty passphrase opens (the round trip
    is covered by the identity file tests above)."""
    with pytest.raises(ValueError, match="non-empty"):
        encrypt_with_passphrase(b"payload", "")


@pytest.mark.slow  # the stock age on a pseudo-terminal, scrypt at its work factor: ~5 s
def test_stock_age_opens_the_identity_file_with_the_passphrase(
    stored: Stored,
    tmp_path: Path,
    age_bin: str,
    age_keygen_bin: str,
    age_on_pty: AgeOnPty,
) -> None:
    """`age -d` with the passphrase yields an age-keygen identity file that `age -d -i` uses."""
    text_identity = tmp_path / "identity.txt"
    code, transcript = age_on_pty(
        [age_bin, "-d", "-o", str(text_identity), str(stored.path)], PASSPHRASE
    )
    assert code == 0, transcript
    lines = text_identity.read_text().splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1] == f"# public key: {stored.public}"
    assert lines[2] == str(stored.identity)
    derived = subprocess.run(
        [age_keygen_bin, "-y", str(text_identity)], capture_output=True, text=True, check=True
    )
    assert derived.stdout.strip() == stored.public

    blob = tmp_path / "blob.age"
    blob.write_bytes(encrypt_bytes(b"the exact bytes\x00\xff", [parse_recipient(stored.public)]))
    opened = subprocess.run(
        [age_bin, "-d", "-i", str(text_identity), str(blob)], capture_output=True, check=True
    )
    assert opened.stdout == b"the exact bytes\x00\xff"


def test_stock_age_uses_the_encrypted_identity_file_directly(
    stored: Stored, tmp_path: Path, age_bin: str, age_on_pty: AgeOnPty
) -> None:
    """`age -d -i identity.age blob` asks for the identity's passphrase and decrypts the blob."""
    blob = tmp_path / "blob.age"
    out = tmp_path / "out.bin"
    blob.write_bytes(encrypt_bytes(b"from the server", [parse_recipient(stored.public)]))
    code, transcript = age_on_pty(
        [age_bin, "-d", "-i", str(stored.path), "-o", str(out), str(blob)], PASSPHRASE
    )
    assert code == 0, transcript
    assert out.read_bytes() == b"from the server"
