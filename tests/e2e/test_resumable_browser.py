"""Uploads that resume, in a real browser with JavaScript on (Tor Browser "Standard"): the
conversation page's own script sends a 256 MiB file over tus through a loopback TCP proxy that
cuts the connection at 30% and 70% of the file; the upload finishes by itself and the stored
blob decrypts with the stock `age` to the exact bytes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support_browser import SCREENSHOTS
from support_http import JournalistKey, stored

from sealdrop.testing import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MiB = 1024 * 1024
SIZE = 256 * MiB


class CuttingProxy:
    """Forwards loopback TCP to ``target``; once the bytes sent upstream (all connections
    together) pass each of ``cuts``, it closes every open connection, as a dropped circuit does."""

    def __init__(
        self, target: int, cuts: list[int], hold: bool = False, stall: bool = False
    ) -> None:
        self._target = target
        # With ``hold``, a cut also refuses new connections until ``release``: a network that
        # stays down, so that the page is reloaded before the upload can go on.
        self._hold = hold
        # With ``stall``, a cut closes nothing: the connections open then stop moving data for
        # good, as a circuit that stalls without an error (new connections work).
        self._stall = stall
        self._stalled: set[socket.socket] = set()
        self.blocked = False
        self._cuts = sorted(cuts)
        self.cut_at: list[int] = []
        self._sent = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(256 * 1024):
                if src in self._stalled or dst in self._stalled:
                    threading.Event().wait()  # never forwards again, never closes
                dst.sendall(data)
                if counted:
                    self._count(len(data))
        if src in self._stalled or dst in self._stalled:
            # A stalled connection passes nothing on, not even the other side's close (the
            # server cutting it after its body timeout): only the page's watchdog can end it.
            threading.Event().wait()
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _count(self, n: int) -> None:
        with self._lock:
            self._sent += n
            if self._cuts and self._sent >= self._cuts[0]:
                self.cut_at.append(self._cuts.pop(0))
                self.blocked = self._hold
                if self._stall:
                    self._stalled.update(self._open)
                    self._open.clear()
                    return
                for sock in self._open:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                self._open.clear()

    @property
    def sent(self) -> int:
        return self._sent

    def release(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(server.port, [int(SIZE * 0.3), int(SIZE * 0.7)])
    yield cutting
    cutting.close()


def start_source(page: Page, base: str) -> None:
    """A new source, codename confirmed, on the conversation page."""
    page.goto(base + "/")
    page.get_by_role("button", name="Get a codename and start", exact=True).click()
    codename = page.locator("p.codename").inner_text().strip()
    page.get_by_role("link", name="I have written down my codename", exact=True).click()
    page.get_by_label("Codename (seven words)").fill(codename)
    page.get_by_role("button", name="Continue", exact=True).click()
    page.wait_for_url(base + "/conversation")


def decrypted(instance_dir: Path, journalist_key: JournalistKey) -> bytes:
    (item,) = stored(instance_dir)
    return subprocess.run(
        ["age", "-d", "-i", str(journalist_key.identity_file), item["path"]],
        check=True,
        capture_output=True,
    ).stdout


@pytest.mark.slow
def test_browser_upload_resumes_by_itself_after_two_dropped_connections(
    browser: Browser,
    server: ServerProcess,
    proxy: CuttingProxy,
    instance_dir: Path,
    journalist_key: JournalistKey,
    tmp_path: Path,
) -> None:
    """256 MiB through a proxy that cuts at 30% and 70%: the page's script resumes after each cut,
    lands on the "Received" page, and `age -d` gives the exact bytes."""
    content = os.urandom(SIZE)
    upload = tmp_path / "big.bin"
    upload.write_bytes(content)
    base = f"http://127.0.0.1:{proxy.port}"
    context = browser.new_context(java_script_enabled=True, locale="en-US")
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        start_source(page, base)
        page.get_by_label("Documents (optional)").set_input_files(str(upload))
        page.get_by_role("button", name="Send securely", exact=True).click()
        # Generous: a cut that leaves the browser's connection stalled rather than closed (seen
        # once on a loaded machine) is given up by the script's 30 s stall watchdog.
        page.wait_for_url(base + "/submitted", timeout=150_000)
    finally:
        context.close()
    assert proxy.cut_at == [int(SIZE * 0.3), int(SIZE * 0.7)]  # both cuts happened
    plaintext = decrypted(instance_dir, journalist_key)
    assert hashlib.sha256(plaintext).digest() == hashlib.sha256(content).digest()


@pytest.mark.slow
def test_browser_upload_resumes_after_a_reload_from_the_server_offset(
    browser: Browser,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    tmp_path: Path,
) -> None:
    """The network goes down at 40% and stays down; the source reloads the page, chooses the same
    file and sends again: the upload goes on from the server's offset (far less than the whole
    file is sent again) and decrypts to the exact bytes."""
    size = 64 * MiB
    proxy = CuttingProxy(server.port, [int(size * 0.4)], hold=True)
    content = os.urandom(size)
    upload = tmp_path / "report.bin"
    upload.write_bytes(content)
    base = f"http://127.0.0.1:{proxy.port}"
    context = browser.new_context(java_script_enabled=True, locale="en-US")
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        start_source(page, base)
        page.get_by_label("Documents (optional)").set_input_files(str(upload))
        page.get_by_role("button", name="Send securely", exact=True).click()
        # Within the script's 30 s stall watchdog, if the cut left the connection hanging.
        page.get_by_text("The connection was lost. Trying again…").wait_for(timeout=60_000)
        # Kept to be looked at: what a source sees while the script waits for the network.
        (SCREENSHOTS / "en").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "en" / "upload-connection-lost-desktop.png")
        before = proxy.sent
        proxy.release()
        page.reload()
        page.get_by_label("Documents (optional)").set_input_files(str(upload))
        page.get_by_role("button", name="Send securely", exact=True).click()
        page.wait_for_url(base + "/submitted", timeout=60_000)
    finally:
        context.close()
        proxy.close()
    # Sent again after the reload: the rest from the last durable chunk (checkpoints are 8 MiB
    # apart), not the whole file.
    assert proxy.sent - before < size * 0.6 + 9 * MiB
    assert decrypted(instance_dir, journalist_key) == content


@pytest.mark.slow
# The server holds the stalled request until its body timeout cuts it (each period must bring
# data), answering 409 "busy" to the resumed one meanwhile: a short period keeps the test short.
@pytest.mark.parametrize(
    "server_settings", [{"connections_body_timeout_seconds": "10"}], indirect=True
)
def test_a_stalled_connection_is_given_up_after_30_seconds_and_the_upload_resumes(
    browser: Browser,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    tmp_path: Path,
) -> None:
    """At half the file every open connection stops moving data without closing (a stalled
    circuit: no error ever comes). The page's script gives the request up after 30 s without
    progress, asks the server where it got to and finishes: exact bytes, and it took the watchdog
    (over 30 s), not an error, to go on; meanwhile the server answers the resumed request 409
    until its body timeout has cut the stalled one."""
    size = 16 * MiB
    proxy = CuttingProxy(server.port, [size // 2], stall=True)
    content = os.urandom(size)
    upload = tmp_path / "stalled.bin"
    upload.write_bytes(content)
    base = f"http://127.0.0.1:{proxy.port}"
    context = browser.new_context(java_script_enabled=True, locale="en-US")
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        start_source(page, base)
        page.get_by_label("Documents (optional)").set_input_files(str(upload))
        began = time.monotonic()
        page.get_by_role("button", name="Send securely", exact=True).click()
        page.wait_for_url(base + "/submitted", timeout=150_000)
        took = time.monotonic() - began
    finally:
        context.close()
        proxy.close()
    assert proxy.cut_at == [size // 2]
    assert took > 30, took
    plaintext = decrypted(instance_dir, journalist_key)
    assert hashlib.sha256(plaintext).digest() == hashlib.sha256(content).digest()
