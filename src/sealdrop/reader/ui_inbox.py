"""The inbox of the reader's local web interface: the sources, newest activity first, with their
unread counts, stars, assignees and labels, filtered by pseudonym, state, "assigned to me", and
with those labelled spam hidden unless asked for; syncing on demand and its status.

The filters are GET query parameters (``q``, ``show``, ``mine=1``, ``spam=1``), so that they work
with JavaScript off and can be combined and bookmarked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealdrop.errors import TokenExpired
from sealdrop.reader.reader import InboxRow, Reader
from sealdrop.reader.sync import SyncReport
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form

__all__ = ["InboxPages"]

# The filters of the inbox (the "show" field).
SHOWS = ("all", "unread", "starred")


@dataclass(frozen=True)
class Filters:
    query: str = ""
    show: str = "all"
    mine: str | None = None  # the username whose sources alone are shown ("Assigned to me")
    spam: bool = False  # also the sources labelled spam (hidden by default)


def matching(rows: list[InboxRow], filters: Filters) -> list[InboxRow]:
    """The rows whose pseudonym contains the query (ignoring case), in the ``show`` filter,
    assigned to ``mine`` if given, and without spam unless ``spam``."""
    wanted = filters.query.strip().casefold()
    kept = [row for row in rows if wanted in row.source.pseudonym.casefold()]
    if filters.show == "unread":
        kept = [row for row in kept if row.source.unread]
    elif filters.show == "starred":
        kept = [row for row in kept if row.source.starred]
    if filters.mine is not None:
        kept = [row for row in kept if row.source.assignee == filters.mine]
    if not filters.spam:
        kept = [row for row in kept if not row.source.spam]
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
        params = request.query_params
        show = params.get("show", "all")
        me = await self._ui.with_reader(lambda r: r.profile.load_config().username)
        filters = Filters(
            query=params.get("q", "")[:200],
            show=show if show in SHOWS else "all",
            mine=me if params.get("mine") == "1" else None,
            spam=params.get("spam") == "1",
        )
        rows = await self._ui.with_reader(Reader.inbox)
        shown = matching(rows, filters)
        # How many the spam filter alone hides: said under the list, with a link that shows them.
        hidden = 0
        if not filters.spam:
            hidden = len(matching(rows, replace(filters, spam=True))) - len(shown)
        with_spam = urlencode({**dict(params), "spam": "1"})
        return await self._ui.page(
            "index.html",
            rows=shown,
            total=len(rows),
            filters=filters,
            query=filters.query,
            show=filters.show,
            hidden_spam=hidden,
            with_spam=f"/?{with_spam}",
            me=me,
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
