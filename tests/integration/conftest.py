"""Fixtures of the integration tests: a real Sealdrop server in a child process, a journalist key
made by the real `age-keygen`, and a source that talks to the server like a browser with
JavaScript off."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_http import JournalistKey, Source, run_cli, start_server

from sealdrop.testing import ServerProcess


@pytest.fixture
def journalist_key(tmp_path: Path) -> JournalistKey:
    """An age identity made by the stock age-keygen, as a journalist would on their own machine."""
    if shutil.which("age-keygen") is None:
        pytest.fail("age-keygen not found: run the README's test command (installs Debian age)")
    path = tmp_path / "journalist-identity.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", path.read_text()).group(0)  # type: ignore[union-attr]
    return JournalistKey(path, recipient)


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
    run_cli("init", directory)
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
    run_cli("recipients", "add", instance_dir, journalist_key.recipient, "--name", "journalist")
    proc = start_server(instance_dir, server_tmp)
    yield proc
    proc.stop()


@pytest.fixture
def source(server: ServerProcess) -> Iterator[Source]:
    src = Source(server.url)
    yield src
    src.http.close()
