"""A real Sealdrop server in a child process, a journalist key made by the real `age-keygen`, and a
source that talks to the server over HTTP like a browser with JavaScript off."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealdrop.testing import ServerProcess, sealdrop_command


@dataclass(frozen=True)
class JournalistKey:
    identity_file: Path
    recipient: str


@pytest.fixture
def journalist_key(tmp_path: Path) -> JournalistKey:
    """An age identity made by the stock age-keygen, as a journalist would on their own machine."""
    if shutil.which("age-keygen") is None:
        pytest.fail("age-keygen not found: run the README's test command (installs Debian age)")
    path = tmp_path / "journalist-identity.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", path.read_text()).group(0)  # type: ignore[union-attr]
    return JournalistKey(path, recipient)


def run_cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sealdrop_command(*args), check=True, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database the instance uses: SQLite by default; a test parametrised with
    ``indirect=["backend"]`` and "postgres" runs against the session's real PostgreSQL server
    (the CLI and the server see it through SEALDROP_DATABASE_URL)."""
    name = str(getattr(request, "param", "sqlite"))
    if name == "postgres":
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    return name


BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


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


def start_server(instance: Path, server_tmp: Path, **settings: str) -> ServerProcess:
    env = {"TMPDIR": str(server_tmp)}
    env.update({f"SEALDROP_{k.upper()}": v for k, v in settings.items()})
    return ServerProcess(instance, env=env).start()


@pytest.fixture
def server(
    instance_dir: Path, journalist_key: JournalistKey, server_tmp: Path
) -> Iterator[ServerProcess]:
    """A running server with one organisation recipient: the journalist's key."""
    run_cli("recipients", "add", instance_dir, journalist_key.recipient, "--name", "journalist")
    proc = start_server(instance_dir, server_tmp)
    yield proc
    proc.stop()


class Source:
    """A source's browser, reduced to HTTP: cookies, forms, no JavaScript."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=300.0)

    def start(self) -> str:
        page = self.http.post("/start")
        assert page.status_code == 200, page.text
        match = re.search(r'<p class="codename"[^>]*>([^<]+)</p>', page.text)
        assert match, page.text
        return html.unescape(match.group(1))

    def csrf_token(self) -> str:
        page = self.http.get("/submit")
        assert page.status_code == 200, page.text
        match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert match, page.text
        return match.group(1)

    def submit(
        self,
        message: str = "",
        files: list[tuple[str, Any, str]] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        data = {"csrf_token": self.csrf_token() if token is None else token, "message": message}
        # Like a browser: an empty file input is still sent, as a part with an empty file name.
        parts = [("files", f) for f in files or [("", b"", "application/octet-stream")]]
        return self.http.post("/submit", data=data, files=parts)


@pytest.fixture
def source(server: ServerProcess) -> Iterator[Source]:
    src = Source(server.url)
    yield src
    src.http.close()


def stored(instance: Path) -> list[dict[str, Any]]:
    """What `sealdrop submissions list --json` reports."""
    import json

    out = run_cli("submissions", "list", instance, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def staging_files(instance: Path) -> list[Path]:
    return [p for p in (instance / "store" / "staging").rglob("*") if p.is_file()]


def browser_multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A multipart/form-data body encoded the way Chromium and Firefox encode one (WHATWG):
    in a file name only '"', CR and LF are escaped (as %22, %0D, %0A); everything else, NUL and
    backslash included, is sent as raw UTF-8."""
    boundary = "----SealdropTestBoundary" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for filename, content, content_type in files:
        escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{escaped}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
