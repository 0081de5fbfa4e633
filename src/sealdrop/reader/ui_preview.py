"""Previews in the reader's local web interface: an image re-encoded without metadata in a
limited child process, a text file escaped (see ``preview``); anything else goes to export."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealdrop.errors import NotHere
from sealdrop.reader.display import shown_name
from sealdrop.reader.preview import (
    MAX_INPUT,
    PreviewRefused,
    image_png,
    preview_kind,
    text_preview,
)
from sealdrop.reader.ui_context import UiContext

__all__ = ["PreviewPages"]

_KEPT = 4  # re-encoded images kept in memory for their <img> request (never on disk)


class PreviewPages:
    def __init__(self, ui: UiContext) -> None:
        self._ui = ui
        self._images: OrderedDict[str, bytes] = OrderedDict()

    def routes(self) -> list[Route]:
        return [
            Route("/items/{item_id:str}/preview", self.preview),
            Route("/items/{item_id:str}/preview.png", self.image),
        ]

    async def preview(self, request: Request) -> Response:
        identity = self._ui.state.identity
        if identity is None:
            return self._ui.see("/unlock")
        item_id = str(request.path_params["item_id"]).lower()
        item, info = await self._ui.with_reader(lambda r: r.file(item_id, identity))
        kind = preview_kind(info.content_type, info.name)
        context: dict[str, Any] = {
            "item": item,
            "name": shown_name(info.name),
            "content_type": shown_name(info.content_type),
            "size": info.size,
            "kind": kind,
            "problem": None,
            "text": None,
            "cut": False,
            "exports": self._ui.profile.exports_dir,
            "current": "preview",
        }
        if kind is None:
            context["problem"] = "no preview for this type of file: export it"
        elif max(item.size, info.size) > MAX_INPUT:
            # Decided before decrypting: a large file is never decrypted only to be refused.
            context["problem"] = "too large to preview: export it instead"
        else:
            data = await self._ui.with_reader(lambda r: r.file_content(item, identity))
            if kind == "text":
                context["text"], context["cut"] = text_preview(data)
            else:
                try:
                    png = await run_in_threadpool(image_png, data)
                except PreviewRefused as exc:
                    context["problem"] = str(exc)
                else:
                    self._images[item_id] = png
                    while len(self._images) > _KEPT:
                        self._images.popitem(last=False)
            del data
        return await self._ui.page("preview.html", **context)

    async def image(self, request: Request) -> Response:
        """The re-encoded PNG of the preview page just shown (only ever from memory)."""
        item_id = str(request.path_params["item_id"]).lower()
        png = self._images.get(item_id)
        if png is None:
            raise NotHere("no preview: open the item's preview page")
        return Response(png, media_type="image/png")
