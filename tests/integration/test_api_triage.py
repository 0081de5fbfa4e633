"""Triage through the journalist API against a real server: assigning a source, labels and their
rules, the version bump that makes readers sync them, the journalists list, the audit entries.

One server serves the whole module (logins cost Argon2 verifications).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support_api import (
    Account,
    Api,
    api_account,
    assert_api_error,
    cli_account,
    new_age_recipient,
    new_source,
    start_instance,
)
from support_http import run_cli

from sealdrop.testing import ServerProcess


@dataclass
class Newsroom:
    server: ServerProcess
    admin: Api
    writer: Api
    writer_account: Account


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsroom]:
    """A server with an admin ("chief"), a journalist ("writer") and a disabled one ("leaver")."""
    root = tmp_path_factory.mktemp("triage")
    instance, server = start_instance(root)
    try:
        anonymous = Api(server)
        admin = anonymous.as_(anonymous.login(cli_account(instance, "chief", admin=True)))
        writer_account = api_account(admin, "writer")
        writer = anonymous.as_(anonymous.login(writer_account))
        # Intake needs someone to encrypt to: the writer's device key.
        writer.ok("POST", "/me/keys", 201, json={"public_key": new_age_recipient()})
        api_account(admin, "leaver")
        run_cli("user", "disable", instance, "leaver")
        yield Newsroom(server, admin, writer, writer_account)
    finally:
        server.stop()


def fresh_source(room: Newsroom) -> dict[str, object]:
    new_source(room.server, "a tip")
    return room.admin.latest_source()


def test_assign_then_unassign_is_seen_by_every_journalist(newsroom: Newsroom) -> None:
    """A journalist assigns a source to a colleague (name in any case): the answer and every
    account's view show the assignee, and the source's version grows so that a sync
    (updated_since) brings it back; null assigns it to nobody again."""
    source = fresh_source(newsroom)
    assert source["assignee"] is None
    url = f"/sources/{source['id']}/assignee"
    assigned = newsroom.writer.ok("PUT", url, json={"username": "Chief"})
    assert assigned["assignee"] == "chief"
    assert assigned["version"] > source["version"]
    assert newsroom.admin.source(str(source["id"]))["assignee"] == "chief"
    changed = newsroom.admin.ok("GET", f"/sources?updated_since={source['version']}")["sources"]
    assert [s["id"] for s in changed] == [source["id"]]
    assert changed[0]["assignee"] == "chief"

    cleared = newsroom.admin.ok("PUT", url, json={"username": None})
    assert cleared["assignee"] is None
    assert cleared["version"] > assigned["version"]
    assert newsroom.writer.source(str(source["id"]))["assignee"] is None


@pytest.mark.parametrize("username", ["leaver", "nobody", "not a name", ""])
def test_assigning_to_a_disabled_or_unknown_account_is_422(
    newsroom: Newsroom, username: str
) -> None:
    """A disabled account, an unknown, a malformed or an empty name: 422 invalid_assignee, the
    source unchanged."""
    source = fresh_source(newsroom)
    response = newsroom.writer.put(f"/sources/{source['id']}/assignee", json={"username": username})
    assert_api_error(response, 422, "invalid_assignee")
    assert newsroom.admin.source(str(source["id"])) == source


def test_labels_replace_the_set_normalised_and_sorted(newsroom: Newsroom) -> None:
    """PUT labels replaces the whole set; labels come back NFC, trimmed, sorted ignoring case;
    an empty list removes them all; each change bumps the version."""
    source = fresh_source(newsroom)
    url = f"/sources/{source['id']}/labels"
    first = newsroom.writer.ok("PUT", url, json={"labels": [" Spam ", "follow up", "cafe\u0301"]})
    assert first["labels"] == ["café", "follow up", "Spam"]
    assert first["version"] > source["version"]
    assert newsroom.admin.source(str(source["id"]))["labels"] == ["café", "follow up", "Spam"]
    second = newsroom.admin.ok("PUT", url, json={"labels": []})
    assert second["labels"] == []
    assert second["version"] > first["version"]


@pytest.mark.parametrize(
    "labels",
    [
        [""],
        ["x" * 33],
        ["evil\u202etxt"],
        ["two\nlines"],
        ["spam", "SPAM"],
        [f"l{n}" for n in range(21)],
    ],
)
def test_labels_breaking_the_rules_are_422(newsroom: Newsroom, labels: list[str]) -> None:
    """Empty, over 32 characters, an invisible character, a repeat ignoring case, more than 20
    labels: 422 invalid_labels, the source unchanged."""
    source = fresh_source(newsroom)
    response = newsroom.writer.put(f"/sources/{source['id']}/labels", json={"labels": labels})
    body = assert_api_error(response, 422, "invalid_labels")
    # The message says what rule was broken, never what was sent.
    assert "evil" not in str(body)
    assert "l20" not in str(body)
    assert newsroom.admin.source(str(source["id"])) == source


def test_malformed_triage_bodies_are_400_and_unknown_sources_404(newsroom: Newsroom) -> None:
    """A body of the wrong shape is the API's usual 400; an unknown source 404."""
    source = fresh_source(newsroom)
    response = newsroom.writer.put(f"/sources/{source['id']}/labels", json={"labels": "spam"})
    assert_api_error(response, 400, "invalid_request")
    response = newsroom.writer.put(f"/sources/{source['id']}/assignee", json={})
    assert_api_error(response, 400, "invalid_request")
    missing = "0" * 32
    response = newsroom.writer.put(f"/sources/{missing}/labels", json={"labels": ["spam"]})
    assert_api_error(response, 404, "not_found")
    response = newsroom.writer.put(f"/sources/{missing}/assignee", json={"username": "chief"})
    assert_api_error(response, 404, "not_found")


def test_journalists_lists_enabled_accounts_to_any_account(newsroom: Newsroom) -> None:
    """GET /journalists: every enabled account (admins too), sorted, usernames only; the
    disabled account is not offered."""
    body = newsroom.writer.ok("GET", "/journalists")
    assert body == {"journalists": [{"username": "chief"}, {"username": "writer"}]}


def test_triage_changes_are_audited_without_whom_or_which_labels(newsroom: Newsroom) -> None:
    """source.assign, source.unassign and source.labels name the actor and the pseudonym only."""
    source = fresh_source(newsroom)
    newsroom.writer.ok("PUT", f"/sources/{source['id']}/assignee", json={"username": "chief"})
    newsroom.writer.ok("PUT", f"/sources/{source['id']}/assignee", json={"username": None})
    newsroom.writer.ok("PUT", f"/sources/{source['id']}/labels", json={"labels": ["spam"]})
    entries = newsroom.admin.ok("GET", "/audit?limit=3")["entries"]
    assert [(e["username"], e["action"], e["source"]) for e in reversed(entries)] == [
        ("writer", action, source["pseudonym"])
        for action in ("source.assign", "source.unassign", "source.labels")
    ]
