"""A conversation in the reader's local web interface: one time line of the source's messages and
files and the journalists' replies, replies not sent yet with their state, and what can be done
with each: reply, retry, mark seen, export, preview, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealdrop.reader.display import WHY_CANNOT_DECRYPT, shown_name, shown_text
from sealdrop.reader.reader import Reader
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form
from sealdrop.reader.ui_triage import Assignable, TriagePages, TriageProblem

__all__ = ["ConversationPages"]


class ConversationPages:
    def __init__(self, ui: UiContext) -> None:
        self._ui = ui
        self._assignable = Assignable(ui)
        self._triage = TriagePages(ui, self.show, self._assignable)

    def routes(self) -> list[Route]:
        return [
            *self._triage.routes(),
            Route("/sources/{source_id:str}", self.conversation),
            Route("/sources/{source_id:str}/seen", self.seen, methods=["POST"]),
            Route("/sources/{source_id:str}/reply", self.reply, methods=["POST"]),
            Route("/sources/{source_id:str}/delete", self.delete_source, methods=["GET", "POST"]),
            Route("/replies/{reply_id:str}/retry", self.retry, methods=["POST"]),
            Route("/replies/{reply_id:str}/discard", self.discard, methods=["POST"]),
            Route("/items/{item_id:str}/delete", self.delete_item, methods=["GET", "POST"]),
            Route("/items/{item_id:str}/export", self.export, methods=["POST"]),
        ]

    async def conversation(self, request: Request) -> Response:
        return await self.show(str(request.path_params["source_id"]))

    async def show(
        self, source_id: str, status: int = 200, problem: TriageProblem | None = None
    ) -> Response:
        """The conversation page; with ``problem``, a triage change that did not happen is said
        in place (``status``: 422 refused, 503 the server unreachable)."""
        identity = self._ui.state.identity
        if identity is None:
            return self._ui.see("/unlock")

        def load(reader: Reader) -> tuple[Any, list[Any], list[Any]]:
            source = reader.source(source_id)
            views = [reader.view(item, identity) for item in reader.items(source.id)]
            return source, views, reader.pending(source.id, identity)

        source, views, pending = await self._ui.with_reader(load)
        not_here = any(view.not_for_this_device for view in views)
        # Marked new on this page, then no more (the journalist has seen them arrive).
        fresh = self._ui.state.sync.opened(source.id)
        journalists = await self._assignable.names()
        # The current assignee stays a choice even when not in the list (a disabled account, or
        # the list unknown offline): the form must never show someone else as assigned.
        choices = list(journalists or [])
        if source.assignee and source.assignee not in choices:
            choices.append(source.assignee)
        return await self._ui.page(
            "source.html",
            status,
            journalists=journalists,
            choices=choices,
            me=await self._ui.with_reader(lambda r: r.profile.load_config().username),
            problem=problem,
            source=source,
            views=views,
            pending=pending,
            fresh=fresh,
            why=WHY_CANNOT_DECRYPT if not_here else None,
            exports=self._ui.profile.exports_dir,
            current="conversation",
        )

    async def seen(self, request: Request) -> Response:
        await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        await self._ui.with_reader(lambda r: r.seen(r.source(source_id).id))
        return self._ui.see(f"/sources/{source_id}")

    async def reply(self, request: Request) -> Response:
        """Seal the reply and queue it here first, then try to send it at once: with the server
        unreachable it waits, encrypted, for the next sync; the page shows which."""
        data = await posted_form(request, self._ui.state)
        source_id = str(request.path_params["source_id"])
        await self._ui.with_reader(lambda r: r.queue_reply(source_id, data.get("text", "")))
        await self._ui.syncer.sync()
        return self._ui.see(f"/sources/{source_id}#reply")

    async def _queued_action(self, request: Request, retry: bool) -> Response:
        await posted_form(request, self._ui.state)
        reply_id = str(request.path_params["reply_id"])

        def work(reader: Reader) -> str:
            entry = reader.outbox.get(reply_id)
            source = entry.source_id if entry is not None else ""
            if retry:
                reader.retry_reply(reply_id)
            else:
                reader.discard_reply(reply_id)
            return source

        source_id = await self._ui.with_reader(work)
        if retry:
            await self._ui.syncer.sync()
        return self._ui.see(f"/sources/{source_id}#reply")

    async def retry(self, request: Request) -> Response:
        return await self._queued_action(request, retry=True)

    async def discard(self, request: Request) -> Response:
        return await self._queued_action(request, retry=False)

    async def delete_source(self, request: Request) -> Response:
        source_id = str(request.path_params["source_id"])
        if request.method == "GET":
            source = await self._ui.with_reader(lambda r: r.source(source_id))
            what = f"source {shown_name(source.pseudonym)}"
            return await self._ui.page(
                "confirm.html", what=what, action=request.url.path, back=f"/sources/{source_id}"
            )
        await posted_form(request, self._ui.state)
        await self._ui.with_reader(lambda r: r.delete_source(r.source(source_id).id))
        return self._ui.see("/")

    async def delete_item(self, request: Request) -> Response:
        item_id = str(request.path_params["item_id"])
        if request.method == "GET":
            item = await self._ui.with_reader(lambda r: r.item(item_id))
            return await self._ui.page(
                "confirm.html",
                what=f"{item.kind} #{item.seq}",
                action=request.url.path,
                back=f"/sources/{item.source_id}",
            )
        await posted_form(request, self._ui.state)

        def work(reader: Reader) -> str:
            item = reader.item(item_id)
            reader.delete_item(item)
            return item.source_id

        return self._ui.see(f"/sources/{await self._ui.with_reader(work)}")

    async def export(self, request: Request) -> Response:
        data = await posted_form(request, self._ui.state)
        identity = self._ui.state.identity
        if identity is None:
            return self._ui.see("/unlock")
        item_id = str(request.path_params["item_id"])
        dest = data.get("dest", "").strip()
        chosen = Path(dest).expanduser() if dest else None

        def work(reader: Reader) -> Any:
            folder = reader.export_folder(chosen)
            return reader.export(
                item_id,
                identity,
                folder,
                strip_metadata=data.get("strip") == "1",
                keep_original=data.get("keep_original") == "1",
            )

        done = await self._ui.with_reader(work)
        removed = [shown_text(entry) for entry in done.result.removed]  # mat2's words
        return await self._ui.page(
            "exported.html",
            item=done.item,
            name=shown_name(done.name),
            result=done.result,
            removed=removed,
        )
