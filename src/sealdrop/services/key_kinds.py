"""The instance's key-kind policy (``crypto.post_quantum``), decided once.

An instance is either classic (X25519, ``age1…``) or post-quantum (hybrid ML-KEM-768 + X25519,
``age1pq1…``), never both in one file: a file encrypted to a hybrid and a classic key opens with
the classic one, which a quantum computer breaks, so the hybrid stanza would protect nothing
(the age format forbids the mix for that reason). The rule:

* ``recipients.encryption_keys`` hands out only keys of the instance's kind;
* ``check_new_key`` refuses a classic key on a post-quantum instance (there is no way back to
  weaker keys without the operator changing the setting). A hybrid key on a classic instance is
  accepted and *waits*: it is never encrypted to until the switch, so it weakens nothing, and it
  lets every journalist and the organisation register their new keys before the switch instead
  of during an outage;
* ``switch_blockers`` says who would stop receiving submissions if the instance were
  post-quantum now (``serve`` refuses to start while there is anyone).
"""

from __future__ import annotations

from sealdrop.errors import WrongKeyKind
from sealdrop.storage.interfaces import Repositories

# The Bech32 human-readable part of an age hybrid recipient is "age1pq", then the separator "1".
# "1" is not in the Bech32 data alphabet, so no X25519 key ("age" + "1" + data) starts like this.
_HYBRID_PREFIX = "age1pq1"
ORGANISATION = "the organisation"


def is_hybrid(public_key: str) -> bool:
    """Whether a stored (canonical) public key is a post-quantum hybrid ``age1pq1…`` key."""
    return public_key.startswith(_HYBRID_PREFIX)


def kind_name(post_quantum: bool) -> str:
    return "post-quantum (age1pq1…)" if post_quantum else "classic (age1…)"


def check_new_key(public_key: str, post_quantum: bool) -> None:
    """Refuse a key the instance must never encrypt to: a classic key on a post-quantum
    instance (WrongKeyKind, saying what to do). A hybrid key on a classic instance passes and
    waits for the switch (see the module's docstring)."""
    if post_quantum and not is_hybrid(public_key):
        raise WrongKeyKind(
            "this instance is post-quantum (crypto.post_quantum = true) and takes only hybrid "
            "age1pq1… keys, never a classic age1… key beside them: make one with `sealdrop "
            "keygen --pq` (organisation keys) or `sealdrop reader init` (reader devices)"
        )


def waits_for_switch(public_key: str, post_quantum: bool) -> bool:
    """A registered key that is not encrypted to because it is of the other kind."""
    return is_hybrid(public_key) != post_quantum


def switch_blockers(repos: Repositories, post_quantum: bool) -> list[str]:
    """Who has keys but none of the instance's kind, and so would silently stop receiving new
    submissions: ``ORGANISATION`` and usernames of enabled accounts. Empty on a classic
    instance (hybrid keys there only wait; classic keys are never missing)."""
    if not post_quantum:
        return []
    blockers: list[str] = []
    organisation = [r.public_key for r in repos.recipients.list()]
    if organisation and not any(is_hybrid(k) for k in organisation):
        blockers.append(ORGANISATION)
    for user in repos.users.list():
        keys = [r.public_key for r in repos.user_recipients.for_user(user.id)]
        if not user.disabled and keys and not any(is_hybrid(k) for k in keys):
            blockers.append(user.username)
    return blockers
