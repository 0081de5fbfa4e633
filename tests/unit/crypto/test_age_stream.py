"""The resumable age writer produces files that stock age and pyrage decrypt exactly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sealdrop.crypto import age_stream, envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of


def _write(size: int, recipients_n: int = 1) -> tuple[bytes, bytes, list[Identity]]:
    identities = [generate_identity() for _ in range(recipients_n)]
    data = os.urandom(size)
    header, keys = age_stream.new_stream([recipient_of(i) for i in identities])
    out = [header]
    chunks = max(1, -(-size // age_stream.CHUNK))
    for index in range(chunks):
        piece = data[index * age_stream.CHUNK : (index + 1) * age_stream.CHUNK]
        out.append(age_stream.encrypt_chunk(keys, index, piece, index == chunks - 1))
    ciphertext = b"".join(out)
    assert len(ciphertext) == age_stream.ciphertext_size(len(header), size)
    return data, ciphertext, identities


@pytest.mark.parametrize(
    "size", [0, 1, age_stream.CHUNK, age_stream.CHUNK + 1, 3 * age_stream.CHUNK]
)
def test_stream_written_chunk_by_chunk_decrypts_with_pyrage(size: int) -> None:
    """A file written header-then-chunks decrypts (pyrage) to the exact bytes, at chunk edges."""
    data, ciphertext, identities = _write(size, recipients_n=2)
    for identity in identities:
        assert envelope.decrypt_bytes(ciphertext, [identity]) == data
    assert envelope.check_age_structure(ciphertext) is None


@pytest.mark.skipif(shutil.which("age") is None, reason="the age binary is not installed")
def test_stream_decrypts_with_stock_age(tmp_path: Path) -> None:
    """Stock `age -d` opens the resumable writer's output and gives the exact bytes."""
    data, ciphertext, identities = _write(2 * age_stream.CHUNK + 5)
    key = tmp_path / "key.txt"
    key.write_text(str(identities[0]) + "\n")
    blob = tmp_path / "blob.age"
    blob.write_bytes(ciphertext)
    out = subprocess.run(["age", "-d", "-i", str(key), str(blob)], capture_output=True, check=True)
    assert out.stdout == data


def test_only_the_last_chunk_may_be_short() -> None:
    """A short chunk that is not flagged last is refused: it would end the file early."""
    _, keys = age_stream.new_stream([recipient_of(generate_identity())])
    with pytest.raises(ValueError, match="only the last chunk"):
        age_stream.encrypt_chunk(keys, 0, b"short", last=False)
