"""check_age_structure: a well-formed age file is told apart from anything else without a key."""

from __future__ import annotations

import os
import subprocess

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrage import x25519

from sealdrop.crypto.envelope import check_age_structure

KEYS = [x25519.Identity.generate() for _ in range(3)]


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 64 * 1024 + 1, 200_000])
@pytest.mark.parametrize("recipients", [1, 3])
def test_pyrage_output_is_well_formed(size: int, recipients: int) -> None:
    """Files made by pyrage, of any size and recipient count, pass."""
    data = pyrage.encrypt(os.urandom(size), [k.to_public() for k in KEYS[:recipients]])
    assert check_age_structure(data) is None


def test_stock_age_output_is_well_formed() -> None:
    """Files made by the stock age binary (with its grease stanzas) pass."""
    recipient = str(KEYS[0].to_public())
    data = subprocess.run(
        ["age", "-r", recipient], input=b"reply text", capture_output=True, check=True
    ).stdout
    assert check_age_structure(data) is None


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda d: b"hello world", "not an age v1 file"),
        (lambda d: d.replace(b"\n--- ", b"\n---x"), "no age header MAC line"),
        (lambda d: d.replace(b"-> X25519", b"->X25519"), "unexpected line in age header"),
        (lambda d: d[: d.index(b"\n--- ") + 20], "truncated age header"),
        (lambda d: d[:-20], "age payload too short"),
        (lambda d: b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n" + bytes(40), "age header"),
        (lambda d: d.replace(b"age-encryption.org/v1", b"age-encryption.org/v2"), "not an age"),
    ],
    ids=["text", "no-mac", "bad-stanza", "cut-header", "cut-payload", "no-stanza", "version"],
)
def test_malformed_files_are_refused_with_a_reason(mangle: object, why: str) -> None:
    """Each kind of damage is refused, with a reason naming what is wrong."""
    data = pyrage.encrypt(b"hello", [KEYS[0].to_public()])
    reason = check_age_structure(mangle(data))  # type: ignore[operator]
    assert reason is not None
    assert why in reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Any byte string gets an answer (None or a reason), never an exception."""
    for candidate in (data, b"age-encryption.org/v1\n" + data):
        result = check_age_structure(candidate)
        assert result is None or isinstance(result, str)
