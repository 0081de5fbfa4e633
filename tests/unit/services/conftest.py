"""Fixtures of the service unit tests that need accounts: a real instance on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support_accounts import AccountsEnv


@pytest.fixture
def accounts_env(tmp_path: Path) -> Iterator[AccountsEnv]:
    """A fresh instance (as `sealdrop init` makes it) with the server's service graph."""
    env = AccountsEnv(tmp_path)
    yield env
    env.close()
