"""The inbox of the reader's local web interface: the sources, newest activity first, with their
unread counts and stars, filtered by pseudonym or state; syncing on demand and its status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealdrop.errors import TokenExpired
from sealdrop.reader.reader import InboxRow, Reader
from sealdrop.reader.sync import SyncReport
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form

__all__ = ["InboxPages"]

# The filters of the inbox (the "show" field); triage filters (assignee, labels) join them here.
SHOWS = ("all", "unread", "starred")


def matching(rows: list[InboxRow], query: str, show: str) -> list[InboxRow]:
    """The rows whose pseudonym contains ``query`` (ignoring case), in the ``show`` filter."""
    wanted = query.strip().casefold()
    kept = [row for row in rows if wanted in row.source.pseudonym.casefold()]
    if show == "unread":
        kept = [row for row in kept if row.source.unread]
    elif show == "starred":
        kept = [row for row in kept if row.source.starred]
    return kept


class InboxPages:
    def __init__(self, ui: UiContext) -> None:
        self._ui = ui

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/sync", self.sync, methods=["POST"]),
            Route("/sync/status", self.status),
            Route("/sources/{source_id:str}/star", self.star, methods=["POST"]),
        ]

    async def _inbox(self, request: Request, report: SyncReport | None) -> Response:
        query = request.query_params.get("q", "")[:200]
        show = request.query_params.get("show", "all")
        show = show if show in SHOWS else "all"
        rows = await self._ui.with_reader(Reader.inbox)
        return await self._ui.page(
            "index.html",
            rows=matching(rows, query, show),
            total=len(rows),
            query=query,
            show=show,
            report=report,
            fresh=self._ui.state.sync.fresh,
            unlocked=self._ui.state.identity is not None,
            current="inbox",
        )

    async def index(self, request: Request) -> Response:
        return await self._inbox(request, None)

    async def sync(self, request: Request) -> Response:
        await posted_form(request, self._ui.state)
        report = await self._ui.syncer.sync()
        if self._ui.state.sync.needs_login:
            raise TokenExpired("the login has expired")  # the page to log in again
        return await self._inbox(request, report)

    async def status(self, request: Request) -> Response:
        """The status line for the page's script (JSON, same origin, same session)."""
        last = await self._ui.with_reader(Reader.last_synced)
        state, text = self._ui.pages.status_line(self._ui.state.sync, last)
        fresh = self._ui.state.sync.fresh_count()
        return JSONResponse({"state": state, "text": text, "fresh": fresh})

    async def star(self, request: Request) -> Response:
        data = await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        starred = data.get("starred") == "1"
        await self._ui.with_reader(lambda r: r.star(r.source(source_id).id, starred))
        return self._ui.see(f"/sources/{source_id}" if data.get("back") == "source" else "/")
