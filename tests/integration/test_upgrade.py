"""Upgrading an instance made by an earlier release (commit ac179b6, migration 0003; the fixture
under tests/fixtures/upgrade_ac179b6, made by that release's own code), step by step as
docs/operator.md's "Upgrading" says, on SQLite and PostgreSQL: its source logs in with the
codename and reads the reply, its journalist logs in through the API, what it stored decrypts
with the organisation's identity, and the tables of the later migrations work."""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support_api import Account, Api, age_decrypt
from support_http import BOTH_BACKENDS, Source, cli_in_process, setup_cli, start_server

from sealdrop.cli.main import app
from sealdrop.storage import migrations

FIXTURE = Path(__file__).parent.parent / "fixtures" / "upgrade_ac179b6"
DATA: dict[str, Any] = json.loads((FIXTURE / "data.json").read_text())
ORG_IDENTITY = FIXTURE / "org-identity.txt"
HEAD = migrations.head_revision()
BACKUP_MISSING = (
    "step 1 of docs/operator.md's upgrade procedure, `sealdrop backup DIR --to FILE --recipient "
    "age1…`, does not exist in this checkout yet (it is being built on branch ops-backup)"
)


def _has_backup_command() -> bool:
    return any(
        (c.name or getattr(c.callback, "__name__", "")) == "backup" for c in app.registered_commands
    )


def _old_instance(tmp_path: Path, backend: str) -> Path:
    """The instance as the earlier release left it on its server: the fixture's folder, with
    the modes that release gave it (git keeps none), and on PostgreSQL its database loaded from
    the fixture's pg_dump into the test server's empty database."""
    instance = tmp_path / "instance"
    shutil.copytree(FIXTURE / backend / "instance", instance)
    for path in [instance, *instance.rglob("*")]:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    if backend == "postgres":
        psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
        url = os.environ["SEALDROP_DATABASE_URL"].replace("+psycopg", "")
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
            input=(FIXTURE / "postgres" / "database.sql").read_bytes(),
            check=True,
            capture_output=True,
        )
    return instance


def _at_migration(instance: Path) -> str:
    """The database's migration, as `sealdrop migrate --dry-run` reports it."""
    out = setup_cli("migrate", instance, "--dry-run")
    match = re.search(r"^Database at migration: (\S+)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def _backup(instance: Path, to: Path) -> None:
    """Step 1: `sealdrop backup`, to the organisation's offline key; it leaves the old
    database as it was (nothing migrated), and the organisation's identity opens the file."""
    result = cli_in_process(
        "backup", instance, "--to", to, "--recipient", DATA["org_recipient"], env={"NO_COLOR": "1"}
    )
    assert result.returncode == 0, result.stderr
    assert _at_migration(instance) == DATA["migration"]
    assert age_decrypt(ORG_IDENTITY, to.read_bytes())


def test_upgrade_step_backup_leaves_the_old_instance_as_it_was(tmp_path: Path) -> None:
    """Step 1 of the procedure on the earlier release's instance: the backup is made, opens
    with the organisation's key, and the database stays at the old migration."""
    if not _has_backup_command():
        pytest.skip(BACKUP_MISSING)
    _backup(_old_instance(tmp_path, "sqlite"), tmp_path / "before-upgrade.age")


@pytest.mark.slow
@BOTH_BACKENDS
def test_upgrade_from_ac179b6_following_the_operator_procedure(
    tmp_path: Path, backend: str
) -> None:
    """docs/operator.md's steps on the ac179b6 instance (backup, stop, install, migrate, start):
    migrate shows 0003 and what runs, then runs it; the started server lets the source log in
    with its codename and read the reply, and the journalist log in; every stored item decrypts
    with the organisation identity; triage (0005), notices (0006) and new submissions work."""
    data = DATA[backend]
    instance = _old_instance(tmp_path, backend)
    # 1. Back up (while the old release serves). Skipped until the command exists: the test of
    #    that step reports the skip.
    if _has_backup_command():
        _backup(instance, tmp_path / "before-upgrade.age")
    # 2. Stop serve: nothing serves the copied folder. 3. Install: this checkout is the release.
    # 4. Migrate: first what would run, then run it.
    dry = setup_cli("migrate", instance, "--dry-run")
    assert "Database at migration: 0003" in dry
    assert f"This version's newest: {HEAD}" in dry
    assert "  0004  " in dry
    assert "Dry run: nothing was changed." in dry
    done = setup_cli("migrate", instance)
    assert f"Done: the database is at migration {HEAD}." in done
    # 5. Start.
    (tmp_path / "server-tmp").mkdir()
    server = start_server(instance, tmp_path / "server-tmp")
    try:
        status = setup_cli("status", instance)
        assert "Accepting submissions: yes" in status
        assert "Journalist accounts: 1" in status
        _check_upgraded(server.url, server, instance, data)
    finally:
        server.stop()


def _check_upgraded(url: str, server: Any, instance: Path, data: dict[str, Any]) -> None:
    # The source: its codename still derives its keys (same salt, same KDF), its reply reads.
    source = Source(url)
    login = source.login(data["codename"])
    assert login.status_code == 303, login.text
    conversation = source.http.get("/conversation")
    assert conversation.status_code == 200
    assert DATA["reply"] in conversation.text

    # The journalist: passphrase and TOTP as handed over under the earlier release.
    who = data["journalist"]
    account = Account(who["username"], who["passphrase"], who["totp_secret"], id="")
    api = Api(server)
    api = api.as_(api.login(account))
    [listed] = api.all_sources()
    assert listed["id"] == data["source_id"]
    items = api.submissions(listed["id"])
    assert sorted(i["kind"] for i in items) == ["file", "message"]
    opened = {
        i["kind"]: age_decrypt(ORG_IDENTITY, api.get(f"/submissions/{i['id']}/content").content)
        for i in items
    }
    assert opened["message"].decode() == DATA["message"]
    assert opened["file"].decode() == DATA["file"]["content"]
    [file_item] = [i for i in items if i["kind"] == "file"]
    metadata = age_decrypt(ORG_IDENTITY, base64.b64decode(file_item["metadata"]))
    assert DATA["file"]["name"].encode() in metadata
    [reply] = api.replies(listed["id"])
    content = api.get(f"/replies/{reply['id']}/content").content
    assert age_decrypt(ORG_IDENTITY, content).decode() == DATA["reply"]

    # 0005, triage: assign the source and label it.
    api.ok("PUT", f"/sources/{listed['id']}/assignee", json={"username": who["username"]})
    api.ok("PUT", f"/sources/{listed['id']}/labels", json={"labels": ["upgraded"]})
    after = api.source(listed["id"])
    assert (after["assignee"], after["labels"]) == (who["username"], ["upgraded"])
    # 0006, notices: the account's notices go to an address.
    setup_cli("user", "notify", instance, who["username"], "--email", "desk@example.org")
    assert api.ok("GET", "/me/notifications")["email"] == "desk@example.org"
    # 0004, sessions: the source's new session works for a new message, after the old ones.
    sent = source.submit("after the upgrade")
    assert sent.status_code == 303, sent.text
    newer = api.submissions(listed["id"])
    assert len(newer) == 3
    assert max(i["seq"] for i in newer) > max(i["seq"] for i in [*items, reply])
