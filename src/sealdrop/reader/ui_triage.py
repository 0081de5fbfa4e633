"""Triage in the reader's local web interface: assigning a source to a journalist, its labels
("spam" among them) and its hold (exempt from the server's retention rules), from the
conversation page.

All are shared by the newsroom and kept on the server (``Reader.assign``,
``Reader.change_labels``, ``Reader.hold``): a change needs the server and is never queued here,
because a change replayed later could undo a colleague's newer one. What the server refuses (a
disabled account, a label it cannot take: 422) and an unreachable server are said in place, on
the conversation page, with what was typed kept. The server's words are untrusted text, shown
through ``shown``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealdrop.errors import ApiError, RemoteError, RemoteNotFound, ServerUnreachable
from sealdrop.reader.reader import Reader
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form

__all__ = ["Assignable", "TriagePages", "TriageProblem"]

SPAM = "spam"
# How long the list of accounts a source can be assigned to is reused before it is asked again:
# the conversation page would otherwise wait for the server (over Tor, seconds) every time; and
# after the server failed to answer, how long before it is asked again.
JOURNALISTS_TTL = 300.0
JOURNALISTS_RETRY = 30.0


@dataclass(frozen=True)
class TriageProblem:
    """Why a triage change did not happen, for the conversation page: ``field`` is "assignee",
    "labels" or "hold"; ``message`` is the server's refusal (None: the server could not be reached);
    ``typed`` is the label that was typed, kept in its field."""

    field: str
    message: str | None = None
    typed: str = ""


class Assignable:
    """The usernames a source can be assigned to (every enabled account), from the server, kept
    for ``JOURNALISTS_TTL`` seconds; None while the server has never told this run."""

    def __init__(self, ui: UiContext) -> None:
        self._ui = ui
        self._names: list[str] | None = None
        self._next = 0.0  # when to ask the server again (time.monotonic)

    def forget(self) -> None:
        self._next = 0.0

    async def names(self) -> list[str] | None:
        if time.monotonic() < self._next or self._ui.state.sync.online is False:
            return self._names
        try:
            self._names = await self._ui.with_reader(Reader.journalists)
            self._next = time.monotonic() + JOURNALISTS_TTL
        except RemoteError:  # offline, logged out…: the page still shows the current one
            self._next = time.monotonic() + JOURNALISTS_RETRY
        return self._names


ShowConversation = Callable[[str, int, TriageProblem | None], Awaitable[Response]]


class TriagePages:
    """``POST /sources/{id}/assignee`` (``username``: "" for nobody),
    ``POST /sources/{id}/labels`` (``add``: one label, ``remove``: one label) and
    ``POST /sources/{id}/hold`` (``hold``: "1" on, "0" off); each answers with a 303 to the
    conversation, or the conversation with the problem in place."""

    def __init__(self, ui: UiContext, show: ShowConversation, assignable: Assignable) -> None:
        self._ui = ui
        self._show = show
        self._assignable = assignable

    def routes(self) -> list[Route]:
        return [
            Route("/sources/{source_id:str}/assignee", self.assignee, methods=["POST"]),
            Route("/sources/{source_id:str}/labels", self.labels, methods=["POST"]),
            Route("/sources/{source_id:str}/hold", self.hold, methods=["POST"]),
        ]

    async def assignee(self, request: Request) -> Response:
        data = await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        username = data.get("username", "") or None

        def work(reader: Reader) -> None:
            reader.assign(reader.source(source_id).id, username)

        return await self._change(source_id, "assignee", work)

    async def labels(self, request: Request) -> Response:
        data = await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        typed = data.get("add", "")
        add = [typed] if typed.strip() else []
        remove = [data["remove"]] if data.get("remove") else []
        if not add and not remove:
            return self._ui.see(f"/sources/{source_id}")

        def work(reader: Reader) -> None:
            reader.change_labels(reader.source(source_id).id, add=add, remove=remove)

        return await self._change(source_id, "labels", work, typed)

    async def hold(self, request: Request) -> Response:
        data = await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        on = data.get("hold") == "1"

        def work(reader: Reader) -> None:
            reader.hold(reader.source(source_id).id, on)

        return await self._change(source_id, "hold", work)

    async def _change(
        self, source_id: str, field: str, work: Callable[[Reader], None], typed: str = ""
    ) -> Response:
        try:
            await self._ui.with_reader(work)
        except ServerUnreachable:
            self._ui.state.sync.online = False
            problem = TriageProblem(field, None, typed)
            return await self._show(source_id, 503, problem)
        except ApiError as exc:
            # 422: the request was understood and refused (a disabled or unknown account, a
            # label the server cannot take). Anything else (the source gone from the server, a
            # server error) is the interface's error page, as for every other change.
            if isinstance(exc, RemoteNotFound) or exc.status != 422:
                raise
            if field == "assignee":
                self._assignable.forget()  # the list of enabled accounts has changed
            return await self._show(source_id, 422, TriageProblem(field, exc.message, typed))
        return self._ui.see(f"/sources/{source_id}")
