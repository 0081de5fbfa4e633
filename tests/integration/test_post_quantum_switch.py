"""Switching a real instance from X25519 to post-quantum hybrid keys, as operator.md's procedure
says: new keys registered first (they wait), `serve` refuses the switch while an account would
be left without a hybrid key, then new items are hybrid only, old items stay readable by the old
keys (and only by them), classic keys are refused, and a source's reply key becomes hybrid at its
next login, so that a journalist's hybrid reply reaches the source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support_api import cli_account, instance_database, new_source, start_instance
from support_http import Source, cli_in_process, setup_cli
from support_light_identity import light_identity_kdf
from support_reader_cli import CLI_ENV, ReaderSetup, init_arguments, item_ids, reader_init

from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.testing import ServerProcess


def switch(instance: Path) -> None:
    """Step 3 of the procedure: `post_quantum = true` under [crypto] in sealdrop.toml."""
    toml = instance / "sealdrop.toml"
    text = toml.read_text()
    assert "# post_quantum = false" in text  # as `sealdrop init` wrote it
    toml.write_text(text.replace("# post_quantum = false", "post_quantum = true"))


def restart(old: ServerProcess) -> ServerProcess:
    """``sealdrop serve`` again on the same ports (the readers' configuration names them)."""
    old.stop()
    server = ServerProcess(old.instance)
    server.port, server.api_port, server.url, server.api_url = (
        old.port,
        old.api_port,
        old.url,
        old.api_url,
    )
    return server.start()


def stored_ciphertexts(instance: Path, source_id: str) -> list[bytes]:
    """The source's submissions' blobs (ciphertext), oldest first."""
    db = instance_database(instance)
    try:
        with db.transaction(read_only=True) as repos:
            keys = [r.blob_key for r in repos.submissions.for_source(source_id)]  # type: ignore[arg-type]
    finally:
        db.close()
    blobs = FilesystemBlobStore(instance / "store")
    out = []
    for key in keys:
        with blobs.open(key) as blob:
            out.append(blob.read())
    return out


def stanzas(ciphertext: bytes) -> set[str]:
    header = ciphertext.split(b"\n--- ", 1)[0]
    # Without pyrage's random "grease" stanzas (they open nothing).
    found = {line.split()[1].decode() for line in header.splitlines() if line.startswith(b"-> ")}
    return {kind for kind in found if not kind.endswith("-grease")}


def opens(ciphertext: bytes, identity: Identity) -> bool:
    try:
        envelope.decrypt_bytes(ciphertext, [identity])
    except Exception:
        return False
    return True


def test_switching_an_instance_to_post_quantum_keys(tmp_path: Path) -> None:
    """The whole procedure on one instance, with a classic and a hybrid reader of one journalist,
    classic and hybrid organisation keys, and a source from before the switch."""
    instance, server = start_instance(tmp_path)
    try:
        # -- classic instance ---------------------------------------------------------------
        old = reader_init(instance, server, "reporter", tmp_path)  # follows the instance
        assert "age1pq1" not in (old.data_dir / "identity.pub").read_text()
        org_classic, org_hybrid = generate_identity(), generate_identity(post_quantum=True)
        setup_cli("recipients", "add", instance, str(recipient_of(org_classic)))
        source, codename = new_source(server, "before the switch")
        source_id = instance_source_id(instance)

        # Step 1: the new keys are registered first, and wait.
        added = cli_in_process(
            "recipients", "add", instance, str(recipient_of(org_hybrid)), env=CLI_ENV
        )
        assert added.returncode == 0, added.stderr
        assert "waits" in added.stderr
        pq = ReaderSetup(
            instance,
            server,
            old.journalist,
            tmp_path / "pq-reader",
            old.account_passphrase_file,
            old.identity_passphrase_file,
            tmp_path,
        )
        with light_identity_kdf():  # a real identity, a light scrypt: support_light_identity
            init = pq.run(
                *init_arguments(
                    server,
                    old.journalist.username,
                    pq.identity_passphrase_file,
                    pq.account_passphrase_file,
                ),
                "--pq",
                "--totp",
                old.journalist.fresh_code(),
            )
        assert "waits" in " ".join(init.stderr.split())
        assert (pq.data_dir / "identity.pub").read_text().startswith("age1pq1")
        assert source.submit("still classic").status_code == 303
        [before, still] = stored_ciphertexts(instance, source_id)
        assert stanzas(still) == {"X25519"}  # the waiting hybrid keys are not used yet

        # A second journalist who registers no hybrid key.
        late_root = tmp_path / "late"
        late_root.mkdir()
        reader_init(instance, server, "late", late_root)
        server.stop()

        # -- step 3: the switch; refused while "late" would receive nothing ----------------
        switch(instance)
        with pytest.raises(RuntimeError, match=r"post_quantum = true.*late"):
            restart(server)
        setup_cli("user", "disable", instance, "late")
        server = restart(server)

        # -- post-quantum instance ----------------------------------------------------------
        refused = cli_in_process(
            "recipients", "add", instance, str(recipient_of(generate_identity())), env=CLI_ENV
        )
        assert refused.returncode == 1
        assert "post-quantum" in refused.stderr

        # A reply before the source logged in again cannot be sealed to its classic key.
        pq.run("sync")
        early = pq.run("reply", source_id, "--message", "too early", check=False)
        assert early.returncode != 0
        assert "not logged in since" in " ".join(early.stderr.split())

        again = Source(server.url)
        assert again.login(codename).status_code in (200, 303)
        assert again.submit("after the switch").status_code == 303
        [before, still, after] = stored_ciphertexts(instance, source_id)
        assert stanzas(after) == {"mlkem768x25519"}
        # Old items: the old keys still open them, the new ones do not; new items: the reverse.
        for old_item in (before, still):
            assert opens(old_item, org_classic)
            assert not opens(old_item, org_hybrid)
        assert opens(after, org_hybrid)
        assert not opens(after, org_classic)

        pq.run("sync")
        shown_pq = pq.unlocked("show", source_id).stdout
        assert "after the switch" in shown_pq
        assert "before the switch" not in shown_pq
        old.run("sync")
        shown_old = old.unlocked("show", source_id).stdout
        assert "before the switch" in shown_old
        assert "after the switch" not in shown_old

        # A reader set up now makes a hybrid key by default, and refuses --classic up front.
        newcomer_root = tmp_path / "newcomer"
        newcomer_root.mkdir()
        newcomer = reader_init(instance, server, "newcomer", newcomer_root)
        assert (newcomer.data_dir / "identity.pub").read_text().startswith("age1pq1")
        classic_root = tmp_path / "classic"
        classic_root.mkdir()
        refused_init = reader_init_with(instance, server, "classic", classic_root, "--classic")
        assert refused_init.returncode == 1
        assert "takes no classic" in " ".join(refused_init.stderr.split())
        assert not (classic_root / "reader-data" / "identity.age").exists()

        # The hybrid reader replies (to the source's new hybrid key); the source reads it.
        pq.run("reply", source_id, "--message", "a post-quantum reply")
        assert "a post-quantum reply" in again.http.get("/conversation").text
        # The old reader can still send one: sealed to the instance's (hybrid) keys only, never
        # to its own classic key, so it cannot read it back, and the source can.
        old.run("reply", source_id, "--message", "from the old laptop")
        assert "from the old laptop" in again.http.get("/conversation").text
        assert "a post-quantum reply" in item_ids(pq.unlocked("show", source_id).stdout)
    finally:
        server.stop()


def reader_init_with(
    instance: Path, server: ServerProcess, username: str, root: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """`reader init OPTIONS` for a new account (reader_init's steps, with extra options)."""
    journalist = cli_account(instance, username)
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "identity").write_text("correct horse battery staple reader\n")
    (secrets / "account").write_text(journalist.passphrase + "\n")
    setup = ReaderSetup(
        instance,
        server,
        journalist,
        root / "reader-data",
        secrets / "account",
        secrets / "identity",
        root,
    )
    return setup.run(
        *init_arguments(server, username, secrets / "identity", secrets / "account"),
        *options,
        "--totp",
        journalist.fresh_code(),
        check=False,
    )


def instance_source_id(instance: Path) -> str:
    db = instance_database(instance)
    try:
        with db.transaction(read_only=True) as repos:
            [source] = repos.sources.page(after_version=0, limit=10)
    finally:
        db.close()
    return source.id
