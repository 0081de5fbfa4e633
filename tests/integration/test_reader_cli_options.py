"""`sealdrop reader`'s options, against a real server: --data-dir before the command is the
folder every command uses (and two different ones are refused), `reader init` pointed at the
source listener, and `reader list` as JSON and in a narrow terminal.

The commands run in this process (support_reader_cli), with HOME an empty folder where it
matters; `reader ui` runs as a process. One server and one reader data folder serve the module.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from support_api import new_source
from support_http import cli_in_process
from support_reader_cli import (
    CLI_ENV,
    ReaderSetup,
    file_items,
    reader_set_up,
    synced_source,
)

from sealdrop.cli.reader import reader_app
from sealdrop.reader.store import LocalSource
from sealdrop.testing import sealdrop_command

# The module sets up a server and a reader.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-cli-options"))


def test_list_json_and_whole_ids_in_a_narrow_terminal(reader: ReaderSetup) -> None:
    """`reader list --json` prints one JSON object per source; the table never cuts an id, even
    at 80 columns."""
    mine = synced_source(reader, "listed")
    lines = reader.run("list", "--json").stdout.splitlines()
    found = [json.loads(line) for line in lines]
    (entry,) = [e for e in found if e["id"] == mine.id]
    assert entry == {
        "id": mine.id,
        "pseudonym": mine.pseudonym,
        "unread": 1,
        "items": 1,
        "starred": False,
        "assignee": None,
        "labels": [],
        "hold": False,
    }
    narrow = reader.run("list", env={"COLUMNS": "80"}).stdout
    for source in found:
        assert source["id"] in narrow, narrow


def test_init_against_the_source_listener_says_which_url_to_give(
    reader: ReaderSetup, tmp_path: Path
) -> None:
    """`reader init --server` with the source listener's URL says it is not a Sealdrop journalist
    API and which URL is expected, before any passphrase is asked for or sent; nothing is set
    up."""
    data = tmp_path / "wrong-server"
    result = cli_in_process(
        "reader", "init", "--server", reader.server.url, "--username", "reporter",
        "--data-dir", data,
        "--identity-passphrase-file", reader.identity_passphrase_file,
        "--passphrase-file", reader.account_passphrase_file, "--totp", "000000",
        env=CLI_ENV,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    error = " ".join(result.stderr.split())
    assert "is not a Sealdrop journalist API" in error, error
    assert "http://127.0.0.1:8081" in error, error
    assert "onion" in error, error
    assert "Traceback" not in error
    assert not (data / "config.json").exists()
    assert not (data / "identity.age").exists()


@pytest.fixture(scope="module")
def file_source(reader: ReaderSetup) -> tuple[LocalSource, str]:
    """A synced source that sent a message and a file, and the file item's id."""
    source, _ = new_source(
        reader.server, "for every command", files=[("f.txt", b"f\n", "text/plain")]
    )
    source.http.close()
    reader.run("sync")
    mine = reader.newest_source()
    ((item_id, _),) = file_items(reader.unlocked("show", mine.id).stdout).values()
    return mine, item_id


def group_option_case(
    reader: ReaderSetup, mine: LocalSource, item_id: str, tmp: Path, command: str
) -> tuple[list[str | Path], int, str]:
    """(arguments, exit code, text its output must hold) for ``command``: it does its work in the
    data folder, or fails in a way that shows it found that folder."""
    unlock: list[str | Path] = ["--identity-passphrase-file", reader.identity_passphrase_file]
    # Only for login: every fresh code moves the account's used TOTP step on.
    code = reader.journalist.fresh_code() if command == "login" else ""
    (tmp / "to").mkdir()
    cases: dict[str, tuple[list[str | Path], int, str]] = {
        "init": (["--server", reader.server.api_url, "--username", "x"], 1, "already set up in"),
        "login": (
            ["--passphrase-file", reader.account_passphrase_file, "--totp", code],
            0,
            "Logged",
        ),
        "sync": ([], 0, "source(s) updated"),
        "list": ([], 0, mine.id),
        "sources": ([], 0, mine.id),
        "assign": ([mine.id, "--nobody"], 0, "assigned to nobody"),
        "label": ([mine.id, "--add", "checked"], 0, "checked"),
        "hold": ([mine.id, "--off"], 0, "is not on hold"),
        "show": ([mine.id, *unlock], 0, "for every command"),
        "export": ([item_id, "--to", tmp / "to", "--no-strip", *unlock], 0, "Exported f.txt"),
        "reply": ([mine.id, "--message", "a reply"], 0, "sent to"),
        "star": ([mine.id], 0, "Starred"),
        "seen": ([mine.id], 0, "marked seen"),
        "delete": ([mine.id], 1, "pass --yes"),
    }
    return cases[command]


READER_COMMANDS = sorted(typer.main.get_command(reader_app).commands)  # type: ignore[attr-defined]
CASE_NAMES = ["init", "login", "sync", "list", "show", "export", "reply", "star", "seen", "delete"]
CASE_NAMES += ["sources", "assign", "label", "hold"]


def test_the_data_dir_test_covers_every_reader_command() -> None:
    """Every `sealdrop reader` command is in the --data-dir test below (ui is run apart)."""
    assert sorted(["ui", *CASE_NAMES]) == READER_COMMANDS


def test_two_different_data_dirs_are_refused(reader: ReaderSetup, tmp_path: Path) -> None:
    """--data-dir before and after the command naming two folders is an error, not a guess."""
    other = tmp_path / "other"
    result = cli_in_process(
        "reader", "--data-dir", other, "list", "--data-dir", reader.data_dir, env=CLI_ENV
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "given twice" in result.stderr
    assert not other.exists()


@pytest.mark.parametrize("command", READER_COMMANDS)
def test_data_dir_before_the_command_is_the_folder_every_command_uses(
    reader: ReaderSetup, file_source: tuple[LocalSource, str], tmp_path: Path, command: str
) -> None:
    """`sealdrop reader --data-dir DIR COMMAND` uses DIR for every command: with HOME an empty
    folder, each works on DIR (or refuses for a reason found in DIR) and writes nothing in HOME.
    (`ui` serves until stopped: it runs as a process; the others in this process, where the
    default folder, ~/.local/share/sealdrop-reader, is expanded with HOME when a command runs.)"""
    home = tmp_path / "home"
    home.mkdir()
    group: list[str | Path] = ["reader", "--data-dir", reader.data_dir, command]
    if command == "ui":
        env = {k: v for k, v in os.environ.items() if k != "SEALDROP_READER_DIR"}
        env.update(CLI_ENV, HOME=str(home))
        process = subprocess.Popen(
            sealdrop_command(*group), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert process.stderr is not None
            assert "?token=" in line, line + (process.stderr.read() if process.poll() else "")
        finally:
            process.terminate()
            process.wait(timeout=30)
    else:
        mine, item_id = file_source
        args, code, expected = group_option_case(reader, mine, item_id, tmp_path, command)
        result = cli_in_process(
            *group, *args, env={**CLI_ENV, "HOME": str(home), "SEALDROP_READER_DIR": None}
        )
        assert result.returncode == code, result.stdout + result.stderr
        assert expected in result.stdout + result.stderr, result.stdout + result.stderr
        assert str(reader.data_dir) in result.stderr or command != "init"
    assert sorted(home.rglob("*")) == []
