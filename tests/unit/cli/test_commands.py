"""The `sealdrop` commands an operator types: version, init's organisation name, status (whom
new submissions are encrypted to, the demo key above all), JSON output, removing a recipient,
and tables whose ids can be copied whole."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sealdrop import __version__
from sealdrop.cli.demo import prepare_demo
from sealdrop.cli.main import app
from sealdrop.config import load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.services.container import build_services
from sealdrop.services.demo import IDENTITY_FILE


def _key() -> str:
    return str(recipient_of(generate_identity()))


def _run(*args: object, columns: int = 200) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [str(a) for a in args], env={"COLUMNS": str(columns), "NO_COLOR": "1"}
    )
    return result.exit_code, result.stdout, result.stderr


def _json_lines(*args: object) -> list[dict[str, str]]:
    code, out, err = _run(*args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    code, _, err = _run("init", path)
    assert code == 0, err
    return path


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, str]:
    """A demo instance as `sealdrop demo` prepares it, and what it printed."""
    out = io.StringIO()
    instance = prepare_demo(tmp_path / "demo", "127.0.0.1", 8080, Console(file=out, width=80))
    return instance, out.getvalue()


def test_version_prints_the_package_version() -> None:
    """`sealdrop --version` prints the version and exits 0."""
    code, out, _ = _run("--version")
    assert code == 0
    assert out.strip() == f"sealdrop {__version__}"


def test_init_org_name_sets_the_name_sources_and_authenticators_see(tmp_path: Path) -> None:
    """`init --org-name` writes [source] organisation_name (whitespace collapsed): the pages'
    name and the TOTP issuer are the organisation's, not "Sealdrop"."""
    code, _, err = _run("init", tmp_path / "i", "--org-name", "  The   Daily Planet ")
    assert code == 0, err
    settings = load_settings(tmp_path / "i")
    assert settings.organisation_name == "The Daily Planet"
    services = build_services(settings)
    try:
        new = services.accounts.create("lois", "journalist", "test")
    finally:
        services.close()
    assert "issuer=Sealdrop%20%28The%20Daily%20Planet%29" in new.totp_uri


def test_init_without_org_name_says_how_to_set_it(tmp_path: Path) -> None:
    """Without --org-name, init says that sources will see "Sealdrop" and where to change it."""
    code, _, err = _run("init", tmp_path / "i")
    assert code == 0
    assert "organisation name 'Sealdrop'" in err
    assert "[source]" in err
    assert "--org-name" in err


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "evil\u202etxt", "a\x07b"])
def test_init_refuses_an_organisation_name_it_could_not_show(tmp_path: Path, name: str) -> None:
    """Empty, over-long, control or bidi-override names are refused, and no instance is made."""
    code, _, err = _run("init", tmp_path / "i", "--org-name", name)
    assert code == 1
    assert "error: the organisation name" in err
    assert not (tmp_path / "i").exists()


def test_demo_says_what_opens_items_sent_before_a_reader_device(demo: tuple[Path, str]) -> None:
    """The demo says that items submitted before a journalist's reader device is registered
    open only with the demo key, and how (age -d -i with the demo identity file)."""
    instance, printed = demo
    text = " ".join(printed.split())
    assert "before that can be read with the demo key alone" in text
    assert f"age -d -i {instance.parent / IDENTITY_FILE} BLOB" in text
    assert f"sealdrop submissions list {instance}" in text


def test_status_warns_when_only_the_demo_key_is_registered(demo: tuple[Path, str]) -> None:
    """On a fresh demo, status says that submissions are encrypted only to the demo key and
    how to register real keys; once a real key is added it says the demo key is still one."""
    instance, _ = demo
    code, out, _ = _run("status", instance)
    assert code == 0
    text = " ".join(out.split())
    assert "New submissions are encrypted to: 1 organisation recipient(s), 0 reader device" in text
    assert "encrypted only to the demo key" in text
    assert "sealdrop reader init" in text
    assert "sealdrop recipients add" in text
    assert json.loads(_run("status", instance, "--json")[1])["only_demo_key"] is True
    assert _run("recipients", "add", instance, _key(), "--name", "offline")[0] == 0
    code, out, _ = _run("status", instance)
    text = " ".join(out.split())
    assert "encrypted only to the demo key" not in text
    assert "One of them is the demo key" in text
    assert "recipients remove" in text


def test_status_counts_device_keys_and_warns_when_there_is_no_key(instance: Path) -> None:
    """status counts organisation recipients and reader device keys separately, and warns
    when there is nobody to encrypt to."""
    code, out, _ = _run("status", instance)
    assert code == 0
    assert "0 organisation recipient(s), 0 reader device key(s)" in out
    assert "Warning: there is no key to encrypt to" in " ".join(out.split())
    services = build_services(load_settings(instance))
    try:
        user = services.accounts.create("alice", "journalist", "test").user
        services.accounts.add_recipient(user.id, _key(), "laptop")
        services.accounts.add_recipient(user.id, _key(), "desktop")
    finally:
        services.close()
    _run("recipients", "add", instance, _key())
    info = json.loads(_run("status", instance, "--json")[1])
    assert (info["recipients"], info["device_keys"], info["accounts"]) == (1, 2, 1)
    assert info["accepting"] is True
    assert info["only_demo_key"] is False
    assert "no key to encrypt to" not in _run("status", instance)[1]


def test_recipients_remove_stops_encrypting_to_a_recipient(instance: Path) -> None:
    """`recipients remove DIR ID` removes it (audited as recipient.remove, like the API), says
    when no key is left, and an unknown id is one error line with exit 1."""
    _run("recipients", "add", instance, _key(), "--name", "desk")
    (record,) = _json_lines("recipients", "list", instance)
    code, _, err = _run("recipients", "remove", instance, record["id"])
    assert code == 0, err
    assert f"Removed recipient {record['id']}" in err
    assert "refuses submissions" in " ".join(err.split())  # rich wraps at the terminal's width
    assert _run("recipients", "list", instance, "--json")[1] == ""
    services = build_services(load_settings(instance))
    try:
        actions = [entry.action for entry in services.audit.page(None, 100)]
    finally:
        services.close()
    assert "recipient.remove" in actions
    code, _, err = _run("recipients", "remove", instance, record["id"])
    assert code == 1
    assert err.strip() == "error: no such recipient"


def test_access_list_json_prints_one_object_per_device(instance: Path) -> None:
    """`access list --json` prints one JSON object per authorized device (none here)."""
    code, out, err = _run("access", "list", instance, "--json")
    assert code == 0
    assert out == ""
    assert "No reader device is authorized" in err


def test_recipient_and_account_ids_are_whole_in_an_80_column_table(instance: Path) -> None:
    """At 80 columns (or piped), `recipients list` and `user list` print every id and key
    whole, so that it can be pasted into another command."""
    key = _key()
    _run("recipients", "add", instance, key, "--name", "Desk [bold]A[/] with a long name")
    (record,) = _json_lines("recipients", "list", instance)
    _, table, _ = _run("recipients", "list", instance, columns=80)
    assert record["id"] in table
    assert key in table
    assert "[bold]A[/]" in table  # names are shown as typed, not read as markup
    assert "…" not in table
    _run("user", "add", instance, "a-journalist-with-a-long-username")
    (user,) = _json_lines("user", "list", instance)
    _, table, _ = _run("user", "list", instance, columns=80)
    assert re.search(rf"\b{user['id']}\b", table)
    assert "a-journalist-with-a-long-username" in table


def test_recipients_list_says_which_keys_are_in_use(instance: Path) -> None:
    """On a classic instance a post-quantum key is listed with in_use false (it waits for the
    switch), an X25519 key with in_use true."""
    classic = _key()
    hybrid = str(recipient_of(generate_identity(post_quantum=True)))
    _run("recipients", "add", instance, classic)
    code, _, err = _run("recipients", "add", instance, hybrid)
    assert code == 0, err
    assert "waits" in err
    _, out, _ = _run("recipients", "list", instance, "--json")
    listed = {r["public_key"]: r["in_use"] for r in map(json.loads, out.splitlines())}
    assert listed == {classic: True, hybrid: False}
