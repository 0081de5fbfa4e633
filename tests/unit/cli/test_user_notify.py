"""`sealdrop user notify`: where an account's notices go, set by the operator; exactly one of
--email, --url, --off; an Apprise URL is never printed back, not even in an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import load_settings
from sealdrop.services.container import build_services
from sealdrop.services.notifications import NotificationView

TOKEN = "tk_0a1b2c3d4e5f"


def run(*args: object, allow_urls: bool = True) -> tuple[int, str]:
    env = {"COLUMNS": "200", "SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true" if allow_urls else "false"}
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    assert run("init", path)[0] == 0
    assert run("user", "add", path, "alice")[0] == 0
    return path


def stored(instance: Path) -> NotificationView:
    services = build_services(load_settings(instance))
    try:
        return services.notifications.get(services.accounts.by_username("alice").id)
    finally:
        services.close()


def test_notify_sets_email_then_an_apprise_url_then_off(instance: Path) -> None:
    """--email stores the address (in the instance's language; a warning says no relay is set),
    --url an Apprise URL with the language given, printed as its scheme only, and --off
    removes it."""
    code, out = run("user", "notify", instance, "alice", "--email", "alice@example.org")
    assert code == 0, out
    assert "alice@example.org" in out
    assert "No mail relay is set" in out  # this instance has no smtp_url
    assert "[notifications] smtp_url" in " ".join(out.split())  # the setting named, not eaten
    assert (stored(instance).channel, stored(instance).email) == ("email", "alice@example.org")

    code, out = run(
        "user", "notify", instance, "ALICE", "--url", f"ntfys://ntfy.example.org/{TOKEN}",
        "--lang", "fa",
    )  # fmt: skip
    assert code == 0, out
    assert TOKEN not in out
    assert "ntfys" in out
    view = stored(instance)
    assert (view.channel, view.url_scheme, view.language) == ("apprise", "ntfys", "fa")

    code, out = run("user", "notify", instance, "alice", "--off")
    assert code == 0, out
    assert stored(instance).channel == "off"


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--off", "--email", "a@example.org"],
        ["--email", "a@example.org", "--url", "json://localhost"],
    ],
)
def test_notify_needs_exactly_one_channel(instance: Path, options: list[str]) -> None:
    """No channel, or two of them, is a usage error and changes nothing."""
    code, out = run("user", "notify", instance, "alice", *options)
    assert code == 2
    assert "one of --email, --url or --off" in out
    assert stored(instance).channel == "off"


def test_a_url_apprise_cannot_use_is_an_error_that_does_not_repeat_it(instance: Path) -> None:
    """An unusable Apprise URL is a one-line error without the URL; an unusable address and an
    unknown account are errors too."""
    code, out = run("user", "notify", instance, "alice", "--url", f"nonsense://x/{TOKEN}")
    assert code == 1
    assert "Apprise" in out
    assert TOKEN not in out
    assert run("user", "notify", instance, "alice", "--email", "not an address")[0] == 1
    assert run("user", "notify", instance, "nobody", "--off")[0] == 1
    assert stored(instance).channel == "off"


def test_a_url_is_refused_when_the_operator_has_not_allowed_urls(instance: Path) -> None:
    """Without `[notifications] allow_urls = true` (the default), `user notify --url` is refused
    with the setting's name and nothing is stored."""
    code, out = run(
        "user", "notify", instance, "alice", "--url", "json://127.0.0.1:9/x", allow_urls=False
    )
    assert code != 0
    assert "allow_urls" in " ".join(out.split())
    assert stored(instance).channel == "off"
