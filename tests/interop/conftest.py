"""Fixtures of the interop tests: typage, the second age implementation (tests/interop/typage)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

TYPAGE = Path(__file__).parent / "typage"


@pytest.fixture(scope="session")
def typage_dir() -> Path:
    """The folder where typage is installed (npm ci, pinned), with typage.mjs beside it."""
    done = subprocess.run(
        [str(TYPAGE / "install")], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"typage could not be installed: {done.stderr.strip()}", pytrace=False)
    return Path(done.stdout.strip())
