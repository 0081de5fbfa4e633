"""What the reader's local web interface shows, apart from its routes: the templates (escaped,
with untrusted names made visible), the error page, the headers of every answer, the style sheet,
and each item of a conversation as the page shows it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from sealdrop.crypto.keys import Identity
from sealdrop.errors import DecryptionError, NotCached
from sealdrop.reader.content import decrypt_item, file_info
from sealdrop.reader.display import (
    CANNOT_DECRYPT,
    FILE_CANNOT_DECRYPT,
    REPLY_CANNOT_DECRYPT,
    not_synced,
    shown_name,
    shown_text,
)
from sealdrop.reader.store import CacheState, CiphertextCache, LocalItem

__all__ = ["BOUNCE", "HEADERS", "STYLE", "ItemView", "Pages", "item_view"]

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


@dataclass(frozen=True)
class ItemView:
    item: LocalItem
    text: str | None = None
    name: str | None = None
    size: int | None = None
    problem: str | None = None
    # This device's key cannot open it (see display.WHY_CANNOT_DECRYPT).
    not_for_this_device: bool = False


def item_view(cache: CiphertextCache, item: LocalItem, identity: Identity) -> ItemView:
    """An item as the conversation shows it: text decrypted in memory, or a file's name/size."""
    if item.kind == "file":
        try:
            info = file_info(item, identity)
        except DecryptionError:
            return ItemView(item, problem=FILE_CANNOT_DECRYPT, not_for_this_device=True)
        cached = item.cache is CacheState.CACHED
        problem = None if cached else not_synced(item.cache.value)
        return ItemView(item, name=shown_name(info.name), size=info.size, problem=problem)
    try:
        plaintext = decrypt_item(cache, item, identity)
    except NotCached:
        return ItemView(item, problem=not_synced(item.cache.value))
    except DecryptionError:
        what = REPLY_CANNOT_DECRYPT if item.kind == "reply" else CANNOT_DECRYPT
        return ItemView(item, problem=what, not_for_this_device=True)
    return ItemView(item, text=shown_text(plaintext.decode("utf-8", errors="replace")))
