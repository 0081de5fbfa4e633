"""Helpers for the journalist API tests: accounts made with the real CLI, TOTP codes that are
never replayed, a bearer-token client, and the journalist's side of the cryptography done with
the stock `age` tools and pyrage (as the reader will do it, on the journalist's own machine)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pyrage
from support_http import TLS_CONTEXT, Source, setup_cli, start_server, track
from support_http import age_keygen as age_keygen  # where the API tests import it from

from sealdrop.config import load_settings
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import ServerProcess

TOTP_INTERVAL = 30
# How close to the end of a TOTP step a login may start and still count on the step before:
# a login takes well under a second (one Argon2 verification), this leaves a wide margin.
STEP_MARGIN_SECONDS = 5


# -- accounts --------------------------------------------------------------------------------


@dataclass
class Account:
    """Credentials as the person who created the account received them (shown once)."""

    username: str
    passphrase: str
    totp_secret: str
    id: str
    role: str = "journalist"
    # The latest TOTP step sent together with the right passphrase: the server refuses that step
    # and every earlier one from then on (a code works once).
    last_step: int = -(2**31)

    def next_step(self) -> int:
        """The lowest time step the server will take for this account now.

        The server accepts one step either side of its own and refuses a step it has seen; the
        lowest acceptable step goes first, so that three logins fit in one 30 s step before
        anyone has to wait.
        """
        while True:
            now = time.time()
            current = int(now // TOTP_INTERVAL)
            lowest = current - 1
            if now % TOTP_INTERVAL > TOTP_INTERVAL - STEP_MARGIN_SECONDS:
                lowest = current  # the server may reach the next step before it checks
            step = max(self.last_step + 1, lowest)
            if step <= current + 1:
                return step
            time.sleep((step - 1) * TOTP_INTERVAL - now + 0.05)

    def fresh_code(self) -> str:
        """A code the server has not seen; it counts as used from now on."""
        self.last_step = self.next_step()
        return code_at(self.totp_secret, self.last_step)

    def unused_code(self) -> str:
        """A valid code, for a login meant to fail for another reason: the server does not
        mark a step used unless the whole login succeeds."""
        return code_at(self.totp_secret, self.next_step())

    def reenrol(self, enrolment: str) -> None:
        """Take the new TOTP secret of an otpauth URI (or CLI output holding one) after a
        reset-2fa; the server's used-step mark stays, so ``last_step`` does too."""
        self.totp_secret = totp_secret_of(enrolment)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL).at(step * TOTP_INTERVAL)


def totp_secret_of(text: str) -> str:
    """The TOTP secret of the otpauth:// URI in ``text``."""
    match = re.search(r"otpauth://\S+", text)
    assert match, text
    uri = urlparse(match.group(0))
    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    (secret,) = parse_qs(uri.query)["secret"]
    return secret


def cli_account(instance: Path, username: str, *, admin: bool = False) -> Account:
    """`sealdrop user add` (run in this process): the passphrase is on the third line, the secret
    in the otpauth URI."""
    out = setup_cli("user", "add", instance, username, *(["--admin"] if admin else []))
    lines = out.splitlines()
    created = re.search(r"\(id ([0-9a-f]+)\)", lines[0])
    assert created, out
    passphrase = lines[2].strip()
    assert len(passphrase.split()) == 7, out
    return Account(
        username=username,
        passphrase=passphrase,
        totp_secret=totp_secret_of(out),
        id=created.group(1),
        role="admin" if admin else "journalist",
    )


def cli_users(instance: Path) -> dict[str, dict[str, Any]]:
    """`sealdrop user list --json`, by username."""
    out = setup_cli("user", "list", instance, "--json")
    users = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {u["username"]: u for u in users}


def api_account(admin: Api, username: str, role: str = "journalist") -> Account:
    """An account an admin created over the API (POST /users)."""
    body = admin.ok("POST", "/users", 201, json={"username": username, "role": role})
    return Account(
        username=username,
        passphrase=body["passphrase"],
        totp_secret=totp_secret_of(body["totp_uri"]),
        id=body["user"]["id"],
        role=role,
    )


# -- the API ---------------------------------------------------------------------------------


class Api:
    """An HTTP client of the journalist API, anonymous until ``login``."""

    def __init__(
        self, server: ServerProcess, token: str | None = None, http: httpx.Client | None = None
    ) -> None:
        self.server = server
        self.http = http or track(
            httpx.Client(base_url=server.api_url + "/api/v1", timeout=60.0, verify=TLS_CONTEXT)
        )
        self.token = token

    def login_response(self, username: str, passphrase: str, totp: str) -> httpx.Response:
        return self.http.post(
            "/token", json={"username": username, "passphrase": passphrase, "totp": totp}
        )

    def login(self, account: Account) -> str:
        response = self.login_response(account.username, account.passphrase, account.fresh_code())
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"token", "expires_at"}
        return str(body["token"])

    def as_(self, token: str | None) -> Api:
        """The same connection pool, used with this token (None: anonymous)."""
        return Api(self.server, token, self.http)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("authorization", f"Bearer {self.token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """Call, assert the status, return the JSON body (None for an empty one)."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    # A few calls almost every test makes.

    def source(self, source_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/sources/{source_id}"))

    def submissions(self, source_id: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/sources/{source_id}/submissions")["items"])

    def replies(self, source_id: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/sources/{source_id}/replies")["items"])

    def all_sources(self) -> list[dict[str, Any]]:
        return list(self.ok("GET", "/sources", params={"limit": 200})["sources"])

    def latest_source(self) -> dict[str, Any]:
        """The source that changed last (say, the one that just submitted)."""
        return max(self.all_sources(), key=lambda s: s["version"])


def assert_api_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A JSON error body {"error": {"code", "message"}} with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
    return dict(body)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def instance_database(instance: Path) -> SqlDatabase:
    """A second handle on the running instance's database (SQLite allows it)."""
    return SqlDatabase(load_settings(instance).database_url)


# -- the journalist's machine: age keys and ciphertext ---------------------------------------


def age_decrypt(identity: Path, ciphertext: bytes) -> bytes:
    """`age -d -i identity`, reading the ciphertext from stdin; raises if it does not open."""
    return subprocess.run(
        ["age", "-d", "-i", str(identity)], input=ciphertext, check=True, capture_output=True
    ).stdout


def age_opens(identity: Path, ciphertext: bytes) -> bool:
    result = subprocess.run(
        ["age", "-d", "-i", str(identity)], input=ciphertext, capture_output=True, check=False
    )
    return result.returncode == 0


def x25519_stanzas(ciphertext: bytes) -> int:
    """How many X25519 recipients an age file's header names (grease stanzas not counted)."""
    header, sep, _ = ciphertext.partition(b"\n---")
    assert sep, "not an age file"
    lines = header.split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    return sum(1 for line in lines if line.startswith(b"-> X25519 "))


def new_age_recipient() -> str:
    """The public key of a fresh identity whose private half nobody keeps."""
    return str(pyrage.x25519.Identity.generate().to_public())


def encrypt_reply(text: str, *recipients: str) -> bytes:
    """A reply as the reader makes it: age, to the source's reply key and journalists' keys."""
    return bytes(
        pyrage.encrypt(
            text.encode("utf-8"), [pyrage.x25519.Recipient.from_str(r) for r in recipients]
        )
    )


# -- sources ---------------------------------------------------------------------------------


def new_source(
    server: ServerProcess, message: str, files: list[tuple[str, Any, str]] | None = None
) -> tuple[Source, str]:
    """A source that started, confirmed and submitted; returns it and its codename."""
    source = Source(server.url)
    codename = source.start()
    response = source.submit(message, files=files)
    assert response.status_code == 303, response.text
    return source, codename


def blob_files(instance: Path) -> set[Path]:
    return {p for p in (instance / "store" / "blobs").rglob("*") if p.is_file()}


def start_instance(root: Path, **settings: str) -> tuple[Path, ServerProcess]:
    """A fresh instance under ``root`` and its server (both listeners); stop it when done."""
    instance = root / "instance"
    setup_cli("init", instance)
    server_tmp = root / "server-tmp"
    server_tmp.mkdir()
    return instance, start_server(instance, server_tmp, **settings)
