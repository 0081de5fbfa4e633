"""``GET /healthz`` on every listener, for a supervisor or a load balancer.

The answer is a fixed ``ok``: no version, no counts, no state, so that on the source listener it
tells a visitor nothing about this instance that any other Sealdrop would not tell them too. It
says only that the process accepts connections and its event loop answers; it costs no database
query, no template and no routing (a flood of it over the onion is charged to its circuit like any
request, web/app.py, and costs less than a page). Whether the database, tor or the disks are well
is for the metrics and ``sealdrop status --json`` (docs/operator.md, "Monitoring").
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from sealdrop.web.connections import send_plain

HEALTH_PATH: Final = "/healthz"


class Health:
    """Answer ``GET``/``HEAD /healthz`` with 200 ``ok``; pass everything else to ``app``. Put it
    inside the security-headers layer, so that the answer carries the listener's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == HEALTH_PATH
            and scope["method"] in ("GET", "HEAD")
        ):
            await send_plain(send, 200, b"ok\n")
            return
        await self._app(scope, receive, send)
