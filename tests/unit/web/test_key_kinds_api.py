"""The API and the instance's key kind, in-process: a post-quantum instance takes hybrid keys
(1,959 characters) and refuses classic ones with 422 wrong_key_kind; GET /keys says the kind and
lists only keys of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sealdrop.config import load_settings
from sealdrop.crypto import passwords
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.services.accounts import NewAccount
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.testing import FakeClock
from sealdrop.web.api.app import create_api_app


@dataclass
class Api:
    services: Services
    app: Any
    clock: FakeClock
    admin: NewAccount

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.clock.advance(passwords.TOTP_INTERVAL)  # a fresh code: each is usable once
        code = passwords.totp_code(self.admin.totp_secret, self.clock.now())
        token = self.services.auth.login(self.admin.user.username, self.admin.passphrase, code)
        headers = {"Authorization": f"Bearer {token.token}"}

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, "/api/v1" + url, headers=headers, **kwargs)

        return anyio.run(go)


def make(tmp_path: Path, post_quantum: bool) -> Iterator[Api]:
    instance = init_instance(tmp_path / "instance")
    clock = FakeClock()
    env = {"SEALDROP_CRYPTO_POST_QUANTUM": "true" if post_quantum else "false"}
    services = build_services(load_settings(instance, env=env), clock=clock)
    admin = services.accounts.create("chief", "admin", actor="test")
    yield Api(services, create_api_app(services), clock, admin)
    services.close()


@pytest.fixture
def hybrid_api(tmp_path: Path) -> Iterator[Api]:
    yield from make(tmp_path, post_quantum=True)


@pytest.fixture
def classic_api(tmp_path: Path) -> Iterator[Api]:
    yield from make(tmp_path, post_quantum=False)


def key(post_quantum: bool) -> str:
    return str(recipient_of(generate_identity(post_quantum=post_quantum)))


def test_hybrid_instance_takes_hybrid_keys_and_lists_them(hybrid_api: Api) -> None:
    """POST /me/keys and POST /recipients accept age1pq1 keys; GET /keys returns them and
    post_quantum: true."""
    device, org = key(True), key(True)
    assert hybrid_api.call("POST", "/me/keys", json={"public_key": device}).status_code == 201
    assert hybrid_api.call("POST", "/recipients", json={"public_key": org}).status_code == 201
    answer = hybrid_api.call("GET", "/keys").json()
    assert answer == {"keys": [org, device], "post_quantum": True}


@pytest.mark.parametrize("path", ["/me/keys", "/recipients"])
def test_hybrid_instance_refuses_classic_keys_with_422(hybrid_api: Api, path: str) -> None:
    """A classic key gets 422 wrong_key_kind, with a message saying what to register instead."""
    response = hybrid_api.call("POST", path, json={"public_key": key(False)})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "wrong_key_kind"
    assert "age1pq1" in error["message"]


def test_classic_instance_lets_hybrid_keys_wait(classic_api: Api) -> None:
    """On a classic instance a hybrid device key registers (201) but GET /keys leaves it out and
    says post_quantum: false."""
    classic, hybrid = key(False), key(True)
    assert classic_api.call("POST", "/me/keys", json={"public_key": classic}).status_code == 201
    assert classic_api.call("POST", "/me/keys", json={"public_key": hybrid}).status_code == 201
    assert classic_api.call("GET", "/keys").json() == {"keys": [classic], "post_quantum": False}
