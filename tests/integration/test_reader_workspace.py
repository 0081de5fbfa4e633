"""The reader's local web interface as a daily tool, against a real server: the inbox (order,
counts, filters), replies queued while the server is unreachable and sent when it is back (with
their state, retry and discard), reading offline, items marked new as they arrive, logging in
again in the page, and previews (EXIF gone, a decompression bomb refused, bidi neutralised).

"Unreachable" is real: the interface's client is pointed at a closed port on loopback, then back
at the server; one test stops the server process itself and starts it again.
"""

from __future__ import annotations

import html
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from support_api import new_source
from support_http import Source
from support_reader_cli import (
    GPS_BYTES,
    IDENTITY_PASSPHRASE,
    ReaderSetup,
    files_under,
    jpeg_with_gps,
    reader_set_up,
    synced_source,
)
from support_workspace import Network, source_order, workspace
from test_reader_ui import BASE, PORT, Ui, login

from sealdrop.reader.profile import Profile
from sealdrop.reader.ui import create_app
from support_images import png_claiming
from support_pages import AsgiBrowser

pytestmark = pytest.mark.slow

__all__ = ["workspace"]  # the fixture, from support_workspace


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSetup]:
    """A server, a journalist account, and `reader init` done against its journalist API."""
    yield from reader_set_up(tmp_path_factory.mktemp("reader-workspace"))


def test_inbox_newest_activity_first_with_counts_filters_and_empty_states(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """Sources are listed newest activity first with their unread counts; a pseudonym search
    and the starred filter narrow the list, and a search that matches nothing says so."""
    browser, _ = workspace
    older, _ = new_source(reader.server, "first")
    older.http.close()
    assert browser.post("/sync", {}).status_code == 200
    first = reader.newest_source()
    newer, _ = new_source(reader.server, "second", files=[("n.txt", b"n\n", "text/plain")])
    newer.http.close()
    assert browser.post("/sync", {}).status_code == 200
    second = reader.newest_source()
    assert second.id != first.id

    page = browser.get("/").text
    order = source_order(page)
    assert order.index(second.id) < order.index(first.id), order
    row = page[page.index(f'id="source-{second.id}"') :]
    assert "2 unread" in row[: row.index("</li>")]  # a message and a file

    found = browser.get("/", params={"q": second.pseudonym.split()[0].upper()}).text
    assert second.id in source_order(found)
    with reader.local() as store:
        pseudonyms = {s.id: s.pseudonym for s in store.sources()}
    exact = source_order(browser.get("/", params={"q": second.pseudonym}).text)
    assert exact  # pseudonyms can repeat: every source listed has the one searched for
    assert all(second.pseudonym in pseudonyms[i] for i in exact), exact
    nothing = browser.get("/", params={"q": "no-such-pseudonym-" + uuid.uuid4().hex}).text
    assert source_order(nothing) == []
    assert "No source matches this search." in nothing

    assert browser.post(f"/sources/{first.id}/star", {"starred": "1"}).status_code == 303
    starred = source_order(browser.get("/", params={"show": "starred"}).text)
    assert first.id in starred
    assert second.id not in starred


def test_reply_written_offline_is_queued_encrypted_and_sent_when_the_server_is_back(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """With the server unreachable, a reply is queued (the page says so, and that the interface
    is offline); the database holds it encrypted; at the next sync it goes, the page shows it
    sent, and the source reads it."""
    browser, network = workspace
    source, codename = new_source(reader.server, "please reply")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()

    network.up = False
    text = f"Offline reply <{uuid.uuid4().hex}>"
    assert browser.post(f"/sources/{mine.id}/reply", {"text": text}).status_code == 303
    page = browser.get(f"/sources/{mine.id}").text
    assert html.escape(text) in page  # shown from the outbox, decrypted in memory
    assert "Queued: sent at the next sync" in page
    assert "Offline" in page
    db = (reader.data_dir / "reader.sqlite3").read_bytes()
    assert text.encode() not in db  # sealed before it was queued
    assert "1 reply(ies) waiting" in browser.get("/").text

    network.up = True
    assert browser.post("/sync", {}).status_code == 200
    page = browser.get(f"/sources/{mine.id}").text
    assert "Queued: sent at the next sync" not in page
    sent = page[page.index(html.escape(text)) - 2000 : page.index(html.escape(text))]
    assert "Sent" in sent
    assert "Online" in page

    web = Source(reader.server.url)
    assert web.login(codename).status_code == 303
    assert html.escape(text) in web.http.get("/conversation").text
    web.http.close()


def test_a_refused_reply_is_marked_failed_and_can_be_retried_or_discarded(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A reply the server refuses (its source deleted meanwhile) is shown failed with the reason,
    a retry that fails again stays failed, and discard removes it."""
    browser, network = workspace
    source, _ = new_source(reader.server, "will be deleted")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    network.up = False
    assert browser.post(f"/sources/{mine.id}/reply", {"text": "too late"}).status_code == 303
    with reader.api() as api:
        assert api.delete(f"/sources/{mine.id}").status_code == 204
    network.up = True
    assert browser.post("/sync", {}).status_code == 200
    page = browser.get(f"/sources/{mine.id}").text
    assert "Failed: the source no longer exists" in page
    reply_id = re.search(r'action="/replies/([0-9a-f]{32})/retry"', page)
    assert reply_id, page
    assert browser.post(f"/replies/{reply_id.group(1)}/retry", {}).status_code == 303
    assert "Failed: the source no longer exists" in browser.get(f"/sources/{mine.id}").text
    assert browser.post(f"/replies/{reply_id.group(1)}/discard", {}).status_code == 303
    page = browser.get(f"/sources/{mine.id}").text
    assert "too late" not in page
    assert "Failed" not in page


def test_everything_synced_reads_offline_and_the_page_says_when_it_last_synced(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """With the server unreachable the inbox and the conversation are still there, the status
    bar says offline with the time of the last sync, and the failed sync is an error in place."""
    browser, network = workspace
    canary = f"offline-canary-{uuid.uuid4().hex}"
    source, _ = new_source(reader.server, canary)
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    network.up = False
    attempt = browser.post("/sync", {})
    assert attempt.status_code == 200
    assert "Offline: showing what was synced · last synced" in attempt.text
    assert 'class="error"' in attempt.text
    assert "cannot be reached" in attempt.text
    assert mine.id in attempt.text
    page = browser.get(f"/sources/{mine.id}")
    assert page.status_code == 200
    assert canary in page.text
    assert "Offline" in page.text


def test_a_sync_the_server_refuses_is_an_error_in_place(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A sync that reaches a server which answers but refuses (here the source interface, which
    has no journalist API) says so in the inbox, which still lists what was synced."""
    browser, network = workspace
    source, _ = new_source(reader.server, "synced before")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    known = reader.newest_source()
    network.elsewhere = reader.server.url + "/api/v1"
    failed = browser.post("/sync", {})
    assert failed.status_code == 200
    assert "The last sync failed:" in failed.text
    assert 'class="error"' in failed.text
    assert known.id in failed.text
    network.elsewhere = None
    assert "The last sync failed:" not in browser.post("/sync", {}).text


def test_an_item_that_arrives_is_marked_new_until_its_conversation_is_opened(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """After a sync brings a new item, the inbox marks its source new and the conversation marks
    the item; once opened, it is new no more."""
    browser, _ = workspace
    assert browser.post("/sync", {}).status_code == 200
    source, _ = new_source(reader.server, "brand new")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    inbox = browser.get("/").text
    row = inbox[inbox.index(f'id="source-{mine.id}"') :]
    assert 'class="badge new"' in row[: row.index("</li>")]
    assert browser.get("/sync/status").json()["fresh"] >= 1
    assert 'class="badge new"' in browser.get(f"/sources/{mine.id}").text
    assert 'class="badge new"' not in browser.get(f"/sources/{mine.id}").text


def test_an_expired_login_is_renewed_in_the_page_without_restarting(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """Without a valid token a sync answers the login form (401); a wrong code is an error in the
    form; the account passphrase and a fresh TOTP code log in again and sync works."""
    browser, _ = workspace
    back = f"/sources/{synced_source(reader, 'renewed login').id}"
    (reader.data_dir / "token.json").unlink()
    refused = browser.post("/sync", {})
    assert refused.status_code == 401
    assert 'action="/login"' in refused.text
    assert "sealdrop reader login" in refused.text
    assert "Log in again" in browser.get("/").text
    wrong = browser.post("/login", {"passphrase": reader.journalist.passphrase, "totp": "000000"})
    assert wrong.status_code == 400
    assert "login refused" in wrong.text
    done = browser.post(
        "/login",
        {
            "passphrase": reader.journalist.passphrase,
            "totp": reader.journalist.fresh_code(),
            "next": back,
        },
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == back
    assert Profile(reader.data_dir).load_token() is not None
    assert browser.post("/sync", {}).status_code == 200
    assert browser.post("/login", {"next": "//evil.example/"}).status_code == 400


def test_previews_strip_metadata_refuse_a_bomb_and_neutralise_bidi(
    reader: ReaderSetup, workspace: tuple[Ui, Network]
) -> None:
    """A JPEG's preview is a PNG without GPS; a decompression bomb's preview is refused in the
    page and the interface goes on answering; a text file is shown escaped with its bidi
    override made visible; a PDF has no preview, only export."""
    browser, _ = workspace
    files = [
        ("photo.jpg", jpeg_with_gps(), "image/jpeg"),
        ("bomb.png", png_claiming(80_000, 80_000), "image/png"),
        ("notes.txt", "<b>bold</b> invoice\u202etxt.exe".encode(), "text/plain"),
        ("doc.pdf", b"%PDF-1.4\n", "application/pdf"),
    ]
    source, _ = new_source(reader.server, "previews", files=files)
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    page = browser.get(f"/sources/{reader.newest_source().id}").text
    ids = {
        html.unescape(name): item_id
        for item_id, name in re.findall(
            r'id="item-([0-9a-f]{32})"(?:(?!id="item-).)*?class="filename">([^<]*)<', page, re.S
        )
    }
    assert set(ids) == {"photo.jpg", "bomb.png", "notes.txt", "doc.pdf"}, page

    photo = browser.get(f"/items/{ids['photo.jpg']}/preview")
    assert photo.status_code == 200
    assert f'src="/items/{ids["photo.jpg"]}/preview.png"' in photo.text
    png = browser.get(f"/items/{ids['photo.jpg']}/preview.png")
    assert png.headers["content-type"] == "image/png"
    assert GPS_BYTES not in png.content
    with Image.open(io.BytesIO(png.content)) as shown:
        assert not shown.getexif()
        assert shown.size == (32, 32)

    bomb = browser.get(f"/items/{ids['bomb.png']}/preview")
    assert bomb.status_code == 200
    assert "pixels: export it instead" in bomb.text
    assert 'class="error"' in bomb.text
    assert browser.get(f"/items/{ids['bomb.png']}/preview.png").status_code == 404
    assert browser.get("/").status_code == 200  # the interface is unharmed

    text = browser.get(f"/items/{ids['notes.txt']}/preview").text
    assert "&lt;b&gt;bold&lt;/b&gt; invoice&lt;U+202E&gt;txt.exe" in text
    assert "\u202e" not in text

    pdf = browser.get(f"/items/{ids['doc.pdf']}/preview").text
    assert "no preview for this type of file: export it" in pdf
    assert 'action="/items/' in pdf  # the export form is there

    # Previews live in memory only: nothing of what was shown is in the reader's data folder
    # (the cache there holds the ciphertext; plaintext reaches disk only through an export).
    displayed = [b"bold</b> invoice", jpeg_with_gps(), png.content[8:64], GPS_BYTES]
    for path in files_under(reader.data_dir):
        stored = path.read_bytes()
        assert not [canary for canary in displayed if canary in stored], path


def test_a_file_too_large_to_preview_is_refused_before_it_is_decrypted(
    reader: ReaderSetup, workspace: tuple[Ui, Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the preview's size limit (lowered here) the page sends the journalist to export,
    from the sizes alone: the file is not decrypted into memory first."""
    browser, _ = workspace
    source, _ = new_source(reader.server, "big", files=[("big.jpg", jpeg_with_gps(), "image/jpeg")])
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    page = browser.get(f"/sources/{reader.newest_source().id}").text
    found = re.search(r'href="/items/([0-9a-f]{32})/preview"', page)
    assert found, page
    monkeypatch.setattr("sealdrop.reader.ui_preview.MAX_INPUT", 100)
    refused = browser.get(f"/items/{found.group(1)}/preview")
    assert refused.status_code == 200
    assert "too large to preview: export it instead" in refused.text
    assert browser.get(f"/items/{found.group(1)}/preview.png").status_code == 404


def test_reply_while_the_server_process_is_stopped_goes_when_it_is_back(
    reader: ReaderSetup,
) -> None:
    """The same walk with the real server process stopped and started again (the interface's
    own client, from the saved login): queued while it is down, sent at the sync after."""
    token = uuid.uuid4().hex
    browser = Ui(AsgiBrowser(create_app(Profile(reader.data_dir), PORT, token), BASE))
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    source, codename = new_source(reader.server, "are you there?")
    source.http.close()
    assert browser.post("/sync", {}).status_code == 200
    mine = reader.newest_source()
    text = f"Written while the server was down {uuid.uuid4().hex}"
    reader.server.stop()
    try:
        assert browser.post(f"/sources/{mine.id}/reply", {"text": text}).status_code == 303
        page = browser.get(f"/sources/{mine.id}").text
        assert "Queued: sent at the next sync" in page
        assert "Offline" in page
    finally:
        reader.server.start()
    assert browser.post("/sync", {}).status_code == 200
    assert "Queued: sent at the next sync" not in browser.get(f"/sources/{mine.id}").text
    web = Source(reader.server.url)
    assert web.login(codename).status_code == 303
    assert text in web.http.get("/conversation").text
    web.http.close()


def test_nothing_decrypted_reaches_the_data_folder(reader: ReaderSetup) -> None:
    """After the tests above (previews, an offline reply), the data folder holds no preview and
    no reply in the clear: previews live in memory only, replies are queued sealed."""
    for path in Path(reader.data_dir).rglob("*"):
        if path.is_file() and path.parent.name != "exports":
            data = path.read_bytes()
            assert b"Offline reply" not in data, path
            assert b"invoice" not in data, path
