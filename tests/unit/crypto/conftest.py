"""Fixtures shared by the crypto tests: identity files for the stock age binaries (whose fixtures,
age_bin and age_keygen_bin, are in tests/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sealdrop.crypto import keys


@pytest.fixture
def write_identity_file(tmp_path: Path) -> Callable[[keys.Identity], Path]:
    """Writes an identity as an age identity file (mode 0600) that `age -i` accepts."""

    def write(identity: keys.Identity) -> Path:
        path = tmp_path / f"identity-{len(list(tmp_path.iterdir()))}.txt"
        path.touch(mode=0o600)
        path.write_text(f"{identity}\n", encoding="ascii")
        return path

    return write


@pytest.fixture
def age_keygen_public(age_keygen_bin: str) -> Callable[[keys.Identity], str]:
    """What `age-keygen -y` prints as the recipient of an identity."""

    def public(identity: keys.Identity) -> str:
        done = subprocess.run(
            [age_keygen_bin, "-y"],
            input=f"{identity}\n",
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout.strip()

    return public
