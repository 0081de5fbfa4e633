"""Fixtures of the browser tests: one headless Debian Chromium for the session (JavaScript off in
every context, as a source's Tor Browser on "Safest"), a real Sealdrop server per test, and a
journalist key made by the stock age-keygen."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The integration tests' helpers (a server process, the CLI, replies stored like the journalist
# API will) are reused by their unique module name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from support_browser import PHONE, prove_javascript_is_off
from support_http import JournalistKey, age_keygen, close_clients, setup_cli, start_server
from support_tor import TOR, TOR_GENCERT, PrivateTorNetwork, tor_is_installed

from sealdrop.testing import ServerProcess
from support_chromium import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, which would break every later test that runs its own loop.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium (and fonts-noto-core, "
            "fonts-noto-cjk). Run scripts/test, which installs them.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The Python package playwright is missing: pip install -e '.[test]'", pytrace=False
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles (no cookies), each proven to run no JavaScript."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(java_script_enabled=False, viewport=PHONE, locale="en-US")
        context.set_default_timeout(10_000)  # pages are local: fail fast, not after 30 s
        contexts.append(context)
        probe = context.new_page()
        prove_javascript_is_off(probe)
        probe.close()
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def requests_made() -> list[str]:
    """Every URL the test's browser pages asked for (checked: only the server's own origin)."""
    return []


@pytest.fixture
def page(new_context: Callable[[], BrowserContext], requests_made: list[str]) -> Page:
    context = new_context()
    context.on("request", lambda request: requests_made.append(request.url))
    return context.new_page()


@pytest.fixture(scope="module", autouse=True)
def _close_http_clients() -> Iterator[None]:
    """Close the connections of every Source and Api the module's tests and fixtures opened."""
    yield
    close_clients()


@pytest.fixture
def journalist_key(tmp_path: Path, age_bin: str, age_keygen_bin: str) -> JournalistKey:
    """An age identity made by the stock age-keygen, as a journalist would on their own machine
    (the tests open what the server stored with the stock age)."""
    return age_keygen(tmp_path / "journalist-identity.txt")


@pytest.fixture
def instance_dir(tmp_path: Path, journalist_key: JournalistKey) -> Path:
    """A new instance whose one organisation recipient is the journalist's key."""
    directory = tmp_path / "instance"
    setup_cli("init", directory)
    setup_cli("recipients", "add", directory, journalist_key.recipient, "--name", "journalist")
    return directory


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """SEALDROP_* settings of the test's server, e.g. ``{"limits_max_upload_bytes": "4096"}``
    (a test parametrises this fixture indirectly to set them)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def server(
    instance_dir: Path, tmp_path: Path, server_settings: dict[str, str]
) -> Iterator[ServerProcess]:
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    proc = start_server(instance_dir, server_tmp, **server_settings)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def tor_network(request: pytest.FixtureRequest) -> Iterator[PrivateTorNetwork]:
    """A private Tor network on 127.0.0.1 (3 directory authorities, 4 relays), built once per
    session (15-30 s, in the background: a test prepares what it needs meanwhile, and its first
    start_clients() or torrc_for_onion_host() waits for the network) in a short /tmp folder
    (unix socket paths must stay under 100 bytes). The folder, with every tor's log, is kept
    when a test failed or SEALDROP_TEST_TOR_LOG is set. It stops after the last of its tests in
    a row, not at the session's end (the hook in tests/support_session.py): idle, its nine tors
    would take CPU from the rest of the suite."""
    if not tor_is_installed():
        pytest.fail(
            f"{TOR} or {TOR_GENCERT} not found: the Tor tests need Debian's tor "
            "(apt-get install tor).",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="tn", dir="/tmp"))
    network = PrivateTorNetwork(root)
    try:
        network.start_in_background()
        yield network
    finally:
        network.stop()
        if request.session.testsfailed or os.environ.get("SEALDROP_TEST_TOR_LOG"):
            # Straight to the terminal: output of a session fixture's teardown is captured.
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"The private Tor network's logs are kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
