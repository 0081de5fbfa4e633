"""The reader's keystore holds an identity of either kind: identity files made before
post-quantum keys still unlock, hybrid identity files round-trip, and a reply is never sealed to
both kinds (``check_reply_kinds``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sealdrop.crypto.keys import (
    generate_identity,
    is_post_quantum,
    parse_recipient,
    recipient_of,
)
from sealdrop.errors import ReaderError
from sealdrop.reader import keystore
from sealdrop.reader.content import check_reply_kinds

OLD = Path(__file__).parents[2] / "fixtures" / "reader_identity_acbbf75"
OLD_PASSPHRASE = "an old reader passphrase"
PASSPHRASE = "a long enough passphrase"


def test_an_identity_file_from_before_post_quantum_keys_still_unlocks(tmp_path: Path) -> None:
    """The X25519 identity file `reader init` wrote at acbbf75 loads, and matches its sidecar."""
    for name in ("identity.age", "identity.pub"):
        shutil.copy(OLD / name, tmp_path / name)
    identity = keystore.load_identity(tmp_path / "identity.age", OLD_PASSPHRASE)
    assert not is_post_quantum(identity)
    expected = (OLD / "identity.pub").read_text().strip()
    assert str(recipient_of(identity)) == expected
    assert keystore.public_key(tmp_path / "identity.age") == expected


def test_a_hybrid_identity_file_round_trips(tmp_path: Path) -> None:
    """create_identity(post_quantum=True) stores an AGE-SECRET-KEY-PQ-1 identity that loads back,
    its age1pq1 public key in the sidecar."""
    path = tmp_path / "identity.age"
    public = keystore.create_identity(path, PASSPHRASE, post_quantum=True)
    assert is_post_quantum(parse_recipient(public))
    identity = keystore.load_identity(path, PASSPHRASE)
    assert is_post_quantum(identity)
    assert str(recipient_of(identity)) == public == keystore.public_key(path)


def test_classic_is_still_the_keystore_default(tmp_path: Path) -> None:
    """Without post_quantum the keystore makes an X25519 identity, as before (reader init picks
    the kind from the instance)."""
    public = keystore.create_identity(tmp_path / "identity.age", PASSPHRASE)
    assert public.startswith("age1")
    assert not is_post_quantum(parse_recipient(public))


def _key(post_quantum: bool) -> str:
    return str(recipient_of(generate_identity(post_quantum=post_quantum)))


def test_a_reply_to_a_source_with_a_classic_key_on_a_hybrid_instance_is_refused() -> None:
    """The source has not logged in since the switch: the reader says why and when to reply."""
    with pytest.raises(ReaderError, match="not logged in since"):
        check_reply_kinds(_key(False), [_key(True), _key(True)])


def test_a_classic_reader_on_a_hybrid_instance_cannot_seal_a_reply() -> None:
    """This device's own classic key next to the instance's hybrid keys: refused, not mixed."""
    with pytest.raises(ReaderError, match="reader whose key is post-quantum"):
        check_reply_kinds(_key(True), [_key(True), _key(False)])


def test_replies_of_one_kind_pass() -> None:
    """All classic, or all hybrid: nothing to refuse."""
    check_reply_kinds(_key(False), [_key(False)])
    check_reply_kinds(_key(True), [_key(True), _key(True)])
