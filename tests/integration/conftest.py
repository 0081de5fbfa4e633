"""Fixtures of the integration tests: a real Sealdrop server in a child process, a journalist key
made by the real `age-keygen`, and a source that talks to the server like a browser with
JavaScript off.

Two kinds of server: ``server`` is a new instance for one test (for tests that count what the
instance holds, stop it, or change its settings); ``shared_server`` is one instance for a whole
module, for tests that only need *a* running instance: each of them makes its own sources and
checks only what it made, so what another test left there can neither fail nor pass it. Setting
up an instance (`init`, `recipients add`, `user add`) runs the CLI in this process
(``setup_cli``): a new Python process costs ~1.3 s of imports, and what a command does as a
process is tested where that is the point (``run_cli``, the reader's tests in a pipe or on a
terminal)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_http import (
    JournalistKey,
    Source,
    age_keygen,
    close_clients,
    setup_cli,
    start_server,
)

from sealdrop.testing import ServerProcess


@pytest.fixture(scope="module", autouse=True)
def _close_http_clients() -> Iterator[None]:
    """Close the connections of every Source and Api the module's tests and fixtures opened."""
    yield
    close_clients()


@pytest.fixture
def journalist_key(tmp_path: Path, age_keygen_bin: str) -> JournalistKey:
    """An age identity made by the stock age-keygen, as a journalist would on their own machine."""
    return age_keygen(tmp_path / "journalist-identity.txt")


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database the instance uses: SQLite by default; a test parametrised with
    ``indirect=["backend"]`` and "postgres" runs against the session's real PostgreSQL server
    (the CLI and the server see it through SEALDROP_DATABASE_URL)."""
    name = str(getattr(request, "param", "sqlite"))
    if name == "postgres":
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    return name


@pytest.fixture
def instance_dir(tmp_path: Path, backend: str) -> Path:
    directory = tmp_path / "instance"
    setup_cli("init", directory)
    return directory


@pytest.fixture
def server_tmp(tmp_path: Path) -> Path:
    """The server's TMPDIR, so a test can check that nothing plaintext lands in it."""
    path = tmp_path / "server-tmp"
    path.mkdir()
    return path


@pytest.fixture
def server(
    instance_dir: Path, journalist_key: JournalistKey, server_tmp: Path
) -> Iterator[ServerProcess]:
    """A running server with one organisation recipient: the journalist's key."""
    setup_cli("recipients", "add", instance_dir, journalist_key.recipient, "--name", "journalist")
    proc = start_server(instance_dir, server_tmp)
    yield proc
    proc.stop()


@pytest.fixture
def source(server: ServerProcess) -> Iterator[Source]:
    src = Source(server.url)
    yield src
    src.http.close()


@pytest.fixture(scope="module")
def shared_journalist_key(
    tmp_path_factory: pytest.TempPathFactory, age_keygen_bin: str
) -> JournalistKey:
    """The journalist's key of ``shared_server``'s instance."""
    return age_keygen(tmp_path_factory.mktemp("journalist") / "journalist-identity.txt")


@pytest.fixture(scope="module")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, shared_journalist_key: JournalistKey
) -> Iterator[ServerProcess]:
    """One running server (SQLite) for the module's tests, its instance at ``.instance``, the
    journalist's key its one recipient. A test using it must not depend on what other tests did:
    it makes its own sources and looks only at those (never at counts over the whole instance)."""
    root = tmp_path_factory.mktemp("shared")
    instance = root / "instance"
    setup_cli("init", instance)
    setup_cli(
        "recipients", "add", instance, shared_journalist_key.recipient, "--name", "journalist"
    )
    (root / "server-tmp").mkdir()
    proc = start_server(instance, root / "server-tmp")
    yield proc
    proc.stop()


@pytest.fixture
def shared_source(shared_server: ServerProcess) -> Iterator[Source]:
    """A new source's browser on ``shared_server``."""
    src = Source(shared_server.url)
    yield src
    src.http.close()


@pytest.fixture
def short_instance() -> Iterator[Path]:
    """An instance under a short path in /tmp: the unix sockets of its managed tor must fit in
    the 107 bytes of a socket address, which pytest's own temporary paths can exceed."""
    root = Path(tempfile.mkdtemp(prefix="sdt", dir="/tmp"))
    instance = root / "instance"
    setup_cli("init", instance)
    yield instance
    shutil.rmtree(root, ignore_errors=True)
