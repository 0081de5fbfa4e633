"""Triage in the reader's local web interface, against a real server: assigning a source from the
conversation page (to a colleague, back to nobody; a disabled colleague refused in place), labels
added and removed (an invalid one refused in place), "Mark as spam" hiding the source from the
default inbox, the "Assigned to me" and "Show spam" filters, a change tried with the server
unreachable (said in place, nothing queued), and untrusted labels and usernames shown as codes.

The interface runs in this process (httpx.ASGITransport), as in test_reader_workspace; what the
server holds is checked through its API.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator

import pytest
from support_api import cli_account
from support_http import cli_in_process
from support_reader_cli import ReaderSetup, reader_set_up, synced_source
from support_workspace import Network, source_order, workspace
from test_reader_ui import Ui

pytestmark = pytest.mark.slow

__all__ = ["workspace"]  # the fixture, from support_workspace


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, "reporter" with a reader set up, "editor" a colleague, "leaver" disabled."""
    for setup in reader_set_up(tmp_path_factory.mktemp("reader-ui-triage")):
        cli_account(setup.instance, "editor")
        cli_account(setup.instance, "leaver")
        disabled = cli_in_process("user", "disable", setup.instance, "leaver")
        assert disabled.returncode == 0, disabled.stdout + disabled.stderr
        yield setup


def on_server(reader: ReaderSetup, source_id: str) -> tuple[str | None, list[str]]:
    """(assignee, labels) of the source as the server has it."""
    with reader.api() as api:
        found = api.source(source_id)
    return found["assignee"], found["labels"]


def options(page: str) -> dict[str, bool]:
    """The assignee select's options: {value: selected}."""
    select = page[page.index('<select id="assignee" name="username"') :]
    select = select[: select.index("</select>")]
    return {
        html.unescape(value): bool(selected)
        for value, selected in re.findall(r'<option value="([^"]*)"( selected)?>', select)
    }


def inbox_row(page: str, source_id: str) -> str:
    row = page[page.index(f'id="source-{source_id}"') :]
    return row[: row.index("</li>\n")]


def test_assign_to_a_colleague_then_to_nobody(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """The conversation offers nobody and every enabled account (not the disabled one);
    assigning to a colleague answers 303 to the conversation, the server has it and the inbox
    row says "→ editor"; choosing nobody undoes it on the server."""
    browser, _ = workspace
    source = synced_source(reader, "assign me")
    page = browser.get(f"/sources/{source.id}").text
    assert options(page) == {"": True, "editor": False, "reporter": False}
    assert "reporter (you)" in page

    answer = browser.post(f"/sources/{source.id}/assignee", {"username": "editor"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/sources/{source.id}"
    assert on_server(reader, source.id)[0] == "editor"
    assert options(browser.get(f"/sources/{source.id}").text)["editor"] is True
    assert "→</span> <bdi>editor</bdi>" in inbox_row(browser.get("/").text, source.id)

    assert browser.post(f"/sources/{source.id}/assignee", {"username": ""}).status_code == 303
    assert on_server(reader, source.id)[0] is None
    assert options(browser.get(f"/sources/{source.id}").text)[""] is True
    assert "→" not in inbox_row(browser.get("/").text, source.id)


def test_a_disabled_colleague_is_refused_in_place(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """Assigning to a disabled account shows the conversation again (422) with the server's
    reason next to the field; nothing changes on the server."""
    browser, _ = workspace
    source = synced_source(reader, "not for leaver")
    answer = browser.post(f"/sources/{source.id}/assignee", {"username": "leaver"})
    assert answer.status_code == 422
    page = answer.text
    assert 'id="assignee-problem" role="alert"' in page
    assert "Not assigned: no enabled account has this username" in page
    assert 'aria-invalid="true" aria-describedby="assignee-problem"' in page
    assert "<textarea" in page  # the whole conversation, not an error page
    assert on_server(reader, source.id)[0] is None


def test_an_assignee_since_disabled_stays_selected_and_is_marked(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A source assigned to an account that was disabled afterwards still shows that account
    as the one selected (the form must not claim it is someone else's), marked as not an
    enabled account."""
    browser, _ = workspace
    source = synced_source(reader, "whose was it")
    username = f"parting{uuid.uuid4().hex[:6]}"
    cli_account(reader.instance, username)
    with reader.api() as api:
        api.ok("PUT", f"/sources/{source.id}/assignee", json={"username": username})
    disabled = cli_in_process("user", "disable", reader.instance, username)
    assert disabled.returncode == 0, disabled.stdout + disabled.stderr
    reader.run("sync")
    page = browser.get(f"/sources/{source.id}").text
    assert options(page)[username] is True
    assert f"{username} (not an enabled account)</option>" in page


def test_labels_are_added_and_removed_and_an_invalid_one_refused_in_place(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A label typed in the field is added on the server and shown as a chip with a remove
    button; the button removes it; a label of 33 characters is refused in place with the
    server's rule, the typed text kept in the field."""
    browser, _ = workspace
    source = synced_source(reader, "label me")
    assert browser.post(f"/sources/{source.id}/labels", {"add": "follow up"}).status_code == 303
    assert on_server(reader, source.id)[1] == ["follow up"]
    page = browser.get(f"/sources/{source.id}").text
    assert '<li class="chip"><bdi>follow up</bdi>' in page
    assert 'name="remove" value="follow up"' in page
    assert 'aria-label="Remove the label follow up"' in page
    assert '<li class="chip"><bdi>follow up</bdi></li>' in inbox_row(
        browser.get("/").text, source.id
    )

    assert browser.post(f"/sources/{source.id}/labels", {"remove": "follow up"}).status_code == 303
    assert on_server(reader, source.id)[1] == []
    assert "No labels" in browser.get(f"/sources/{source.id}").text

    answer = browser.post(f"/sources/{source.id}/labels", {"add": "x" * 33})
    assert answer.status_code == 422
    assert "Labels not changed: labels are 1-32 characters" in answer.text
    assert f'name="add" required placeholder="New label" value="{"x" * 33}"' in answer.text
    assert on_server(reader, source.id)[1] == []


def test_spam_is_hidden_from_the_default_inbox_and_shown_with_the_filter(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """ "Mark as spam" labels the source spam on the server; the default inbox leaves it out
    and says how many are hidden; "Show spam" (a GET parameter, combined with the search)
    lists it; "Not spam" brings it back."""
    browser, _ = workspace
    source = synced_source(reader, "buy cheap watches")
    page = browser.get(f"/sources/{source.id}").text
    assert '<input type="hidden" name="add" value="spam">' in page
    assert browser.post(f"/sources/{source.id}/labels", {"add": "spam"}).status_code == 303
    assert on_server(reader, source.id)[1] == ["spam"]
    page = browser.get(f"/sources/{source.id}").text
    assert "Not spam" in page
    assert "Labelled spam: hidden from the list of sources" in page

    inbox = browser.get("/").text
    assert source.id not in source_order(inbox)
    assert re.search(r"\d+ source\(s\) labelled spam not shown\.", inbox)
    assert source.id in source_order(browser.get("/", params={"spam": "1"}).text)
    query = {"spam": "1", "q": source.pseudonym}
    assert source.id in source_order(browser.get("/", params=query).text)
    query["q"] = "no-such-pseudonym-" + uuid.uuid4().hex
    assert source_order(browser.get("/", params=query).text) == []

    assert browser.post(f"/sources/{source.id}/labels", {"remove": "spam"}).status_code == 303
    assert on_server(reader, source.id)[1] == []
    assert source.id in source_order(browser.get("/").text)


def test_assigned_to_me_filter(reader: ReaderSetup, workspace: tuple[Ui, Network]) -> None:
    """ "Assigned to me" (mine=1) lists only the sources assigned to this reader's account, and
    combines with the starred filter."""
    browser, _ = workspace
    mine = synced_source(reader, "for me")
    theirs = synced_source(reader, "for the editor")
    browser.post(f"/sources/{mine.id}/assignee", {"username": "reporter"})
    browser.post(f"/sources/{theirs.id}/assignee", {"username": "editor"})
    listed = source_order(browser.get("/", params={"mine": "1"}).text)
    assert mine.id in listed
    assert theirs.id not in listed
    assert all(s.assignee == "reporter" for s in reader.local().sources() if s.id in listed)
    assert theirs.id in source_order(browser.get("/").text)
    starred = {"mine": "1", "show": "starred"}
    assert mine.id not in source_order(browser.get("/", params=starred).text)
    browser.post(f"/sources/{mine.id}/star", {"starred": "1"})
    assert mine.id in source_order(browser.get("/", params=starred).text)
    assert 'name="mine" value="1" checked' in browser.get("/", params=starred).text


def test_a_change_without_the_server_says_it_needs_it_and_queues_nothing(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """With the server unreachable, assigning and labelling answer 503 with the conversation
    saying the change needs the server and nothing was queued; when the server is back,
    nothing of it arrives there (no hidden queue replays it)."""
    browser, network = workspace
    source = synced_source(reader, "offline triage")
    network.up = False
    answer = browser.post(f"/sources/{source.id}/assignee", {"username": "editor"})
    assert answer.status_code == 503
    assert "this needs the server, which cannot be reached. Nothing was queued" in answer.text
    assert 'id="assignee-problem"' in answer.text
    answer = browser.post(f"/sources/{source.id}/labels", {"add": "later"})
    assert answer.status_code == 503
    assert 'id="labels-problem"' in answer.text
    assert 'value="later"' in answer.text  # what was typed stays in the field
    assert "The list of journalists needs the server." in answer.text
    network.up = True
    assert browser.post("/sync", {}).status_code == 200
    assert on_server(reader, source.id) == (None, [])


def test_untrusted_labels_and_usernames_are_shown_as_codes(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A label and an assignee holding a right-to-left override and a zero-width space, as a
    hostile server could send them (the real one refuses them, so they are put in the local
    copy as a sync would), are shown as <U+…> codes in the inbox and the conversation."""
    browser, _ = workspace
    source = synced_source(reader, "tricky labels")
    with reader.local() as store, store.transaction() as db:
        db.execute(
            "UPDATE sources SET assignee = ?, labels = ? WHERE id = ?",
            ("bo\u200bb", json.dumps(["evil\u202etxt.exe"]), source.id),
        )
    for page in (browser.get("/").text, browser.get(f"/sources/{source.id}").text):
        assert "evil&lt;U+202E&gt;txt.exe" in page
        assert "bo&lt;U+200B&gt;b" in page
        assert "\u202e" not in page.replace('value="evil\u202etxt.exe"', "")
        assert "\u200b" not in page.replace('value="bo\u200bb"', "")


def test_the_hold_toggle_puts_a_source_on_hold_and_off(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """The conversation's retention line offers "Put on hold"; pressing it answers 303, the
    server has the hold, the page says it is on hold and the inbox row shows "on hold"; "Take
    off hold" undoes it."""
    browser, _ = workspace
    source = synced_source(reader, "hold me")
    page = browser.get(f"/sources/{source.id}").text
    assert "Not on hold: the server" in page
    assert 'name="hold" value="1"' in page

    answer = browser.post(f"/sources/{source.id}/hold", {"hold": "1"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/sources/{source.id}"
    with reader.api() as api:
        assert api.source(source.id)["hold"] is True
    page = browser.get(f"/sources/{source.id}").text
    assert "On hold: the server" in page
    assert "Take off hold" in page
    assert "on hold" in inbox_row(browser.get("/").text, source.id)

    assert browser.post(f"/sources/{source.id}/hold", {"hold": "0"}).status_code == 303
    with reader.api() as api:
        assert api.source(source.id)["hold"] is False
    assert "on hold" not in inbox_row(browser.get("/").text, source.id)
