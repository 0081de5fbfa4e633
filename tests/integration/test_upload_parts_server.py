"""One request stores at most one message and MAX_ITEMS_PER_SUBMISSION items, against a real
server: more message parts are a 400, more parts than the cap a 413, nothing of a refused body is
stored, and the server's open file descriptors do not grow with the parts of an upload in flight.

Before, only file parts were counted: a 325 KB body of 5,000 message parts stored 5,000 items,
and each staged part held a descriptor until the request ended (20,000 parts: 19,052 descriptors,
then 503s)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from support_http import BOTH_BACKENDS, Source, browser_multipart, staging_files, stored

from sealdrop.services.submissions import MAX_ITEMS_PER_SUBMISSION
from sealdrop.testing import ServerProcess


def blob_files(instance: Path) -> list[Path]:
    return [p for p in (instance / "store" / "blobs").rglob("*") if p.is_file()]


def assert_nothing_stored(instance: Path) -> None:
    assert stored(instance) == []
    assert staging_files(instance) == []
    assert blob_files(instance) == []


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@BOTH_BACKENDS
def test_message_parts_after_the_first_are_a_400_and_nothing_is_stored(
    server: ServerProcess, source: Source, instance_dir: Path
) -> None:
    """Bodies with 2, 500 and 5,000 message parts (and a file) get the "More than one message"
    page; no row, no blob, no staging file is left; the source can then send normally."""
    source.start()
    for count in (2, 500, 5000):
        fields = [("csrf_token", source.csrf_token())]
        fields += [("message", f"message number {i}") for i in range(count)]
        body, content_type = browser_multipart(fields, [("a.txt", b"a file", "text/plain")])
        response = source.http.post("/submit", content=body, headers={"content-type": content_type})
        assert response.status_code == 400, (count, response.text[:300])
        assert "More than one message" in response.text
        assert "nothing was stored" in response.text
        wait_for(lambda: staging_files(instance_dir) == [])
        assert_nothing_stored(instance_dir)
    assert source.submit("now a single message").status_code == 303
    assert len(stored(instance_dir)) == 1


@BOTH_BACKENDS
def test_file_parts_beyond_the_cap_are_a_413_and_nothing_is_stored(
    server: ServerProcess, source: Source, instance_dir: Path
) -> None:
    """A message and 500 files, far beyond MAX_ITEMS_PER_SUBMISSION, get the "Too many files"
    page (413); none of the items staged before the refusal is kept."""
    source.start()
    files = [(f"{i}.txt", os.urandom(512), "text/plain") for i in range(500)]
    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token()), ("message", "hello")], files
    )
    response = source.http.post("/submit", content=body, headers={"content-type": content_type})
    assert response.status_code == 413, response.text[:300]
    assert "Too many files" in response.text
    assert "Nothing was stored" in response.text
    wait_for(lambda: staging_files(instance_dir) == [])
    assert_nothing_stored(instance_dir)


def test_descriptors_stay_bounded_while_an_upload_of_many_parts_is_in_flight(
    server: ServerProcess, source: Source, instance_dir: Path
) -> None:
    """While an upload of a message and MAX - 1 files is in flight with MAX - 1 parts already
    staged, the server holds about as many descriptors as before it began (each staged part is
    closed once written), and once the rest arrives all of them are stored."""
    source.start()
    files = [
        (f"{i}.txt", os.urandom(1024), "text/plain") for i in range(MAX_ITEMS_PER_SUBMISSION - 1)
    ]
    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token()), ("message", "hello")], files
    )
    process = psutil.Process(server.pid)
    baseline = process.num_fds()
    # Everything up to the middle of the last file: every part before it is complete.
    cut = body.rindex(files[-1][1][:64]) + 8
    cookie = "; ".join(f"{k}={v}" for k, v in source.http.cookies.items())
    head = (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body[:cut])
        wait_for(lambda: len(staging_files(instance_dir)) >= MAX_ITEMS_PER_SUBMISSION - 1)
        in_flight = process.num_fds()
        sock.sendall(body[cut:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 303"), answer[:300]
    # A staged part being written, the connection, an age child's pipes: a few, not one per part.
    assert in_flight - baseline <= 16, (baseline, in_flight)
    wait_for(lambda: len(stored(instance_dir)) == MAX_ITEMS_PER_SUBMISSION)
    assert staging_files(instance_dir) == []
    assert process.num_fds() - baseline <= 16
