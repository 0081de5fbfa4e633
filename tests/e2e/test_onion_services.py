"""Sealdrop's own onion services, reached through a private Tor network on 127.0.0.1.

`sealdrop serve` runs its managed tor as the onion host of the session's private network (its
DirAuthority lines come in through `[tor] extra_torrc`); a client tor offers a SOCKS port, as a
source's Tor Browser or a journalist's tor would. Through it:

- the whole source flow, with an HTTP client and with Chromium (JavaScript off);
- the reader syncing through the journalist API onion with its client key; without a key, and
  after `access revoke`, the API onion cannot be reached;
- the proof-of-work defense read back from the running tor;
- one circuit hammering the source onion gets 429s while another circuit is served.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from socksio.exceptions import ProtocolError as SocksProtocolError
from support_api import Account, age_decrypt, cli_account
from support_browser import submit
from support_http import JournalistKey, Source, add_reply, run_cli, stored
from support_tor import MISSING_KEY, Phases, PrivateTorNetwork, TorClient, attempt_connection
from test_source_browser import M

from sealdrop.errors import TorError
from sealdrop.testing import ServerProcess, sealdrop_command
from sealdrop.tor.control import ControlConnection, hs_desc_events
from sealdrop.tor.layout import TorLayout

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FilePayload

pytestmark = pytest.mark.slow

# Low enough that a test can exceed it in a second, high enough for a whole browser flow.
CIRCUIT_BURST = 40
CIRCUIT_PER_MINUTE = 40
IDENTITY_PASSPHRASE = "correct horse battery staple onion"


@dataclass
class OnionInstance:
    instance: Path
    server: ServerProcess
    layout: TorLayout
    source_url: str
    api_url: str
    journalist: Account
    journalist_key: JournalistKey
    root: Path


def retry_until(action: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run ``action`` until it stops raising: a fresh onion takes a few seconds to be published,
    and the first circuits in so small a network are sometimes refused and rebuilt."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (httpx.TransportError, SocksProtocolError, AssertionError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing after {timeout} s: {exc!r}") from exc
            time.sleep(1.0)


@pytest.fixture(scope="module")
def client(tor_network: PrivateTorNetwork) -> Iterator[TorClient]:
    """A source's tor: a SOCKS port and no client keys."""
    tor = tor_network.start_client("source-client")
    yield tor
    tor.stop()


@pytest.fixture(scope="module")
def onion(
    tor_network: PrivateTorNetwork, request: pytest.FixtureRequest
) -> Iterator[OnionInstance]:
    """An instance served with its managed tor joined to the private network, a journalist
    account, and the organisation key; returns once the source onion answers through Tor."""
    phase = Phases("onion fixture")
    # The instance first: the network may still be starting (in the background) meanwhile.
    root = Path(tempfile.mkdtemp(prefix="sdo", dir="/tmp"))  # unix socket paths stay short
    instance = root / "instance"
    run_cli("init", instance)
    key_path = root / "journalist-identity.txt"
    subprocess.run(["age-keygen", "-o", str(key_path)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", key_path.read_text())
    assert recipient
    journalist_key = JournalistKey(key_path, recipient.group(0))
    run_cli("recipients", "add", instance, journalist_key.recipient, "--name", "desk")
    journalist = cli_account(instance, "reporter")
    phase("instance, key and account made")
    extra = root / "private-network.torrc"
    extra.write_text(tor_network.torrc_for_onion_host())  # waits for the network
    client: TorClient = request.getfixturevalue("client")
    phase("the network up, the source's tor bootstrapped")
    server = ServerProcess(
        instance,
        env={
            "SEALDROP_TOR_ENABLED": "yes",
            "SEALDROP_TOR_EXTRA_TORRC": str(extra),
            "SEALDROP_CIRCUITS_BURST": str(CIRCUIT_BURST),
            "SEALDROP_CIRCUITS_REQUESTS_PER_MINUTE": str(CIRCUIT_PER_MINUTE),
        },
    ).start()
    phase("server started")
    try:
        layout = TorLayout.of_instance(instance)
        addresses = retry_until(
            lambda: _both(layout.source_onion_address(), layout.api_onion_address()),
            30,
            "onion hostnames",
        )
        phase("onion hostnames written")
        setup = OnionInstance(
            instance,
            server,
            layout,
            f"http://{addresses[0]}",
            f"http://{addresses[1]}",
            journalist,
            journalist_key,
            root,
        )
        with httpx.Client(proxy=client.socks_url("warm-up"), timeout=60) as http:
            retry_until(
                lambda: _ok(http.get(setup.source_url + "/")), 120, "source onion via SOCKS"
            )
        phase("source onion answered through Tor")
        yield setup
    finally:
        server.stop()
        if os.environ.get("SEALDROP_KEEP_TOR_LOGS") is None:
            shutil.rmtree(root, ignore_errors=True)


def _both(source: str | None, api: str | None) -> tuple[str, str]:
    assert source
    assert api
    return source, api


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.status_code
    return response


def new_items(onion: OnionInstance, known_sources: set[str]) -> dict[str, dict[str, Any]]:
    """The stored items of the one source that is not in ``known_sources``, by kind (the listing
    is not in arrival order, and other tests of this module add sources too)."""
    fresh = [item for item in stored(onion.instance) if item["source"] not in known_sources]
    assert len({item["source"] for item in fresh}) == 1, fresh
    return {item["kind"]: item for item in fresh}


def known_sources(onion: OnionInstance) -> set[str]:
    return {item["source"] for item in stored(onion.instance)}


def onion_source(onion: OnionInstance, client: TorClient, isolation: str) -> Source:
    """A source's browser reduced to HTTP, whose requests go through Tor on their own circuit."""
    source = Source(onion.source_url)
    source.http.close()
    source.http = httpx.Client(
        base_url=onion.source_url, proxy=client.socks_url(isolation), timeout=120
    )
    return source


def test_source_flow_over_the_onion_with_an_http_client(
    onion: OnionInstance, client: TorClient
) -> None:
    """Start, confirm, send a message and a file, log out, log in, read a reply: all through
    the client's SOCKS port to the source onion; the stock age opens what was stored."""
    before = known_sources(onion)
    source = onion_source(onion, client, "http-flow")
    codename = source.start()
    file_content = os.urandom(200_000)
    sent = source.submit(
        "Over Tor: ünïcödé ✓", files=[("evidence.bin", file_content, "application/octet-stream")]
    )
    assert sent.status_code == 303, sent.text
    assert source.logout().status_code == 200
    assert source.login(codename).status_code == 303
    items = new_items(onion, before)
    message_item, file_item = items["message"], items["file"]
    add_reply(onion.instance, message_item["source"], "Received, thank you.", _recipient(onion))
    conversation = source.http.get("/conversation")
    assert conversation.status_code == 200
    assert "Received, thank you." in conversation.text
    identity = onion.journalist_key.identity_file
    assert age_decrypt(identity, Path(message_item["path"]).read_bytes()) == (
        "Over Tor: ünïcödé ✓".encode()
    )
    opened = age_decrypt(identity, Path(file_item["path"]).read_bytes())
    assert hashlib.sha256(opened).digest() == hashlib.sha256(file_content).digest()
    # The onion listener never sends the clearnet headers.
    assert "onion-location" not in conversation.headers
    assert "strict-transport-security" not in conversation.headers


def _recipient(onion: OnionInstance) -> str:
    return onion.journalist_key.recipient


@pytest.fixture(scope="module")
def tor_browser(client: TorClient) -> Iterator[Browser]:
    """Debian's Chromium, headless, JavaScript off, every connection through the client tor's
    SOCKS port (Chromium resolves names through a SOCKS5 proxy, so .onion names work)."""
    from playwright.sync_api import sync_playwright

    from support_chromium import CHROMIUM, CHROMIUM_ARGS

    proxy_args = [
        f"--proxy-server=socks5://127.0.0.1:{client.socks_port}",
        # Nothing may bypass the proxy, loopback included.
        "--proxy-bypass-list=<-loopback>",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + proxy_args
        )
        yield browser
        browser.close()


def test_source_flow_over_the_onion_in_chromium_without_javascript(
    onion: OnionInstance, tor_browser: Browser
) -> None:
    """The source flow in Chromium through Tor with JavaScript off: codename, confirmation,
    a message and a file, log out and in, and the reply shown as text."""
    context = tor_browser.new_context(java_script_enabled=False, locale="en-US")
    context.set_default_timeout(60_000)  # circuits in a fresh network can take a while
    page = context.new_page()
    before = known_sources(onion)
    try:
        url = onion.source_url
        retry_until(lambda: _ok_page(page.goto(url + "/")), 60, "Chromium to the onion")
        submit(page.get_by_role("button", name=M.START, exact=True))
        codename = page.locator("p.codename").inner_text().strip()
        assert len(codename.split()) == 7
        page.get_by_role("link", name=M.SAVED_IT, exact=True).click()
        page.get_by_label(M.CODENAME_FIELD).fill(codename)
        submit(page.get_by_role("button", name=M.CONTINUE, exact=True))
        assert page.url == url + "/conversation"
        page.get_by_label(M.MESSAGE_FIELD, exact=True).fill("Sent from Chromium over Tor.")
        notes: FilePayload = {
            "name": "notes.txt",
            "mimeType": "text/plain",
            "buffer": b"notes\n" * 100,
        }
        page.get_by_label(M.FILES_FIELD).set_input_files(files=[notes])
        response = submit(page.get_by_role("button", name=M.SEND, exact=True))
        assert response.status == 200
        assert page.url == url + "/submitted"
        submit(page.get_by_role("button", name=M.LOG_OUT, exact=True))
        page.goto(url + "/login")
        page.get_by_label(M.CODENAME_FIELD).fill(codename)
        submit(page.get_by_role("button", name=M.LOG_IN, exact=True))
        assert page.url == url + "/conversation"
        message_item = new_items(onion, before)["message"]
        add_reply(onion.instance, message_item["source"], "<b>Thanks</b>", _recipient(onion))
        page.reload()
        assert page.locator("ol.replies .reply").inner_text() == "<b>Thanks</b>"
        assert page.locator("main b").count() == 0
    finally:
        context.close()


def _ok_page(response: Any) -> None:
    assert response is not None
    assert response.status == 200


def test_proof_of_work_defense_is_active_on_the_source_onion(onion: OnionInstance) -> None:
    """`sealdrop status` reads the PoW option and circuit-id export back from the running tor."""
    text = run_cli("status", onion.instance).stdout
    assert "Tor: running" in text
    assert "bootstrapped 100%" in text
    assert "Proof-of-work defense (source onion): on" in text
    assert "Per-circuit limits: on" in text


def test_one_hammering_circuit_gets_429_while_another_is_served(
    onion: OnionInstance, client: TorClient
) -> None:
    """Circuit A sends more than the burst allows and gets 429 pages (with Retry-After and the
    normal error page); circuit B, at the same time, is served normally. The server's log never
    holds a circuit id."""
    with (
        httpx.Client(proxy=client.socks_url("hammer"), timeout=60) as hammer,
        httpx.Client(proxy=client.socks_url("bystander"), timeout=60) as bystander,
    ):
        retry_until(lambda: _ok(bystander.get(onion.source_url + "/")), 60, "bystander circuit")
        answers = [hammer.get(onion.source_url + "/") for _ in range(CIRCUIT_BURST + 10)]
        statuses = [answer.status_code for answer in answers]
        assert statuses.count(429) >= 5, statuses
        # The bucket refills one request every 60/CIRCUIT_PER_MINUTE s, so among the refused
        # requests a later one can be let in again (on a loaded machine each request through tor
        # takes longer, and more refills fall between them): check the last refusal, not
        # whichever request came next.
        refused = next(answer for answer in reversed(answers) if answer.status_code == 429)
        assert "retry-after" in refused.headers
        assert "content-security-policy" in refused.headers
        assert bystander.get(onion.source_url + "/").status_code == 200
    assert "fc00:dead:beef" not in onion.server.log()


def wait_for_uploads(layout: TorLayout, urls: list[str], timeout: float = 60.0) -> str:
    """Wait until the managed tor (just restarted) has published each onion: every upload it
    started has finished, at least one accepted, and a second passed with no new upload (its
    HS_DESC events, on a control connection of the test's own); says what was seen. Every
    directory then serves the new descriptors: a client that asked one still serving the old
    one would be let in by it (the revoked device) and sent to dead introduction points. Not
    an assertion: a tor that published before the connection was made is waited for until the
    timeout."""
    onions = {httpx.URL(url).host.removesuffix(".onion") for url in urls}
    started = dict.fromkeys(onions, 0)
    finished = dict.fromkeys(onions, 0)
    accepted = dict.fromkeys(onions, 0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            control = ControlConnection(layout.control_socket)
            break
        except TorError:  # the new tor is not listening yet
            if time.monotonic() > deadline:
                return "no control connection"
            time.sleep(0.1)
    try:
        lines = hs_desc_events(control)
        while time.monotonic() < deadline:
            try:
                fields = lines.get(timeout=1.0).split()  # "HS_DESC UPLOADED <onion> ..."
            except queue.Empty:
                if all(accepted.values()) and started == finished:
                    return f"{sum(accepted.values())} uploads accepted"
                continue
            if len(fields) > 2 and fields[2] in onions:
                action, onion = fields[1], fields[2]
                started[onion] += action == "UPLOAD"
                finished[onion] += action in ("UPLOADED", "FAILED")
                accepted[onion] += action == "UPLOADED"
        return f"not all seen within {timeout:.0f} s: {accepted}"
    finally:
        control.close()


# A sync takes ~5 s here; a revoked device's tor sometimes waits for a rendezvous that never
# comes (an old introduction point acknowledged it: test_tor_network's docstring), and answers
# only after its SocksTimeout, 2 minutes (the reader gives up after its own 60 s timeout, which
# covers the SOCKS handshake: reader/socks.py): not connected within this long counts as not
# connected, as in test_tor_network.
REVOKED_SYNC_PATIENCE = 30.0


def revoked_sync(onion: OnionInstance, data_dir: Path) -> str:
    """`reader sync` on a revoked device: it must not sync (refused, or no answer in time)."""
    try:
        result = reader(onion, data_dir, "sync", check=False, timeout=REVOKED_SYNC_PATIENCE)
    except subprocess.TimeoutExpired:
        return f"no answer within {REVOKED_SYNC_PATIENCE:.0f} s"
    assert result.returncode != 0, result.stdout
    return f"refused: {(result.stdout + result.stderr).strip()[-160:]}"


def reader(
    onion: OnionInstance, data_dir: Path, *args: Any, check: bool = True, timeout: float = 300
) -> Any:
    result = subprocess.run(
        sealdrop_command("reader", *args, "--data-dir", data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_reader_syncs_through_the_api_onion_with_its_client_key_until_revoked(
    onion: OnionInstance, tor_network: PrivateTorNetwork, client: TorClient
) -> None:
    """`access add` prints a client key; a journalist's tor holding it reaches the API onion and
    the reader inits and syncs through it. A tor without the key cannot connect. After
    `access revoke` the device's tor (which had the service's descriptor) cannot connect either
    (refused, or no answer within 30 s), while the source onion comes back."""
    phase = Phases("reader over the API onion")
    added = run_cli("access", "add", onion.instance, "laptop")
    # access add waits for tor's HS_DESC events: the new descriptor reached a directory.
    assert "tor has published the new list of devices" in added.stderr
    line = added.stdout.strip()
    auth_dir = onion.root / "journalist-auth"
    auth_dir.mkdir(mode=0o700)
    (auth_dir / "laptop.auth_private").write_text(line + "\n")
    phase("access add")
    journalist_tor = tor_network.start_client("journalist", client_auth_dir=auth_dir)
    phase("the journalist's tor bootstrapped")
    try:
        # A source (no key) is refused at the SOCKS layer: its tor fetches the descriptor and
        # cannot decrypt it, and says so (0xF4, client authorization missing). Asked with a raw
        # SOCKS request for that code: any transport error, a 60 s wait included, used to pass.
        api_host = onion.api_url.removeprefix("http://")
        assert attempt_connection(client, api_host, 80, "nokey") == MISSING_KEY
        phase("the keyless attempt refused")

        proxy = journalist_tor.socks_url()
        with httpx.Client(proxy=proxy, timeout=60) as http:
            retry_until(
                lambda: _ok(http.get(onion.api_url + "/api/v1/openapi.json")),
                90,
                "API onion with the client key",
            )
        phase("the API onion answered with the client key")
        secrets = onion.root / "secrets"
        secrets.mkdir(mode=0o700)
        (secrets / "identity").write_text(IDENTITY_PASSPHRASE + "\n")
        (secrets / "account").write_text(onion.journalist.passphrase + "\n")
        data_dir = onion.root / "reader-data"
        reader(
            onion,
            data_dir,
            "init",
            "--server",
            onion.api_url,
            "--proxy",
            proxy.replace("socks5://", "socks5h://"),
            "--username",
            onion.journalist.username,
            "--identity-passphrase-file",
            secrets / "identity",
            "--passphrase-file",
            secrets / "account",
            "--totp",
            onion.journalist.fresh_code(),
        )
        phase("reader init")
        synced = reader(onion, data_dir, "sync")
        assert "source(s) updated" in synced.stdout
        listed = reader(onion, data_dir, "list").stdout
        assert listed.strip()
        phase("reader sync and list")

        revoked = run_cli("access", "revoke", onion.instance, "laptop")
        assert "restarting" in revoked.stderr
        phase("access revoke")
        # Probe only once the restarted tor has published both onions again: until then the
        # directories serve the old descriptors (the device would be refused only because the
        # old introduction points are gone), and each failed attempt counts against a client
        # tor's "asked this directory recently" limit, after which it asks none for a while:
        # the suspected cause of a run of the old test where these steps took ~40 s longer.
        republished = wait_for_uploads(onion.layout, [onion.source_url, onion.api_url])
        phase(f"the restarted tor published both onions ({republished})")

        phase(f"a sync after the revocation: {revoked_sync(onion, data_dir)}")
        # Sources are back once tor has republished the source onion.
        with httpx.Client(proxy=client.socks_url("after-revoke"), timeout=60) as http:
            retry_until(lambda: _ok(http.get(onion.source_url + "/")), 120, "source onion back")
        phase("the source onion back")
        phase(f"another sync: {revoked_sync(onion, data_dir)}")
    finally:
        journalist_tor.stop()
