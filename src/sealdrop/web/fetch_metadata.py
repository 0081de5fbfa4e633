"""Refuse state-changing requests that a browser says come from another site.

Browsers label each request with ``Sec-Fetch-Site``. A POST marked ``cross-site`` or
``same-site`` was started by some other page: a forged login (which would log the source into
an attacker's codename, so that what they send next goes to the attacker's conversation), a
forged logout or a forged start. CSRF tokens protect the forms of a session; this also covers
the forms that come before one. Requests without the header (older browsers, scripts) pass
through to the token checks. ``Origin`` is not usable here: with ``Referrer-Policy:
no-referrer`` browsers send ``Origin: null`` on form posts.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_FOREIGN = {b"cross-site", b"same-site"}


class RefuseCrossSitePosts:
    def __init__(self, app: ASGIApp, refuse: ASGIApp) -> None:
        self._app = app
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
            for name, value in scope["headers"]:
                if name == b"sec-fetch-site" and value.strip().lower() in _FOREIGN:
                    await self._refuse(scope, receive, send)
                    return
        await self._app(scope, receive, send)
