"""Properties of codename → keys derivation over generated codenames and salts.

Every derivation is a real Argon2id (64 MiB, ~0.15 s): the examples are few, and each one checks
determinism and separation at once. Complements test_derive.py (the pinned construction).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support_words import WORDS

from sealdrop.crypto import codenames, derive
from sealdrop.crypto.codenames import Codename
from sealdrop.errors import InvalidCodename

codenames_st = st.lists(st.sampled_from(WORDS), min_size=7, max_size=7).map(
    lambda words: Codename(" ".join(words))
)
salts = st.binary(min_size=derive.MIN_SALT_LEN, max_size=64)
KDF = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def fingerprint(keys: derive.SourceKeys) -> tuple[bytes, str, str]:
    return keys.lookup_id, str(keys.reply_identity), str(keys.reply_recipient)


@KDF
@given(codename=codenames_st, salt=salts, data=st.data())
def test_derivation_is_deterministic_and_separates_salts_and_codenames(
    codename: Codename, salt: bytes, data: st.DataObject
) -> None:
    """The same codename and salt give the same lookup id and reply identity every time; another
    salt, or a codename differing in one word, gives a different lookup id, identity and
    recipient, and no output of one is an output of the other."""
    other_salt = data.draw(salts.filter(lambda s: s != salt), label="other_salt")
    words = codename.split(" ")
    at = data.draw(st.integers(0, len(words) - 1), label="at")
    replacement = data.draw(st.sampled_from(WORDS).filter(lambda w: w != words[at]), label="word")
    other_codename = Codename(" ".join([*words[:at], replacement, *words[at + 1 :]]))

    first = fingerprint(derive.derive_source_keys(codename, salt))
    assert fingerprint(derive.derive_source_keys(codename, salt)) == first
    for other in (
        fingerprint(derive.derive_source_keys(codename, other_salt)),
        fingerprint(derive.derive_source_keys(other_codename, salt)),
    ):
        assert all(mine != theirs for mine, theirs in zip(first, other, strict=True))
        assert first[0] not in other[1].encode()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    text=st.one_of(
        st.text(max_size=120),
        codenames_st.map(str.upper),
        codenames_st.map(lambda c: " " + c),
        codenames_st.map(lambda c: c.replace(" ", "  ", 1)),
        codenames_st.map(lambda c: c.replace(" ", "\t")),
    ),
    salt=salts,
)
def test_anything_but_a_canonical_codename_is_refused(text: str, salt: bytes) -> None:
    """derive_source_keys refuses text that is not a codename (InvalidCodename) and a codename
    that is not in canonical form (ValueError), so a caller's missing normalize() can never
    derive a valid but different key; no other exception occurs."""
    try:
        canonical = codenames.normalize(text)
    except InvalidCodename:
        canonical = None
    if canonical is None:
        with pytest.raises(InvalidCodename):
            derive.derive_source_keys(Codename(text), salt)
    elif canonical != text:
        with pytest.raises(ValueError, match="normalised"):
            derive.derive_source_keys(Codename(text), salt)
    else:
        # A canonical codename derives (rare for generated text, but possible).
        assert len(derive.derive_source_keys(Codename(text), salt).lookup_id) == 32
