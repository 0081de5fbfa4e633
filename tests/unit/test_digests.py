"""Content digests (sealdrop.digests): the algorithm each names, published test values, and the
API schema's form of a digest (sealdrop.wire spells it on its own) held to the module's."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from sealdrop import digests, wire

# Published values: BLAKE3 of "" and of "abc" (the BLAKE3 team's reference implementation and
# b3sum give them; tests/interop/test_b3sum.py runs b3sum itself), SHA-256 of "abc" (FIPS 180-2,
# appendix B.1).
BLAKE3_EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
BLAKE3_ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_new_content_is_digested_with_blake3_in_any_pieces() -> None:
    """new() is BLAKE3, named "blake3:"; the digest does not depend on how the bytes are cut."""
    assert digests.new().text() == f"blake3:{BLAKE3_EMPTY}"
    whole = digests.new()
    whole.update(b"abc")
    pieces = digests.new()
    for piece in (b"a", b"", memoryview(b"bc")):
        pieces.update(piece)
    assert whole.text() == pieces.text() == f"blake3:{BLAKE3_ABC}"


def test_a_digest_is_checked_with_the_algorithm_it_names() -> None:
    """like() computes with the digest's own algorithm: an old "sha256:" digest with SHA-256."""
    old = digests.like(f"sha256:{SHA256_ABC}")
    old.update(b"abc")
    assert (old.algorithm, old.text()) == ("sha256", f"sha256:{SHA256_ABC}")
    current = digests.like(f"blake3:{BLAKE3_ABC}")
    assert current.algorithm == "blake3"


@pytest.mark.parametrize(
    "text",
    [
        "",
        SHA256_ABC,  # a bare hex SHA-256, as rows were before migration 0009
        f"md5:{'0' * 32}",
        f"blake3:{BLAKE3_ABC.upper()}",
        f"blake3:{BLAKE3_ABC}0",
        f"blake3:{BLAKE3_ABC[:-1]}",
        f"sha512:{'0' * 64}",
        f" blake3:{BLAKE3_ABC}",
    ],
)
def test_anything_else_is_not_a_digest(text: str) -> None:
    assert not digests.valid(text)
    with pytest.raises(ValueError, match="not a content digest"):
        digests.like(text)


@pytest.mark.parametrize(
    "text",
    [f"blake3:{BLAKE3_ABC}", f"sha256:{SHA256_ABC}", SHA256_ABC, f"md5:{'0' * 32}", "x:"],
)
def test_the_api_schema_takes_exactly_the_digests_this_module_makes(text: str) -> None:
    """wire.Digest (a leaf's own copy of the form) accepts what digests.valid accepts, and ""
    (an item stored before digests were kept), nothing else."""
    adapter = TypeAdapter(wire.Digest)
    if digests.valid(text):
        assert adapter.validate_python(text) == text
    else:
        with pytest.raises(ValidationError, match="malformed digest"):
            adapter.validate_python(text)
    assert adapter.validate_python("") == ""
