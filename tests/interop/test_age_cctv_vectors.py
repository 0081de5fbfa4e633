"""Our age decryptor (crypto/age_decrypt.py) against the C2SP CCTV age test vectors.

The vectors are in tests/interop/age_cctv/: the Community Cryptography Test Vectors project's age
testdata (github.com/C2SP/CCTV, folder age/testdata, commit 1e3d286), copied unchanged; its
README.md there explains the format. Each vector is decrypted with its identities and must give
the expected outcome AND the expected SHA-256 of all plaintext released (even before a later
failure). Vectors for features our decryptor does not offer are skipped by name, with the reason.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pytest

from sealdrop.crypto import keys
from sealdrop.crypto.age_decrypt import decrypt_stream
from sealdrop.errors import (
    DamagedPayload,
    DecryptionError,
    HeaderMacMismatch,
    MalformedHeader,
    NoIdentityMatches,
)

VECTORS = Path(__file__).parent / "age_cctv"
_OUTCOME = {
    NoIdentityMatches: "no match",
    MalformedHeader: "header failure",
    HeaderMacMismatch: "HMAC failure",
    DamagedPayload: "payload failure",
}
_KNOWN_KEYS = {"expect", "payload", "identity", "passphrase", "armored", "file key", "comment"}
_KNOWN_KEYS |= {"compressed"}

# Skipped by name. Armor: Sealdrop stores and reads binary age files only (every blob, every
# reply); an armored file is refused as "not an age v1 file" rather than decoded.
# scrypt: passphrase-encrypted files are opened by pyrage (crypto/passphrase.py, the journalist's
# identity file), not by this decryptor, which takes key identities only. scrypt_and_x25519 is NOT
# skipped: it has an X25519 identity, and the header rule "an scrypt stanza must be alone" is ours.
ARMOR = "armored input is not offered: Sealdrop reads binary age files only"
SCRYPT = "passphrase (scrypt) files are pyrage's (crypto/passphrase.py), not this decryptor's"


def _skip_reason(name: str) -> str | None:
    if name.startswith("armor_"):
        return ARMOR
    if name.startswith("scrypt") and name != "scrypt_and_x25519":
        return SCRYPT
    return None


def _vectors() -> list[str]:
    return sorted(p.name for p in VECTORS.iterdir() if p.name != "README.md")


def _parse(name: str) -> tuple[dict[str, list[str]], bytes]:
    raw = (VECTORS / name).read_bytes()
    head, body = raw.split(b"\n\n", 1)
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").split("\n"):
        key, value = line.split(": ", 1)
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return fields, body


def test_the_vector_set_is_complete_and_skips_only_what_it_names() -> None:
    """All 143 vectors are present; the skipped ones are exactly the 33 armor + 24 scrypt files."""
    names = _vectors()
    assert len(names) == 143
    # 19 post-quantum vectors: 18 "hybrid*" and the armored "armor_hybrid".
    assert sum(n.startswith("hybrid") for n in names) == 18
    skipped = [n for n in names if _skip_reason(n)]
    assert len([n for n in skipped if _skip_reason(n) == ARMOR]) == 33
    assert len([n for n in skipped if _skip_reason(n) == SCRYPT]) == 24


@pytest.mark.parametrize("name", _vectors())
def test_cctv_vector(name: str) -> None:
    """The decryptor gives the vector's outcome and releases exactly the vector's plaintext."""
    reason = _skip_reason(name)
    if reason:
        pytest.skip(reason)
    fields, body = _parse(name)
    assert set(fields) <= _KNOWN_KEYS, f"unknown keys in {name}: the README says skip"
    identities = [keys.parse_identity(text) for text in fields.get("identity", [])]
    released = hashlib.sha256()
    try:
        decrypt_stream(io.BytesIO(body).read, released.update, identities)
        outcome = "success"
    except DecryptionError as exc:
        outcome = _OUTCOME[type(exc)]
    assert outcome == fields["expect"][0]
    if "payload" in fields:
        assert released.hexdigest() == fields["payload"][0]
