"""Issue 14's "Done when", walked end to end with real components: a new journalist, given only
the account sheet that `sealdrop user add` prints and docs/journalist.md, installs the reader
(`sealdrop reader init`), is notified by e-mail (a real SMTP server on loopback: STARTTLS, AUTH)
of a source's message at the next scheduled time, opens the reader's web interface (`sealdrop
reader ui` as a process, in Chromium with JavaScript on: the journalist's own local UI), reads the
message and a photo's preview (a PNG without the JPEG's EXIF), assigns the source to a colleague,
replies while the server is down (queued, sent at the next sync once it is back), and the source
(Chromium, JavaScript off) logs in with its codename and reads the reply.

The steps follow the opening of docs/journalist.md, in its order; where the test and the page
disagree, the page is wrong or the product is.
"""

from __future__ import annotations

import email.utils
import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from support_api import Api, cli_account
from support_browser import submit
from support_http import cli_in_process, setup_cli, start_server
from support_reader_cli import CLI_ENV, GPS_BYTES, IDENTITY_PASSPHRASE, jpeg_with_gps
from support_reader_ui import enter, running_ui

from sealdrop.reader.profile import Profile
from support_notices import SmtpServer
from support_wait import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, FilePayload, Page

pytestmark = pytest.mark.slow

INTERVAL = 3  # seconds between the notices' scheduled times (one day by default)
MESSAGE = "The ministry signed the dam contract twice. Photo of the site attached."
REPLY = "Thank you. Can you tell us who signed the second copy?"
JOURNALIST_ADDRESS = "reporter@example.org"
NOTICE = "There is new activity on Example Gazette's Sealdrop. Open your reader."


def source_sends(page: Page, base: str, photo: bytes) -> str:
    """A source with JavaScript off: gets a codename, confirms it, sends a message and a
    photo. Returns the codename."""
    page.goto(base + "/")
    submit(page.get_by_role("button", name="Get a codename and start", exact=True))
    codename = page.locator("p.codename").inner_text().strip()
    assert len(codename.split()) == 7
    page.get_by_role("link", name="I have written down my codename", exact=True).click()
    page.get_by_label("Codename (seven words)").fill(codename)
    submit(page.get_by_role("button", name="Continue", exact=True))
    assert page.url == base + "/conversation"
    page.get_by_label("Message", exact=True).fill(MESSAGE)
    jpeg: FilePayload = {"name": "site-photo.jpg", "mimeType": "image/jpeg", "buffer": photo}
    page.get_by_label("Documents (optional)").set_input_files(files=[jpeg])
    assert submit(page.get_by_role("button", name="Send securely", exact=True)).status == 200
    assert page.url == base + "/submitted"
    return codename


def test_a_new_journalist_is_notified_reads_assigns_replies_offline_and_the_source_reads_it(
    tmp_path: Path,
    browser: Browser,
    new_context: Callable[[], BrowserContext],
) -> None:
    """The walk of issue 14's "Done when": account sheet → reader init → one e-mail notice at
    the next scheduled time (nothing about the submission in it) → the reader's web interface →
    message and photo preview (PNG, no EXIF) → assigned to a colleague (the API says so) →
    a reply written while the server is down shows as queued and goes out at the next sync
    once the server is back → the source logs in with its codename and reads it."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    with SmtpServer(tmp_path) as smtp:
        # The operator: an instance, notices by e-mail every few seconds.
        instance = tmp_path / "instance"
        setup_cli("init", instance, "--org-name", "Example Gazette")
        # Step 1, the account sheet: what `user add` prints (username, passphrase, otpauth
        # URI), for the journalist and a colleague; the operator sends the journalist's
        # notices to an address (step 3 asks for that), and the server runs.
        journalist = cli_account(instance, "reporter")
        colleague = cli_account(instance, "colleague")
        setup_cli("user", "notify", instance, journalist.username, "--email", JOURNALIST_ADDRESS)
        server_tmp = tmp_path / "server-tmp"
        server_tmp.mkdir()
        server = start_server(instance, server_tmp, **smtp.server_settings(INTERVAL))
        try:
            # Step 2, install the reader: `reader init` with the sheet's values makes a key here,
            # logs in (passphrase and code) and registers the key, before any source writes (a
            # key registered later opens nothing older). Passphrases from files, as scripts do.
            secrets = tmp_path / "secrets"
            secrets.mkdir(mode=0o700)
            (secrets / "identity").write_text(IDENTITY_PASSPHRASE + "\n")
            (secrets / "account").write_text(journalist.passphrase + "\n")
            data_dir = tmp_path / "reader-data"
            init = cli_in_process(
                "reader", "--data-dir", data_dir, "init",
                "--server", server.api_url, "--username", journalist.username,
                "--identity-passphrase-file", secrets / "identity",
                "--passphrase-file", secrets / "account",
                "--totp", journalist.fresh_code(),
                env=CLI_ENV,
            )  # fmt: skip
            assert init.returncode == 0, init.stdout + init.stderr

            # A source sends a message and a photo with GPS in its EXIF (JavaScript off).
            source_page = new_context().new_page()
            before = time.time()
            codename = source_sends(source_page, server.url, jpeg_with_gps())
            arrived = time.time()

            # Step 3, an e-mail notice at the next scheduled time (the end checks it is the
            # only one).
            assert wait_for(lambda: len(smtp.messages) >= 1, 3 * INTERVAL), "no notice"
            mail = smtp.messages[0]
            assert mail.recipients == [JOURNALIST_ADDRESS]
            assert mail.tls
            notice_time = email.utils.parsedate_to_datetime(mail.message["Date"]).timestamp()
            assert notice_time % INTERVAL == 0  # the schedule's time, not the arrival's
            assert before < notice_time <= arrived + INTERVAL
            body = mail.message.get_payload(decode=True)
            assert isinstance(body, bytes)
            # What docs/journalist.md quotes ("Notices of new activity"), and nothing more.
            assert body.decode().strip() == NOTICE
            notice = mail.raw.decode("utf-8", "replace") + body.decode()
            for secret in (codename, MESSAGE, "site-photo", "ministry"):
                assert secret not in notice

            # Step 4, open the interface: its one-time link, JavaScript on (the journalist's
            # own local UI), unlock, Sync now.
            context = browser.new_context(java_script_enabled=True, locale="en-US")
            context.set_default_timeout(15_000)
            page = context.new_page()
            with running_ui(data_dir, "en", 5) as (link, base):
                enter(page, link, PlaywrightError)
                # The inbox asks for the key first; its passphrase is the one of `reader init`.
                page.get_by_role("link", name="Unlock this device's key").click()
                page.get_by_label("Identity passphrase").fill(IDENTITY_PASSPHRASE)
                submit(page.get_by_role("button", name="Unlock", exact=True))
                assert page.url == base + "/"
                submit(page.get_by_role("button", name="Sync now"))
                source_link = page.locator("ul.sources a.pseudonym")
                assert source_link.count() == 1
                pseudonym = source_link.inner_text()
                assert pseudonym not in notice
                source_link.click()
                source_id = page.url.rsplit("/", 1)[-1]
                conversation = f"{base}/sources/{source_id}"
                page.wait_for_url(conversation)

                # Step 5, read: the message, and the photo's preview: a PNG made here, no EXIF.
                timeline = page.locator("ol.timeline")
                assert timeline.locator(".item .text").first.inner_text() == MESSAGE
                card = timeline.locator(".file-card", has_text="site-photo.jpg")
                assert "image/jpeg" in card.inner_text()
                with page.expect_response(re.compile(r"/preview\.png$")) as preview:
                    card.get_by_role("link", name="Preview").click()
                png = preview.value.body()
                assert preview.value.headers["content-type"] == "image/png"
                assert png.startswith(b"\x89PNG\r\n\x1a\n")
                assert GPS_BYTES not in png
                with Image.open(io.BytesIO(png)) as shown:
                    assert not shown.getexif()
                expect(page.locator(".preview img")).to_have_js_property("naturalWidth", 32)

                # Step 6, assign the source to the colleague; the API says so to everyone.
                page.goto(conversation)
                page.get_by_label("Assigned to").select_option(colleague.username)
                submit(page.get_by_role("button", name="Assign", exact=True))
                assert page.url.split("#")[0] == conversation
                assert page.get_by_label("Assigned to").input_value() == colleague.username
                token = Profile(data_dir).load_token()
                assert token is not None
                api = Api(server, token)
                assert api.source(source_id)["assignee"] == colleague.username

                # Step 7, reply while the server is down: it waits here, encrypted, queued …
                server.stop()
                page.fill("#reply-text", REPLY)
                page.get_by_role("button", name="Encrypt and send").click()
                page.wait_for_url(conversation + "#reply")
                waiting = page.locator("li.item.reply.pending")
                assert waiting.locator(".text").inner_text() == REPLY
                assert "Queued: sent at the next sync" in waiting.inner_text()
                # The status bar says so (its script follows the background sync).
                expect(page.locator("#sync-state")).to_contain_text("Offline")

                # … and the same instance comes back: a sync sends it.
                server.start()
                submit(page.get_by_role("button", name="Sync now"))
                page.goto(conversation)
                assert page.locator("li.item.reply.pending").count() == 0
                expect(page.locator("#sync-state")).to_contain_text("Online")
                sent = page.locator("li.item.reply", has_text=REPLY)
                assert "Reply by reporter" in sent.inner_text()
                assert "Sent" in sent.inner_text()
                assert len(api.replies(source_id)) == 1  # sent once, not once per sync
                api.http.close()
            context.close()

            # Step 8, the source logs in with its codename (JavaScript off) and reads it.
            source_page = new_context().new_page()
            source_page.goto(server.url + "/")
            source_page.get_by_role("link", name="I already have a codename", exact=True).click()
            source_page.get_by_label("Codename (seven words)").fill(codename)
            submit(source_page.get_by_role("button", name="Log in", exact=True))
            assert source_page.url == server.url + "/conversation"
            assert source_page.locator("ol.replies .reply").inner_text() == REPLY
        finally:
            server.stop()
        # Only the one notice: the colleague has none set, and nothing else came since.
        assert len(smtp.messages) == 1
