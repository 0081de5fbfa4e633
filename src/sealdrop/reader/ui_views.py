"""What the reader's local web interface shows, apart from its routes: the templates (escaped,
with untrusted names made visible), the error page, the headers of every answer and the style
sheet. How each item of a conversation is shown is ``Reader.view``'s decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from sealdrop.reader.display import (
    shown_name,
)

__all__ = ["BOUNCE", "HEADERS", "STYLE", "Pages"]

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}
_TEMPLATES = Path(__file__).parent / "templates"
# The same-origin bounce (see Guard): a refresh, not a script, so it works with JavaScript off.
BOUNCE = '<!doctype html><meta http-equiv="refresh" content="0"><title>Sealdrop reader</title>'
STYLE = """\
body { font-family: sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .6rem; text-align: left; }
.item { border-top: 1px solid #ccc; padding: .5rem 0; }
.text { white-space: pre-wrap; font-family: monospace; background: #f6f6f6; padding: .5rem; }
.reply { margin-left: 2rem; } .error { color: #a00; } .note { color: #555; }
form.inline { display: inline; }
"""


class Pages:
    """The interface's templates: autoescaped, with a ``shown`` filter for untrusted names."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True)
        )
        # Untrusted one-line text (pseudonyms, authors, names): invisible characters made visible.
        self._env.filters["shown"] = shown_name

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self._env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status)

    def error(self, status: int, message: str, back: str | None = "/") -> HTMLResponse:
        """An error in the interface's layout, with a link back (``back``: None for none). No
        CSRF token in it: it is also shown to a browser that has no session."""
        body = self._env.get_template("error.html").render(error=message, back=back)
        return HTMLResponse(body, status_code=status, headers=HEADERS)
