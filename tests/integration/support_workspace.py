"""The reader's web interface entered and unlocked in this process, with a network the test can
switch off: shared by the workspace and triage tests (tests/integration/test_reader_*.py)."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator

import pytest
from support_reader_cli import IDENTITY_PASSPHRASE, ReaderSetup
from test_reader_ui import BASE, PORT, Ui, login

from sealdrop.errors import TokenExpired
from sealdrop.reader.client import ApiClient
from sealdrop.reader.profile import Profile
from sealdrop.reader.ui import create_app
from support_pages import AsgiBrowser


def closed_port() -> str:
    """The URL of a loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


class Network:
    """The interface's API client, to the server while ``up``, to a closed port otherwise; with
    the token saved in the data folder (as the interface's own client has)."""

    def __init__(self, reader: ReaderSetup) -> None:
        self.profile = Profile(reader.data_dir)
        self.server = reader.server.api_url
        self.dead = closed_port()
        self.up = True
        self.elsewhere: str | None = None  # another HTTP server that answers instead
        self.clients: list[ApiClient] = []

    def __call__(self) -> ApiClient:
        token = self.profile.load_token()
        if token is None:
            raise TokenExpired("no valid token")
        client = ApiClient(self.elsewhere or (self.server if self.up else self.dead))
        client.use_token(token)
        self.clients.append(client)
        return client


@pytest.fixture
def workspace(reader: ReaderSetup) -> Iterator[tuple[Ui, Network]]:
    """The interface, entered and unlocked, with a switchable network."""
    network = Network(reader)
    token = uuid.uuid4().hex
    browser = Ui(AsgiBrowser(create_app(Profile(reader.data_dir), PORT, token, network), BASE))
    login(browser, token)
    assert browser.post("/unlock", {"passphrase": IDENTITY_PASSPHRASE}).status_code == 303
    yield browser, network
    for client in network.clients:
        client.close()


def source_order(page: str) -> list[str]:
    return re.findall(r'<li class="source[^"]*" id="source-([0-9a-f]{32})"', page)
