"""The two keys of a session of the reader's local web interface, both asked in the page.

Unlock: the identity passphrase opens this device's key, kept in this process's memory until the
reader stops. Log in: when the server's token expires (8 hours) or is revoked, the account
passphrase and a TOTP code get a new one, saved in the data folder as `sealdrop reader login`
does; the interface keeps running, and the journalist goes back where they were.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealdrop.errors import IdentityBusy, RemoteError, WrongPassphrase
from sealdrop.reader.client import ApiClient
from sealdrop.reader.keystore import load_identity
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form

__all__ = ["SessionPages", "local_path"]


# The interface's own paths are plain: letters, digits, hyphens, slashes (and a fragment).
_LOCAL = re.compile(r"/(?!/)[A-Za-z0-9/_#-]*")


def local_path(value: str) -> str:
    """``value`` if it is a path of this interface, else ``/``: no open redirect through
    ``//host``, ``/\\host``, an absolute URL, or a tab or newline that a browser would drop."""
    return value if _LOCAL.fullmatch(value) else "/"


class SessionPages:
    def __init__(self, ui: UiContext) -> None:
        self._ui = ui

    def routes(self) -> list[Route]:
        return [
            Route("/unlock", self.unlock, methods=["GET", "POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
        ]

    async def unlock(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._ui.page("unlock.html", error=None, current="unlock")
        data = await posted_form(request, self._ui.state)
        path = self._ui.profile.identity_path
        try:
            identity = await run_in_threadpool(load_identity, path, data.get("passphrase", ""))
        except (WrongPassphrase, IdentityBusy) as exc:
            return await self._ui.page("unlock.html", status=400, error=str(exc), current="unlock")
        self._ui.state.identity = identity
        return self._ui.see("/")

    async def login_page(self, status: int, error: str | None, back: str) -> Response:
        config = await run_in_threadpool(self._ui.profile.load_config)
        return await self._ui.page(
            "login.html",
            status=status,
            error=error,
            next=local_path(back),
            username=config.username,
            current="login",
        )

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.login_page(200, None, request.query_params.get("next", "/"))
        data = await posted_form(request, self._ui.state)
        back = local_path(data.get("next", "/"))
        profile = self._ui.profile

        def log_in() -> None:
            config = profile.load_config()
            with ApiClient(config.server, proxy=config.proxy) as client:
                expires_at = client.login(
                    config.username, data.get("passphrase", ""), data.get("totp", "").strip()
                )
                token = client.token
                assert token is not None
                profile.save_token(token, expires_at)

        try:
            await run_in_threadpool(log_in)
        except RemoteError as exc:  # refused, rate-limited, unreachable: said in the form
            return await self.login_page(400, str(exc), back)
        self._ui.state.sync.needs_login = False
        self._ui.state.admin = None
        await self._ui.syncer.sync()  # what was queued while logged out goes now
        return self._ui.see(back)
