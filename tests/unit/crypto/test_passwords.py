"""Journalist passphrases at rest (crypto/passwords.py): Argon2id with argon2-cffi's default
parameters or stronger (DESIGN.md, "Journalist passphrases"). The service tests hash at a small
cost (tests/unit/services/conftest.py); this pins what the product uses."""

from __future__ import annotations

import argon2
from argon2 import PasswordHasher

from sealdrop.crypto import passwords


def test_passphrases_are_hashed_with_argon2id_at_the_default_cost_or_more() -> None:
    """A stored hash names Argon2id with at least argon2-cffi's default memory, passes, lanes,
    hash and salt lengths, and verifies only its own passphrase."""
    stored = passwords.hash_passphrase("seven words of a generated passphrase here")
    used = argon2.extract_parameters(stored)
    default = argon2.Parameters(
        type=argon2.Type.ID,
        version=argon2.low_level.ARGON2_VERSION,
        salt_len=argon2.DEFAULT_RANDOM_SALT_LENGTH,
        hash_len=argon2.DEFAULT_HASH_LENGTH,
        time_cost=argon2.DEFAULT_TIME_COST,
        memory_cost=argon2.DEFAULT_MEMORY_COST,
        parallelism=argon2.DEFAULT_PARALLELISM,
    )
    assert used.type is argon2.Type.ID
    assert used.memory_cost >= default.memory_cost >= 64 * 1024
    assert used.time_cost >= default.time_cost
    assert used.parallelism >= default.parallelism
    assert used.hash_len >= default.hash_len
    assert used.salt_len >= default.salt_len
    assert passwords.verify_passphrase(stored, "seven words of a generated passphrase here")
    assert not passwords.verify_passphrase(stored, "seven words of a generated passphrase")


def test_a_hash_made_at_a_lower_cost_is_to_be_rehashed() -> None:
    """A hash stored at a lower cost (an older or weaker setting) verifies, and is reported as
    needing a new hash at the current parameters."""
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("a passphrase")
    assert passwords.verify_passphrase(weak, "a passphrase")
    assert passwords.needs_rehash(weak)
    assert not passwords.needs_rehash(passwords.hash_passphrase("a passphrase"))
