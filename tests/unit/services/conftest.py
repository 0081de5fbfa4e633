"""Fixtures of the service unit tests that need accounts: a real instance on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from support_accounts import AccountsEnv

from sealdrop.crypto import passwords


@pytest.fixture
def accounts_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccountsEnv]:
    """A fresh instance (as `sealdrop init` makes it) with the server's service graph.

    Passphrases are hashed with Argon2id at a small cost here (1 MiB, one pass): these tests
    check what the accounts and logins do (tokens, TOTP steps, lockouts, roles), not the hash's
    cost, and at argon2-cffi's defaults (64 MiB, three passes, four lanes on two cores) the
    hashing was most of their ~35 CPU-seconds. The real parameters are pinned by
    tests/unit/crypto/test_passwords.py and used by every server the integration tests start."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    env = AccountsEnv(tmp_path)
    yield env
    env.close()
