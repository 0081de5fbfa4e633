"""Who a submission is encrypted to is decided once (``recipients.encryption_keys``): the intake,
``accepting``, the conversation page, the API's ``GET /keys`` and ``sealdrop status`` (both
through ``recipient_keys``) give the same answer, on a real instance."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealdrop.config import load_settings
from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.errors import DecryptionError, NotAcceptingSubmissions
from sealdrop.ids import SourceId, UserId, new_id
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.recipients import encryption_keys
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase


def public(identity: Identity) -> str:
    return str(recipient_of(identity))


@dataclass
class Instance:
    services: Services
    db: SqlDatabase
    blobs: FilesystemBlobStore
    source: SourceId

    def journalist(self, name: str, identity: Identity) -> UserId:
        """An account with one reader device key."""
        with self.db.transaction() as repos:
            user = repos.users.add(name, "hash", "", "journalist")
            repos.user_recipients.add(user.id, public(identity), "laptop")
        return user.id

    def disable(self, user_id: UserId) -> None:
        with self.db.transaction() as repos:
            repos.users.set_disabled(user_id, True)

    def keys(self) -> list[str]:
        with self.db.transaction(read_only=True) as repos:
            return encryption_keys(repos, post_quantum=False)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    settings = load_settings(init_instance(tmp_path / "instance"), env={})
    services = build_services(settings)
    db = SqlDatabase(settings.database_url)
    with db.transaction() as repos:
        source = repos.sources.add(new_id().encode(), "age1placeholder", None, "s", None).id
    yield Instance(services, db, FilesystemBlobStore(settings.blob_dir), source)
    services.close()
    db.close()


def test_organisation_and_enabled_accounts_keys_each_once(instance: Instance) -> None:
    """Organisation recipients first, then enabled accounts' device keys; a disabled account's
    key is left out; every answer (GET /keys, status, accepting, the page) is that list."""
    organisation, ann, bob = generate_identity(), generate_identity(), generate_identity()
    instance.services.recipients.add(public(organisation), "offline")
    instance.journalist("ann", ann)
    instance.disable(instance.journalist("bob", bob))
    assert instance.keys() == [public(organisation), public(ann)]
    assert instance.services.submissions.recipient_keys() == instance.keys()
    assert instance.services.submissions.accepting() is True
    assert instance.services.submissions.overview(instance.source).accepting is True


def test_the_intake_encrypts_to_exactly_those_keys(instance: Instance) -> None:
    """What is stored opens with each listed key and not with a disabled account's key."""
    organisation, ann, bob = generate_identity(), generate_identity(), generate_identity()
    instance.services.recipients.add(public(organisation), "offline")
    instance.journalist("ann", ann)
    instance.disable(instance.journalist("bob", bob))
    with instance.services.submissions.intake(instance.source) as submission:
        submission.add_message(io.BytesIO(b"for the listed keys"))
        submission.commit()
    with instance.db.transaction() as repos:
        [row] = repos.submissions.for_source(instance.source)
    with instance.blobs.open(row.blob_key) as blob:
        ciphertext = blob.read()
    for identity in (organisation, ann):
        assert envelope.decrypt_bytes(ciphertext, [identity]) == b"for the listed keys"
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(ciphertext, [bob])


def test_only_disabled_accounts_keys_is_nobody(instance: Instance) -> None:
    """With nothing but a disabled account's key there is nobody to encrypt to: GET /keys is
    empty, intake is off on the page and in `accepting`, and the intake refuses."""
    instance.disable(instance.journalist("bob", generate_identity()))
    assert instance.keys() == []
    assert instance.services.submissions.recipient_keys() == []
    assert instance.services.submissions.accepting() is False
    assert instance.services.submissions.overview(instance.source).accepting is False
    with pytest.raises(NotAcceptingSubmissions):
        instance.services.submissions.intake(instance.source)
