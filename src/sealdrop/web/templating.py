"""Jinja2 rendering with autoescaping always on: every value a page shows is escaped."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse


class Templates:
    def __init__(self, package: str) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader(package, "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self, request: Request | None, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        root = (request.scope.get("root_path", "") if request else "") + "/"
        context.setdefault("logged_in", False)
        context.setdefault("csrf_token", "")
        context.setdefault("error", None)
        context.setdefault("received", None)
        html = self._env.get_template(name).render(root=root, **context)
        return HTMLResponse(html, status_code=status)
