"""``GET /healthz`` on every listener, for a supervisor or a load balancer, and ``GET /readyz`` on
the source and API listeners, for a load balancer or the Onionbalance watcher.

The answer is a fixed ``ok``: no version, no counts, no state, so that on the source listener it
tells a visitor nothing about this instance that any other Sealdrop would not tell them too. It
says only that the process accepts connections and its event loop answers; it costs no database
query, no template and no routing (a flood of it over the onion is charged to its circuit like any
request, web/app.py, and costs less than a page). Whether the database, tor or the disks are well
is for the metrics and ``sealdrop status --json`` (docs/operator.md, "Monitoring").

``/readyz`` answers 200 ``ready`` while the server's last check found its database and blob store
reachable, else 503 ``not ready`` (services/readiness.py: a thread checks every 10 s; the request
only reads the result, so it costs no more than ``/healthz``). Like ``/healthz`` it says why to
nobody: the reason is in the server's log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from sealdrop.web.connections import send_plain

HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"


class Health:
    """Answer ``GET``/``HEAD /healthz`` with 200 ``ok`` and, given ``ready``, ``/readyz`` with 200
    ``ready`` or 503 ``not ready``; pass everything else to ``app``. Put it inside the
    security-headers layer, so that the answer carries the listener's headers."""

    def __init__(self, app: ASGIApp, ready: Callable[[], bool] | None = None) -> None:
        self._app = app
        self._ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            if scope["path"] == HEALTH_PATH:
                await send_plain(send, 200, b"ok\n")
                return
            if scope["path"] == READY_PATH and self._ready is not None:
                if self._ready():
                    await send_plain(send, 200, b"ready\n")
                else:
                    await send_plain(send, 503, b"not ready\n")
                return
        await self._app(scope, receive, send)
