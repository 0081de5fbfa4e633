"""What one upload may carry: one message, and at most MAX_ITEMS_PER_SUBMISSION parts after the
token, files and message together. A body over either bound gets its own translated page and
stores nothing. Both ways a body is read are covered: whole (up to limits.max_form_bytes) and
streamed (larger)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from test_source_app import Browser, new_instance, signed_in_browser

from sealdrop.ids import SourceId
from sealdrop.services.container import Services
from sealdrop.services.submissions import MAX_ITEMS_PER_SUBMISSION
from sealdrop.web.app import create_source_app
from sealdrop.web.source.routes import COOKIE
from support_pages import csrf_token

# An unknown field this large pushes a body past limits.max_form_bytes (64 KiB): it is streamed.
STREAMED = [("padding", None, b"p" * 70 * 1024)]
BODIES = pytest.mark.parametrize("padding", [[], STREAMED], ids=["whole", "streamed"])

Part = tuple[str, str | None, bytes]  # (field name, file name or None, content)


@dataclass
class Site:
    services: Services
    source_id: SourceId

    def browser(self) -> Browser:
        return signed_in_browser(self.services, self.source_id)

    def stored(self) -> tuple[int, int, int]:
        """(rows, blob files, staging files)."""
        blob_dir = self.services.settings.blob_dir
        blobs = [p for p in (blob_dir / "blobs").rglob("*") if p.is_file()]
        staging = list((blob_dir / "staging").iterdir())
        return len(self.services.submissions.listing()), len(blobs), len(staging)

    def submit(self, parts: list[Part]) -> httpx.Response:
        """POST /submit with the session's token first, then ``parts``, as a browser encodes
        a multipart form."""
        browser = self.browser()
        token = csrf_token(browser.get("/conversation").text)
        boundary = "----SealdropParts" + uuid.uuid4().hex
        body = bytearray()
        for name, filename, content in [("csrf_token", None, token.encode()), *parts]:
            disposition = f'form-data; name="{name}"'
            if filename is not None:
                disposition += f'; filename="{filename}"\r\nContent-Type: text/plain'
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            body += content + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
        return browser.post("/submit", content=bytes(body), headers={"content-type": content_type})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    services = new_instance(tmp_path_factory.mktemp("parts") / "instance")
    browser = Browser(create_source_app(services))
    started = browser.post("/start", data={"form_token": browser.form_token()})
    assert started.status_code == 200
    yield Site(services, services.sessions.resolve(browser.cookies[COOKIE]).source_id)
    services.close()


def assert_refused(site: Site, parts: list[Part], status: int, title: str) -> None:
    before = site.stored()
    response = site.submit(parts)
    assert response.status_code == status, response.text[:300]
    assert f"<h1>{title}</h1>" in response.text
    assert "Nothing was stored" in response.text or "nothing was stored" in response.text
    assert site.stored() == (before[0], before[1], 0)


def messages(n: int) -> list[Part]:
    return [("message", None, f"message {i}".encode()) for i in range(n)]


def files(n: int) -> list[Part]:
    return [("files", f"{i}.txt", b"x") for i in range(n)]


@BODIES
@pytest.mark.parametrize("count", [2, 500])
def test_a_second_message_part_is_a_400_and_nothing_is_stored(
    site: Site, padding: list[Part], count: int
) -> None:
    """The form has one message box: a body with 2 or 500 message parts gets the "More than
    one message" page (400) and none of its messages or files is stored (before, each message
    part was stored: 5,000 parts made 5,000 items)."""
    parts = [*files(1), *messages(count), *padding]
    assert_refused(site, parts, 400, "More than one message")


@BODIES
def test_a_blank_message_then_another_is_still_refused(site: Site, padding: list[Part]) -> None:
    """Blank message parts are dropped when stored, but they still count as the message."""
    parts = [("message", None, b""), ("message", None, b"second"), *padding]
    assert_refused(site, parts, 400, "More than one message")


@BODIES
def test_files_and_a_message_over_the_cap_get_413_and_nothing_is_stored(
    site: Site, padding: list[Part]
) -> None:
    """A message and MAX_ITEMS_PER_SUBMISSION files (one part too many) get the "Too many
    files" page (413); so do that many files and more; nothing of them is stored."""
    over = [*messages(1), *files(MAX_ITEMS_PER_SUBMISSION), *padding]
    assert_refused(site, over, 413, "Too many files")
    assert_refused(site, files(MAX_ITEMS_PER_SUBMISSION + 50), 413, "Too many files")


def test_parts_that_are_skipped_count_against_the_cap_too(site: Site) -> None:
    """Empty file inputs and unknown fields store nothing, but a body of more parts than the
    cap allows is refused all the same, whatever they are."""
    empty_inputs = [("files", "", b"")] * (MAX_ITEMS_PER_SUBMISSION + 1)
    assert_refused(site, [*messages(1), *empty_inputs], 413, "Too many files")
    unknown: list[Part] = [(f"field{i}", None, b"") for i in range(MAX_ITEMS_PER_SUBMISSION + 1)]
    assert_refused(site, unknown, 413, "Too many files")


def test_the_cap_itself_is_accepted(site: Site) -> None:
    """A message and MAX_ITEMS_PER_SUBMISSION - 1 files, exactly the cap, are all stored."""
    before = site.stored()
    response = site.submit([*messages(1), *files(MAX_ITEMS_PER_SUBMISSION - 1)])
    assert response.status_code == 303, response.text[:300]
    rows, blobs, staging = site.stored()
    cap = MAX_ITEMS_PER_SUBMISSION
    assert (rows - before[0], blobs - before[1], staging) == (cap, cap, 0)
