"""The API's notification endpoints, in-process: an account sets and reads its own notices, an
admin sets anyone's, an Apprise URL is shown as its scheme only and never echoed in an error."""

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
from sealdrop.services.accounts import NewAccount
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.testing import FakeClock
from sealdrop.web.api.app import create_api_app

TOKEN = "tk_5e4d3c2b1a"


@dataclass
class Api:
    services: Services
    app: Any
    clock: FakeClock
    admin: NewAccount
    journalist: NewAccount

    def token(self, account: NewAccount) -> str:
        self.clock.advance(passwords.TOTP_INTERVAL)  # a fresh code: each is usable once
        code = passwords.totp_code(account.totp_secret, self.clock.now())
        return self.services.auth.login(account.user.username, account.passphrase, code).token

    def call(self, account: NewAccount, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(account)}"}

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, "/api/v1" + url, headers=headers, **kwargs)

        return anyio.run(go)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    instance = init_instance(tmp_path / "instance")
    clock = FakeClock()
    services = build_services(
        load_settings(
            instance,
            env={
                "SEALDROP_NOTIFICATIONS_LANGUAGE": "es",
                "SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true",
            },
        ),
        clock=clock,
    )
    admin = services.accounts.create("chief", "admin", actor="test")
    journalist = services.accounts.create("writer", "journalist", actor="test")
    yield Api(services, create_api_app(services), clock, admin, journalist)
    services.close()


def test_an_account_sets_and_reads_its_own_notices(api: Api) -> None:
    """GET shows "off" in the instance's language at first; PUT with an e-mail address stores
    it and answers with it; PUT off removes it."""
    me = api.call(api.journalist, "GET", "/me/notifications")
    assert me.json() == {"channel": "off", "email": None, "url_scheme": None, "language": "es"}
    body = {"channel": "email", "email": "writer@example.org"}
    changed = api.call(api.journalist, "PUT", "/me/notifications", json=body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "writer@example.org"
    off = api.call(api.journalist, "PUT", "/me/notifications", json={"channel": "off"})
    assert off.json()["channel"] == "off"


def test_an_apprise_url_is_shown_as_its_scheme_and_never_echoed(api: Api) -> None:
    """A usable URL is answered with its scheme only; an unusable one is 400 invalid_request
    whose body holds no part of the token; so is an e-mail field with channel apprise."""
    url = f"ntfys://ntfy.example.org/{TOKEN}"
    body = {"channel": "apprise", "url": url, "language": "fa"}
    changed = api.call(api.journalist, "PUT", "/me/notifications", json=body)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "channel": "apprise", "email": None, "url_scheme": "ntfys", "language": "fa",
    }  # fmt: skip
    assert TOKEN not in api.call(api.journalist, "GET", "/me/notifications").text
    for bad in (
        {"channel": "apprise", "url": f"nonsense://host/{TOKEN}"},
        {"channel": "apprise", "url": url, "email": "writer@example.org"},
        {"channel": "email", "email": f"{TOKEN}@"},
    ):
        refused = api.call(api.journalist, "PUT", "/me/notifications", json=bad)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
        assert TOKEN not in refused.text


def test_an_admin_sets_another_accounts_notices_and_a_journalist_cannot(api: Api) -> None:
    """PUT /users/{id}/notifications: an admin changes the journalist's target (an unknown id is
    404); the journalist calling it is 403 and changes nothing."""
    path = f"/users/{api.journalist.user.id}/notifications"
    body = {"channel": "email", "email": "desk@example.org"}
    assert api.call(api.admin, "PUT", path, json=body).status_code == 200
    assert api.call(api.journalist, "GET", "/me/notifications").json()["email"] == (
        "desk@example.org"
    )
    assert (
        api.call(api.admin, "PUT", "/users/" + "0" * 32 + "/notifications", json=body).status_code
        == 404
    )
    admin_path = f"/users/{api.admin.user.id}/notifications"
    assert api.call(api.journalist, "PUT", admin_path, json=body).status_code == 403
    assert api.call(api.admin, "GET", "/me/notifications").json()["channel"] == "off"
