"""sealdrop.crypto.derive on post-quantum instances: the codename also derives a hybrid
(ML-KEM-768 + X25519) reply identity, from a 32-byte seed out of the same HKDF under its own
label; only its public half is stored."""

from __future__ import annotations

import hashlib

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealdrop.crypto import derive, keys
from sealdrop.crypto.codenames import Codename

CODENAME = Codename("abacus t-shirt zoom drop-down yo-yo felt-tip kinfolk")
SALT = bytes(range(16))
# SHA-256 of the hybrid reply recipient for CODENAME + SALT (the key is 1,959 characters). If this
# changes, every source on a post-quantum instance loses the replies sent to its hybrid key.
PINNED_HYBRID_RECIPIENT_SHA256 = "fc06fd94f733db1b11110ae929e22601fcc02052de9c832e926c5974a823c00a"


@pytest.fixture(scope="module")
def source_keys() -> derive.SourceKeys:
    return derive.derive_source_keys(CODENAME, SALT)


def _hkdf(info: bytes) -> bytes:
    stretched = hash_secret_raw(
        secret=CODENAME.encode(),
        salt=SALT,
        time_cost=3,
        memory_cost=65536,
        parallelism=1,
        hash_len=64,
        type=Type.ID,
    )
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(stretched)


def test_hybrid_seed_is_its_own_hkdf_output(source_keys: derive.SourceKeys) -> None:
    """The hybrid identity is the age PQ identity whose seed is HKDF(info
    "sealdrop/v1/reply-identity-mlkem768x25519") of the Argon2id output."""
    seed = _hkdf(b"sealdrop/v1/reply-identity-mlkem768x25519")
    expected = keys.hybrid_identity_from_seed(seed)
    assert str(source_keys.hybrid_reply_identity) == str(expected)
    assert seed not in {source_keys.lookup_id, _hkdf(b"sealdrop/v1/reply-identity")}


def test_hybrid_reply_key_is_pinned(source_keys: derive.SourceKeys) -> None:
    """A fixed codename and salt always give the same, recorded hybrid reply recipient."""
    text = source_keys.reply_key(post_quantum=True)
    assert text.startswith("age1pq1")
    assert len(text) == 1959
    assert hashlib.sha256(text.encode()).hexdigest() == PINNED_HYBRID_RECIPIENT_SHA256


def test_reply_key_follows_the_instance_kind(source_keys: derive.SourceKeys) -> None:
    """Classic instances store the X25519 reply key as before; post-quantum ones the hybrid."""
    assert source_keys.reply_key(post_quantum=False) == str(source_keys.reply_recipient)
    hybrid = keys.parse_recipient(source_keys.reply_key(post_quantum=True))
    assert keys.is_post_quantum(hybrid)
    assert hybrid == keys.recipient_of(source_keys.hybrid_reply_identity)


def test_same_codename_derives_the_same_hybrid_key(source_keys: derive.SourceKeys) -> None:
    """A later login reproduces the hybrid identity exactly (nothing of it is stored)."""
    again = derive.derive_source_keys(CODENAME, SALT)
    assert str(again.hybrid_reply_identity) == str(source_keys.hybrid_reply_identity)


def test_repr_hides_the_hybrid_identity(source_keys: derive.SourceKeys) -> None:
    """repr(SourceKeys) does not show the hybrid identity either."""
    assert str(source_keys.hybrid_reply_identity) not in repr(source_keys)
