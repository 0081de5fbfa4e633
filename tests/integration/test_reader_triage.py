"""Triage from `sealdrop reader` against a real server: `assign`, `label`, and `list`/`sources`
showing assignees and labels and hiding spam unless --all; a colleague's triage arrives by sync.

The reader commands run in this process (typer's CliRunner) against the server's own process:
each would otherwise cost a Python start-up. One server and one reader serve the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support_api import Account, Api, cli_account, new_source, start_instance
from support_http import run_cli
from support_light_identity import light_identity_kdf
from support_reader_cli import init_arguments
from typer.testing import CliRunner, Result

from sealdrop.cli.main import app
from sealdrop.reader.profile import Profile
from sealdrop.reader.reader import Reader
from sealdrop.testing import ServerProcess

IDENTITY_PASSPHRASE = "correct horse battery staple triage"


@dataclass
class Desk:
    server: ServerProcess
    data_dir: Path
    colleague: Api  # "editor", over the API
    identity_file: Path  # the reader identity's passphrase

    def run(self, *args: Any, ok: bool = True) -> Result:
        """`sealdrop reader ARGS --data-dir …`; with ``ok``, fail the test unless it succeeds."""
        argv = ["reader", *[str(a) for a in args], "--data-dir", str(self.data_dir)]
        result = CliRunner().invoke(app, argv, env={"NO_COLOR": "1", "COLUMNS": "250"})
        if ok:
            assert result.exit_code == 0, f"{argv}: {result.output}{result.exception!r}"
        return result

    def listed(self, *args: str) -> dict[str, dict[str, Any]]:
        lines = self.run("list", "--json", *args).stdout.splitlines()
        return {entry["id"]: entry for entry in map(json.loads, lines)}

    def new_source(self) -> str:
        """A source that wrote, synced here; its id."""
        new_source(self.server, "a tip")
        source_id = str(self.colleague.latest_source()["id"])
        self.run("sync")
        return source_id


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """A server; "reporter" with a reader set up; "editor", a colleague on the API; "leaver",
    disabled."""
    root = tmp_path_factory.mktemp("reader-triage")
    instance, server = start_instance(root)
    try:
        reporter = cli_account(instance, "reporter")
        editor: Account = cli_account(instance, "editor")
        cli_account(instance, "leaver")
        run_cli("user", "disable", instance, "leaver")
        secrets = root / "secrets"
        secrets.mkdir(mode=0o700)
        (secrets / "identity").write_text(IDENTITY_PASSPHRASE + "\n")
        (secrets / "account").write_text(reporter.passphrase + "\n")
        colleague = Api(server)
        colleague = colleague.as_(colleague.login(editor))
        setup = Desk(server, root / "reader-data", colleague, secrets / "identity")
        with light_identity_kdf():  # a real identity, a light scrypt: support_light_identity
            setup.run(
                *init_arguments(server, "reporter", secrets / "identity", secrets / "account"),
                "--totp",
                reporter.fresh_code(),
            )
        yield setup
    finally:
        server.stop()


def test_assign_to_a_colleague_then_to_nobody(desk: Desk) -> None:
    """`reader assign SOURCE USERNAME` assigns it on the server (the colleague sees it) and
    here (`list` shows it); `--nobody` undoes it."""
    source_id = desk.new_source()
    printed = desk.run("assign", source_id, "editor").stdout
    assert "is assigned to editor." in printed
    assert desk.colleague.source(source_id)["assignee"] == "editor"
    assert desk.listed()[source_id]["assignee"] == "editor"
    table = desk.run("sources").stdout
    line = next(row for row in table.splitlines() if source_id in row)
    assert "editor" in line

    assert "is assigned to nobody." in desk.run("assign", source_id, "--nobody").stdout
    assert desk.colleague.source(source_id)["assignee"] is None
    assert desk.listed()[source_id]["assignee"] is None


def test_assign_to_a_disabled_account_says_why_and_changes_nothing(desk: Desk) -> None:
    """The server's 422 reaches the journalist as one line; the source stays unassigned."""
    source_id = desk.new_source()
    result = desk.run("assign", source_id, "leaver", ok=False)
    assert result.exit_code == 1
    assert "no enabled account has this username" in result.output
    assert desk.colleague.source(source_id)["assignee"] is None
    both = desk.run("assign", source_id, "editor", "--nobody", ok=False)
    assert both.exit_code == 2  # a USERNAME or --nobody, not both


def test_spam_is_hidden_from_the_list_unless_all(desk: Desk) -> None:
    """`reader label --add spam` hides the source from `list` and `sources`; `--all` shows it
    with its labels; removing the label (in any case) brings it back."""
    source_id = desk.new_source()
    printed = desk.run("label", source_id, "--add", "spam", "--add", "follow up").stdout
    assert "follow up, spam" in printed
    assert desk.colleague.source(source_id)["labels"] == ["follow up", "spam"]
    assert source_id not in desk.listed()
    assert source_id not in desk.run("sources").stdout
    assert desk.listed("--all")[source_id]["labels"] == ["follow up", "spam"]
    line = next(row for row in desk.run("list", "--all").stdout.splitlines() if source_id in row)
    assert "follow up, spam" in line

    desk.run("label", source_id, "--remove", "SPAM")
    assert desk.listed()[source_id]["labels"] == ["follow up"]


def test_show_names_the_assignee_and_the_labels(desk: Desk) -> None:
    """`reader show` says under the source's name whom it is assigned to and its labels, with
    invisible characters from the server shown as codes."""
    source_id = desk.new_source()
    desk.run("assign", source_id, "editor")
    desk.run("label", source_id, "--add", "follow up", "--add", "legal")
    shown = desk.run("show", source_id, "--identity-passphrase-file", desk.identity_file).stdout
    assert shown.splitlines()[1] == "assigned to editor · labels: follow up, legal"


def test_a_bad_label_is_refused_with_the_servers_reason(desk: Desk) -> None:
    """A label over 32 characters: the server's rule is printed, nothing changes."""
    source_id = desk.new_source()
    result = desk.run("label", source_id, "--add", "x" * 33, ok=False)
    assert result.exit_code == 1
    assert "labels are 1-32 characters" in result.output
    assert desk.colleague.source(source_id)["labels"] == []


def test_labels_start_from_the_servers_set_and_sync_brings_a_colleagues_triage(
    desk: Desk,
) -> None:
    """A colleague's label added since the last sync is kept when this reader adds one; a
    colleague's assignment and labels arrive here with `reader sync`."""
    source_id = desk.new_source()
    desk.colleague.ok("PUT", f"/sources/{source_id}/labels", json={"labels": ["legal"]})
    desk.run("label", source_id, "--add", "Urgent")
    assert desk.colleague.source(source_id)["labels"] == ["legal", "Urgent"]

    desk.colleague.ok("PUT", f"/sources/{source_id}/assignee", json={"username": "reporter"})
    desk.colleague.ok("PUT", f"/sources/{source_id}/labels", json={"labels": ["checked"]})
    desk.run("sync")
    entry = desk.listed()[source_id]
    assert (entry["assignee"], entry["labels"]) == ("reporter", ["checked"])


def test_journalists_lists_the_accounts_a_source_can_be_assigned_to(desk: Desk) -> None:
    """The facade's journalists(): the enabled accounts, from the server."""
    with Reader.open(Profile(desk.data_dir)) as reader:
        assert reader.journalists() == ["editor", "reporter"]


def test_hold_puts_a_source_on_hold_and_off(desk: Desk) -> None:
    """`reader hold SOURCE` puts it on hold on the server (a colleague sees it), `list --json`
    and `show` say so; `--off` takes it off; a colleague's hold arrives with `reader sync`."""
    source_id = desk.new_source()
    assert "is on hold: retention keeps it." in desk.run("hold", source_id).stdout
    assert desk.colleague.source(source_id)["hold"] is True
    assert desk.listed()[source_id]["hold"] is True
    shown = desk.run("show", source_id, "--identity-passphrase-file", desk.identity_file).stdout
    assert shown.splitlines()[1] == "on hold"

    assert "is not on hold." in desk.run("hold", source_id, "--off").stdout
    assert desk.colleague.source(source_id)["hold"] is False
    assert desk.listed()[source_id]["hold"] is False

    desk.colleague.ok("PUT", f"/sources/{source_id}/hold", json={"hold": True})
    desk.run("sync")
    assert desk.listed()[source_id]["hold"] is True
