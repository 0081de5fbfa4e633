"""Helpers for the integration tests: a source's browser reduced to HTTP, browser-exact multipart
bodies, the CLI, and what the instance holds. (Kept out of conftest.py so test modules can import
them by a unique name.)"""

from __future__ import annotations

import html
import json
import re
import subprocess
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealdrop.testing import ServerProcess, sealdrop_command
from support_pages import csrf_token, form_token


@dataclass(frozen=True)
class JournalistKey:
    identity_file: Path
    recipient: str


def age_keygen(path: Path) -> JournalistKey:
    """An identity made by the stock age-keygen, as a journalist would on their own machine (or
    a reader device)."""
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", path.read_text())
    assert recipient
    return JournalistKey(path, recipient.group(0))


def run_cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sealdrop_command(*args), check=True, capture_output=True, text=True, timeout=120
    )


def cli_in_process(
    *args: Any, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`sealdrop ARGS` run in this process (typer's CliRunner) and reported as a process would be:
    exit status, stdout and stderr apart, stdin no terminal (and empty), ``env`` set (None:
    unset) for the command only. An exception the command lets out is printed to stderr as
    Python prints it, with exit status 1, so that a test's ``"Traceback" not in stderr`` means
    what it means for a process. The output is decoded as it was written: no newline
    translation, so a stray "\\r" shows. Saves the ~1.3 s of imports a new Python costs."""
    from typer.testing import CliRunner

    from sealdrop.cli.main import app

    result = CliRunner().invoke(app, [str(a) for a in args], env=env, prog_name="sealdrop")
    stdout = result.stdout_bytes.decode("utf-8", "replace")
    stderr = result.stderr_bytes.decode("utf-8", "replace")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(
        ["sealdrop", *map(str, args)], result.exit_code, stdout, stderr
    )


def setup_cli(*args: Any) -> str:
    """`sealdrop ARGS` run in this process (``cli_in_process``): for the steps most tests
    share (`init`, `recipients add`, `submissions list`, `user add`), the same code as
    ``run_cli`` without a new Python process (~1.3 s of CPU each: the imports). Returns what it
    printed to stdout; fails the test if the command fails. What a command does as a process is
    tested through ``run_cli``."""
    result = cli_in_process(*args, env={"NO_COLOR": "1"})
    assert result.returncode == 0, f"sealdrop {args}: {result.stdout}{result.stderr}"
    return result.stdout


BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def start_server(instance: Path, server_tmp: Path, **settings: str) -> ServerProcess:
    env = {"TMPDIR": str(server_tmp)}
    env.update({f"SEALDROP_{k.upper()}": v for k, v in settings.items()})
    return ServerProcess(instance, env=env).start()


# The HTTP clients of every Source and Api, closed at the end of the module that opened them
# (close_clients, from an autouse fixture): tests make throwaway sources freely, and a connection
# left to the garbage collector is a ResourceWarning, which fails the run.
_CLIENTS: list[httpx.Client] = []


# One TLS context for every test client: they speak plain HTTP to loopback, but httpx builds a
# context (the CA bundle loaded) for each new client unless handed one, ~25 ms of CPU a client,
# and the tests make a new Source or Api for nearly every case.
TLS_CONTEXT = httpx.create_ssl_context()


def track(client: httpx.Client) -> httpx.Client:
    """``client``, to be closed by close_clients (closing it earlier is fine)."""
    _CLIENTS.append(client)
    return client


def close_clients() -> None:
    while _CLIENTS:
        _CLIENTS.pop().close()


class Source:
    """A source's browser, reduced to HTTP: cookies, forms, no JavaScript."""

    def __init__(self, base_url: str) -> None:
        self.http = track(httpx.Client(base_url=base_url, timeout=300.0, verify=TLS_CONTEXT))

    def form_token(self, path: str = "/") -> str:
        """The pre-session anti-forgery token of the start or login form."""
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        return form_token(page.text)

    def start(self, confirm: bool = True) -> str:
        """Get a codename (and, like a careful source, type it back to confirm it)."""
        page = self.http.post("/start", data={"form_token": self.form_token()})
        assert page.status_code == 200, page.text
        match = re.search(r'<p class="codename"[^>]*>([^<]+)</p>', page.text)
        assert match, page.text
        codename = html.unescape(match.group(1))
        if confirm:
            token = self._csrf_from("/confirm")
            done = self.http.post("/confirm", data={"csrf_token": token, "codename": codename})
            assert done.status_code == 303, done.text
            assert done.headers["location"] == "/conversation"
        return codename

    def login(self, codename: str) -> httpx.Response:
        return self.http.post(
            "/login", data={"form_token": self.form_token("/login"), "codename": codename}
        )

    def logout(self) -> httpx.Response:
        return self.http.post("/logout", data={"csrf_token": self.csrf_token()})

    def csrf_token(self) -> str:
        return self._csrf_from("/conversation")

    def _csrf_from(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        return csrf_token(page.text)

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


def stored(instance: Path) -> list[dict[str, Any]]:
    """What `sealdrop submissions list --json` reports."""
    out = setup_cli("submissions", "list", instance, "--json")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def stored_since(instance: Path, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `sealdrop submissions list` reports that was not in ``before``: the items a test
    added to a shared instance."""
    earlier = {item["id"] for item in before}
    return [item for item in stored(instance) if item["id"] not in earlier]


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


def add_reply(instance: Path, source_id: str, text: str, journalist_recipient: str) -> str:
    """Store a journalist reply the way the journalist API will: an age file made elsewhere, to
    the source's reply key and the journalist's own key. Returns the reply id."""
    import pyrage

    from sealdrop.config import load_settings
    from sealdrop.services.container import build_services
    from sealdrop.storage.database import SqlDatabase

    settings = load_settings(instance)
    database = SqlDatabase(settings.database_url)
    try:
        with database.transaction() as repos:
            source = repos.sources.get(source_id)  # type: ignore[arg-type]
            assert source is not None
            source_key = source.reply_recipient
    finally:
        database.close()
    recipients = [
        pyrage.x25519.Recipient.from_str(source_key),
        pyrage.x25519.Recipient.from_str(journalist_recipient),
    ]
    ciphertext = pyrage.encrypt(text.encode("utf-8"), recipients)
    services = build_services(settings)
    try:
        return str(services.replies.store(source_id, ciphertext).id)  # type: ignore[arg-type]
    finally:
        services.close()
