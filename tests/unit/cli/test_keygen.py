"""`sealdrop keygen [--pq] [-o FILE]`: an age identity made like `age-keygen` makes it, run as
the operator runs it (a child process), and compared with the stock age-keygen and age."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from sealdrop.crypto import envelope, keys

_CREATED = r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)"


def _keygen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}  # narrow: a wrapped key line would be a bug
    return subprocess.run(
        [sys.executable, "-m", "sealdrop", "keygen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _layout(text: str) -> list[str]:
    """Each line of an identity file with the key material masked: the file's shape."""
    masked = [re.sub(_CREATED, "# created: T", line) for line in text.splitlines()]
    return [
        re.sub(r"(age1(pq1)?|AGE-SECRET-KEY-(PQ-)?1)[0-9a-zA-Z]+", r"\1…", line) for line in masked
    ]


def test_keygen_to_a_file_is_shaped_like_age_keygen_and_stock_age_decrypts_to_it(
    tmp_path: Path, age_keygen_bin: str, age_bin: str
) -> None:
    """-o: a 0600 file shaped like age-keygen's, "Public key:" on stderr, and stock age opens a
    file encrypted to that public key with that identity file."""
    done = _keygen("-o", "ours.txt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    theirs = subprocess.run(
        [age_keygen_bin, "-o", "theirs.txt"], cwd=tmp_path, capture_output=True, text=True
    )
    ours_file, theirs_file = tmp_path / "ours.txt", tmp_path / "theirs.txt"
    assert stat.S_IMODE(ours_file.stat().st_mode) == 0o600
    assert _layout(ours_file.read_text()) == _layout(theirs_file.read_text())
    assert _layout(done.stderr) == _layout(theirs.stderr) == ["Public key: age1…"]
    assert done.stdout == ""
    public = done.stderr.removeprefix("Public key: ").strip()
    assert f"# public key: {public}\n" in ours_file.read_text()
    ciphertext = tmp_path / "blob.age"
    ciphertext.write_bytes(
        envelope.encrypt_bytes(b"to the offline key", [keys.parse_recipient(public)])
    )
    opened = subprocess.run(
        [age_bin, "-d", "-i", str(ours_file), str(ciphertext)], capture_output=True, check=True
    )
    assert opened.stdout == b"to the offline key"


def test_keygen_to_stdout_is_shaped_like_age_keygen(tmp_path: Path, age_keygen_bin: str) -> None:
    """Without -o: the three lines on stdout, as age-keygen prints them; nothing else on stdout."""
    done = _keygen(cwd=tmp_path)
    theirs = subprocess.run([age_keygen_bin], capture_output=True, text=True, check=True)
    assert done.returncode == 0
    assert _layout(done.stdout) == _layout(theirs.stdout)
    identity = keys.parse_identity(done.stdout.splitlines()[2])
    assert done.stdout.splitlines()[1] == f"# public key: {keys.recipient_of(identity)}"


def test_keygen_never_overwrites_an_existing_file(tmp_path: Path, age_keygen_bin: str) -> None:
    """An existing -o file (perhaps the only copy of a key) is left as it was; exit status 1."""
    target = tmp_path / "key.txt"
    target.write_text("precious\n")
    done = _keygen("-o", str(target), cwd=tmp_path)
    theirs = subprocess.run(
        [age_keygen_bin, "-o", str(target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == theirs.returncode == 1
    assert "file exists" in done.stderr.lower()
    assert target.read_text() == "precious\n"


def test_keygen_pq_makes_a_hybrid_identity_that_opens_hybrid_files(tmp_path: Path) -> None:
    """--pq: an AGE-SECRET-KEY-PQ-1… identity whose age1pq1… public key (printed unwrapped)
    encrypts files it opens."""
    done = _keygen("--pq", "-o", "pq.txt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "pq.txt").read_text().splitlines()
    identity = keys.parse_identity(lines[2])
    assert keys.is_post_quantum(identity)
    public = str(keys.recipient_of(identity))
    assert lines[1] == f"# public key: {public}"
    assert done.stderr == f"Public key: {public}\n"
    assert len(public) == 1959
    sealed = envelope.encrypt_bytes(b"post-quantum", [keys.parse_recipient(public)])
    assert envelope.decrypt_bytes(sealed, [identity]) == b"post-quantum"
