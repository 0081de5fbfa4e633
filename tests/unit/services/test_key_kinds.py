"""The instance's key kind (``crypto.post_quantum``): one rule, in ``services.key_kinds``, for who
is encrypted to and what may be registered, on a real instance (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealdrop.config import load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import ConfigError, WrongKeyKind
from sealdrop.ids import UserId
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.key_kinds import ORGANISATION, is_hybrid
from sealdrop.services.recipients import encryption_keys
from sealdrop.storage.database import SqlDatabase

# Stored as text only (never parsed on these paths): the policy goes by the canonical prefix.
HYBRID_A = "age1pq1" + "q" * 1952
HYBRID_B = "age1pq1" + "p" * 1952


def classic() -> str:
    return str(recipient_of(generate_identity()))


@dataclass
class Instance:
    services: Services
    db: SqlDatabase

    def journalist(self, name: str, *keys: str) -> UserId:
        with self.db.transaction() as repos:
            user = repos.users.add(name, "hash", "", "journalist")
            for n, key in enumerate(keys):
                repos.user_recipients.add(user.id, key, f"device {n}")
        return user.id

    def organisation(self, *keys: str) -> None:
        with self.db.transaction() as repos:
            for key in keys:
                repos.recipients.add(key, "offline")

    def keys(self) -> list[str]:
        with self.db.transaction(read_only=True) as repos:
            return encryption_keys(repos, post_quantum=self.services.settings.post_quantum)


def make(tmp_path: Path, post_quantum: bool) -> Iterator[Instance]:
    env = {"SEALDROP_CRYPTO_POST_QUANTUM": "true" if post_quantum else "false"}
    settings = load_settings(init_instance(tmp_path / "instance"), env=env)
    services = build_services(settings)
    db = SqlDatabase(settings.database_url)
    yield Instance(services, db)
    services.close()
    db.close()


@pytest.fixture
def classic_instance(tmp_path: Path) -> Iterator[Instance]:
    yield from make(tmp_path, post_quantum=False)


@pytest.fixture
def hybrid_instance(tmp_path: Path) -> Iterator[Instance]:
    yield from make(tmp_path, post_quantum=True)


def test_the_setting_defaults_to_classic(classic_instance: Instance) -> None:
    """crypto.post_quantum is false unless set: existing instances stay X25519."""
    assert classic_instance.services.settings.post_quantum is False


def test_hybrid_prefix_is_not_a_classic_key() -> None:
    """age1pq1… is hybrid; an X25519 key never starts like it ('1' is no Bech32 data character)."""
    assert is_hybrid(HYBRID_A)
    assert not any(is_hybrid(classic()) for _ in range(50))


def test_classic_instance_encrypts_to_classic_keys_only(classic_instance: Instance) -> None:
    """On a classic instance, hybrid keys registered ahead of a switch are never encrypted to, so
    no file mixes kinds."""
    org, ann = classic(), classic()
    classic_instance.organisation(org, HYBRID_A)
    classic_instance.journalist("ann", ann, HYBRID_B)
    assert classic_instance.keys() == [org, ann]
    assert classic_instance.services.submissions.recipient_keys() == [org, ann]


def test_hybrid_instance_encrypts_to_hybrid_keys_only(hybrid_instance: Instance) -> None:
    """On a post-quantum instance, classic keys left from before the switch are not encrypted to
    (the files stay readable by them; new files are not)."""
    hybrid_instance.organisation(classic(), HYBRID_A)
    hybrid_instance.journalist("ann", classic(), HYBRID_B)
    assert hybrid_instance.keys() == [HYBRID_A, HYBRID_B]
    assert hybrid_instance.services.submissions.accepting() is True


def test_hybrid_instance_with_classic_keys_only_accepts_nothing(hybrid_instance: Instance) -> None:
    """Switched without new keys: nobody to encrypt to, so intake is refused rather than a file
    sealed to a classic key."""
    hybrid_instance.organisation(classic())
    hybrid_instance.journalist("ann", classic())
    assert hybrid_instance.keys() == []
    assert hybrid_instance.services.submissions.accepting() is False


def test_hybrid_instance_refuses_a_classic_organisation_key(hybrid_instance: Instance) -> None:
    """`recipients add age1…` on a post-quantum instance is refused with what to do instead."""
    with pytest.raises(WrongKeyKind, match="keygen --pq"):
        hybrid_instance.services.recipients.add(classic(), "offline")
    assert hybrid_instance.services.recipients.list() == []


def test_hybrid_instance_refuses_a_classic_device_key(hybrid_instance: Instance) -> None:
    """A reader registering a classic device key on a post-quantum instance is refused."""
    user = hybrid_instance.services.accounts.create("ann", "journalist", actor="test")
    with pytest.raises(WrongKeyKind, match="post-quantum"):
        hybrid_instance.services.accounts.add_recipient(user.user.id, classic(), "laptop")
    assert hybrid_instance.services.accounts.recipients(user.user.id) == []


def test_classic_instance_takes_classic_keys(classic_instance: Instance) -> None:
    """The classic default is unchanged: age1… keys register and are encrypted to."""
    key = classic()
    classic_instance.services.recipients.add(key, "offline")
    assert classic_instance.keys() == [key]


def test_switch_blockers_name_who_has_no_hybrid_key(hybrid_instance: Instance) -> None:
    """Post-quantum: the organisation and each enabled account that has keys but no hybrid one
    are named (they would silently stop receiving); disabled and keyless accounts are not."""
    hybrid_instance.organisation(classic())
    hybrid_instance.journalist("ann", classic())
    hybrid_instance.journalist("bob", classic(), HYBRID_B)
    hybrid_instance.journalist("cat")
    dan = hybrid_instance.journalist("dan", classic())
    with hybrid_instance.db.transaction() as repos:
        repos.users.set_disabled(dan, True)
    assert hybrid_instance.services.recipients.switch_blockers() == [ORGANISATION, "ann"]
    hybrid_instance.organisation(HYBRID_A)
    assert hybrid_instance.services.recipients.switch_blockers() == ["ann"]


def test_classic_instance_has_no_switch_blockers(classic_instance: Instance) -> None:
    """A classic instance never lacks a key of its kind because of hybrid ones waiting."""
    classic_instance.organisation(HYBRID_A)
    classic_instance.journalist("ann", HYBRID_B)
    assert classic_instance.services.recipients.switch_blockers() == []


def test_check_switch_refuses_naming_the_setting_and_who(hybrid_instance: Instance) -> None:
    """What `serve` runs at start: a ConfigError naming crypto.post_quantum and the account left
    without a hybrid key; none once everyone has one."""
    hybrid_instance.journalist("ann", classic())
    with pytest.raises(ConfigError, match=r"post_quantum = true.*: ann\."):
        hybrid_instance.services.recipients.check_switch()
    hybrid_instance.journalist("bob", HYBRID_B)
    with hybrid_instance.db.transaction() as repos:
        user = repos.users.by_username("ann")
        assert user is not None
        repos.user_recipients.add(user.id, HYBRID_A, "new laptop")
    hybrid_instance.services.recipients.check_switch()
