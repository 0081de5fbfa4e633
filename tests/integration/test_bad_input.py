"""Bad input gets a clear page and loses nothing: no row, no blob, no staging file left behind.

Tests on the module's ``shared_server`` check that nothing was added to what the instance held
when they began (the module's tests run one after another, in one process)."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support_http import (
    BOTH_BACKENDS,
    JournalistKey,
    Source,
    browser_multipart,
    setup_cli,
    staging_files,
    start_server,
    stored,
)

from sealdrop.testing import ServerProcess

MiB = 1024 * 1024


@pytest.fixture
def small_limits_server(
    instance_dir: Path, journalist_key: JournalistKey, server_tmp: Path
) -> Iterator[ServerProcess]:
    """A server that accepts at most 1 MiB per request and 100-character messages."""
    setup_cli("recipients", "add", instance_dir, journalist_key.recipient)
    proc = start_server(
        instance_dir, server_tmp, limits_max_upload_bytes=str(MiB), limits_max_message_chars="100"
    )
    yield proc
    proc.stop()


Holdings = tuple[list[dict[str, Any]], list[Path]]


def holdings(instance: Path) -> Holdings:
    """The instance's submissions (`sealdrop submissions list`) and blob files."""
    blobs = sorted(p for p in (instance / "store" / "blobs").rglob("*") if p.is_file())
    return stored(instance), blobs


def assert_nothing_stored(instance: Path, before: Holdings = ([], [])) -> None:
    """No submission and no blob beyond ``before`` (by default: none at all), no staging file."""
    assert holdings(instance) == before
    assert staging_files(instance) == []


def test_upload_over_limit_with_declared_length_is_refused_before_reading(
    small_limits_server: ServerProcess, instance_dir: Path
) -> None:
    """A body whose Content-Length exceeds the limit gets the 413 page; nothing is staged."""
    source = Source(small_limits_server.url)
    source.start()
    response = source.submit(files=[("big.bin", io.BytesIO(os.urandom(2 * MiB)), "x/y")])
    assert response.status_code == 413
    assert "Too large" in response.text
    assert "Nothing was stored" in response.text
    assert_nothing_stored(instance_dir)


@BOTH_BACKENDS
def test_upload_over_limit_while_streaming_is_cut_off(
    small_limits_server: ServerProcess, instance_dir: Path
) -> None:
    """A chunked body with no declared length is refused once it passes the limit, mid-stream:
    the client gets the 413 page (or, if it keeps pushing, a closed connection), and the staged
    part is removed."""
    source = Source(small_limits_server.url)
    source.start()
    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token())], [("big.bin", os.urandom(3 * MiB), "x/y")]
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    try:
        response = source.http.post(
            "/submit", content=chunks(), headers={"content-type": content_type}
        )
        assert response.status_code == 413
        assert "Too large" in response.text
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server closed the connection after answering; also a refusal
    _wait_for(lambda: staging_files(instance_dir) == [])
    assert_nothing_stored(instance_dir)
    assert httpx.get(small_limits_server.url + "/").status_code == 200


@BOTH_BACKENDS
def test_client_disconnect_mid_upload_leaves_nothing(
    server: ServerProcess, source: Source, instance_dir: Path
) -> None:
    """A client that vanishes halfway through an upload leaves no row and no staging file, and
    the server goes on serving."""
    source.start()
    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token()), ("message", "half a message")],
        [("part.bin", os.urandom(4 * MiB), "x/y")],
    )
    cookie = "; ".join(f"{k}={v}" for k, v in source.http.cookies.items())
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])
        # Wait until the server has started staging the part, then vanish.
        _wait_for(lambda: staging_files(instance_dir) != [])
    _wait_for(lambda: staging_files(instance_dir) == [])
    assert_nothing_stored(instance_dir)
    assert source.submit("still here").status_code == 303


def test_empty_submission_gets_a_clear_message(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """No message and no file: the page says so and nothing is stored."""
    source, instance_dir = shared_source, shared_server.instance
    before = holdings(instance_dir)
    source.start()
    response = source.submit("   \r\n  ")
    assert response.status_code == 400
    assert "Write a message or choose a file" in response.text
    assert_nothing_stored(instance_dir, before)


def test_message_over_the_limit_is_refused(
    small_limits_server: ServerProcess, instance_dir: Path
) -> None:
    """A message over the character limit is refused with the limit named; nothing is stored,
    not even the files sent with it."""
    source = Source(small_limits_server.url)
    source.start()
    response = source.submit("é" * 101, files=[("a.txt", b"attached", "text/plain")])
    assert response.status_code == 400
    assert "up to 100 characters" in response.text
    assert_nothing_stored(instance_dir)
    # Exactly at the limit (in characters, not bytes) is fine.
    assert source.submit("é" * 100).status_code == 303


def test_no_recipients_means_not_accepting(instance_dir: Path, server_tmp: Path) -> None:
    """Without any recipient the source is told submissions are not accepted; nothing is stored."""
    proc = start_server(instance_dir, server_tmp)
    try:
        source = Source(proc.url)
        source.start()
        page = source.http.get("/conversation")
        assert page.status_code == 200
        assert "not accepting submissions" in page.text
        assert 'action="/submit"' not in page.text
        body, content_type = browser_multipart(
            [("csrf_token", source.csrf_token()), ("message", "hi")], []
        )
        response = source.http.post("/submit", content=body, headers={"content-type": content_type})
        assert response.status_code == 503
        assert_nothing_stored(instance_dir)
    finally:
        proc.stop()


@pytest.mark.parametrize("token", ["", "0" * 64, "not-hex"])
def test_missing_or_wrong_csrf_token_stores_nothing(
    shared_server: ServerProcess, shared_source: Source, token: str
) -> None:
    """A post without the session's CSRF token is refused with a 400 page."""
    source, instance_dir = shared_source, shared_server.instance
    before = holdings(instance_dir)
    source.start()
    response = source.submit("forged", token=token)
    assert response.status_code == 400
    assert "Form expired" in response.text
    assert_nothing_stored(instance_dir, before)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not multipart at all", "multipart/form-data; boundary=abc"),
        (
            b'--abc\r\nContent-Disposition: form-data; name="message"\r\n\r\ncut',
            "multipart/form-data; boundary=abc",
        ),
        (b"message=hello", "application/x-www-form-urlencoded"),
        (b"--abc\r\nX: y\r\n\r\nno name\r\n--abc--\r\n", "multipart/form-data; boundary=abc"),
    ],
    ids=["garbage", "truncated", "urlencoded", "no-disposition"],
)
def test_broken_multipart_is_a_clear_400(
    shared_server: ServerProcess, shared_source: Source, body: bytes, content_type: str
) -> None:
    """A body that is not a complete multipart form is refused cleanly; nothing is stored."""
    source, instance_dir = shared_source, shared_server.instance
    before = holdings(instance_dir)
    source.start()
    response = source.http.post("/submit", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert_nothing_stored(instance_dir, before)


def test_invalid_utf8_message_is_refused(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """A message that is not UTF-8 is refused rather than stored mangled."""
    source, instance_dir = shared_source, shared_server.instance
    before = holdings(instance_dir)
    source.start()
    body, content_type = browser_multipart([("csrf_token", source.csrf_token())], [])
    bad = _with_message(body, b"\xff\xfe bad")
    response = source.http.post("/submit", content=bad, headers={"content-type": content_type})
    assert response.status_code == 400
    assert_nothing_stored(instance_dir, before)


def _with_message(body: bytes, raw: bytes) -> bytes:
    boundary = body.split(b"\r\n", 1)[0]
    part = boundary + b'\r\nContent-Disposition: form-data; name="message"\r\n\r\n' + raw + b"\r\n"
    return body.replace(boundary + b"--", part + boundary + b"--")


def test_submitting_without_a_session_is_refused(shared_server: ServerProcess) -> None:
    """No session cookie (or a forged one): the 403 page, nothing stored."""
    server, instance_dir = shared_server, shared_server.instance
    before = holdings(instance_dir)
    body, content_type = browser_multipart([("csrf_token", "0" * 64), ("message", "hi")], [])
    for cookies in ({}, {"sealdrop_session": "A" * 86}, {"sealdrop_session": "garbage"}):
        response = httpx.post(
            server.url + "/submit",
            content=body,
            headers={"content-type": content_type},
            cookies=cookies,
        )
        assert response.status_code == 403
        assert "Not logged in" in response.text
    assert_nothing_stored(instance_dir, before)


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_posts_from_another_site_are_refused(shared_server: ServerProcess) -> None:
    """A form post that the browser marks as coming from another site (a forged start, login or
    logout) is refused with the 403 page and sets no cookie; same-origin posts work."""
    server, instance_dir = shared_server, shared_server.instance
    before = holdings(instance_dir)
    for path in ["/start", "/login", "/logout", "/submit"]:
        for site in ["cross-site", "same-site"]:
            response = httpx.post(
                server.url + path, data={"codename": "x"}, headers={"sec-fetch-site": site}
            )
            assert response.status_code == 403, (path, site)
            assert "set-cookie" not in response.headers
            assert "content-security-policy" in response.headers
    assert stored(instance_dir) == before[0]
    source = Source(server.url)
    same_origin = source.http.post(
        "/start",
        data={"form_token": source.form_token()},
        headers={"sec-fetch-site": "same-origin"},
    )
    assert same_origin.status_code == 200
