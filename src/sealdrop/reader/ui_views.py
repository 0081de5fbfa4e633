"""What the reader's local web interface shows, apart from its routes: the templates (escaped,
with untrusted names made visible), in the interface's language, the error page, the status line,
the headers of every answer, and its one style sheet and script (served by the reader itself).
How each item of a conversation is shown is ``Reader.view``'s decision."""

from __future__ import annotations

import datetime as dt
import gettext
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from sealdrop.reader.display import shown_name
from sealdrop.reader.ui_i18n import LANGUAGES, translations
from sealdrop.reader.ui_sync import SyncStatus

__all__ = ["BOUNCE", "HEADERS", "SCRIPT", "STYLE", "Pages"]

HEADERS = {
    # The one script is the reader's own file: no inline script, nothing from elsewhere; the
    # pages work without it.
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}
_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
# The same-origin bounce (see Guard): a refresh, not a script, so it works with JavaScript off.
BOUNCE = '<!doctype html><meta http-equiv="refresh" content="0"><title>Sealdrop reader</title>'
STYLE = (_HERE / "static" / "style.css").read_text(encoding="utf-8")
SCRIPT = (_HERE / "static" / "app.js").read_text(encoding="utf-8")

_UNITS = ("B", "KB", "MB", "GB", "TB")


class Pages:
    """The interface's templates in one language: autoescaped, with a ``shown`` filter for
    untrusted names, ``day`` and ``size`` filters, and gettext's ``_``."""

    def __init__(self, lang: str = "en") -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        self.lang = lang
        self.direction = LANGUAGES[lang]
        self._gettext: gettext.NullTranslations = translations(lang)
        self._env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=select_autoescape(default=True),
            extensions=["jinja2.ext.i18n"],
        )
        self._env.install_gettext_translations(self._gettext, newstyle=True)  # type: ignore[attr-defined]
        # Untrusted one-line text (pseudonyms, authors, names): invisible characters made visible.
        self._env.filters["shown"] = shown_name
        self._env.filters["day"] = self.day
        self._env.filters["size"] = self.size
        self._env.globals.update(lang=lang, direction=self.direction)

    def _(self, message: str, **values: Any) -> str:
        """``message`` translated (the literal strings are marked where ``_`` is called)."""
        text = self._gettext.gettext(message)
        return text % values if values else text

    def day(self, iso: str | None) -> str:
        _ = self._
        if not iso:
            return _("day unknown")
        return format_date(dt.date.fromisoformat(iso[:10]), format="medium", locale=self.lang)

    def size(self, n: int | None) -> str:
        if n is None:
            return ""
        value, unit = float(n), 0
        while value >= 1000 and unit < len(_UNITS) - 1:
            value, unit = value / 1000, unit + 1
        shown = format_decimal(value, format="#,##0" if unit == 0 else "#,##0.#", locale=self.lang)
        return f"{shown} {_UNITS[unit]}"

    def moment(self, epoch: int) -> str:
        """When something happened, in local time: the time alone today, else day and time."""
        when = dt.datetime.fromtimestamp(epoch)
        clock = format_time(when, format="short", locale=self.lang)
        if when.date() == dt.date.today():
            return clock
        return f"{format_date(when.date(), format='medium', locale=self.lang)} {clock}"

    def status_line(self, status: SyncStatus, last_synced: int | None) -> tuple[str, str]:
        """The status bar's state (a CSS class) and words: online, offline, syncing, expired."""
        _ = self._
        when = self.moment(last_synced) if last_synced else None
        synced = _("last synced %(when)s", when=when) if when else _("never synced")
        if status.running:
            progress = _("%(count)s item(s) downloaded", count=status.downloaded)
            return "syncing", " · ".join((_("Syncing…"), progress, synced))
        if status.needs_login:
            return "offline", " · ".join((_("Login expired: log in again to sync"), synced))
        if status.online is False:
            return "offline", " · ".join((_("Offline: showing what was synced"), synced))
        if status.online is None:
            return "online", synced
        return "online", " · ".join((_("Online"), synced))

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self._env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status)

    def error(self, status: int, message: str, back: str | None = "/") -> HTMLResponse:
        """An error in the interface's layout, with a link back (``back``: None for none). No
        CSRF token in it: it is also shown to a browser that has no session."""
        body = self._env.get_template("error.html").render(error=message, back=back)
        return HTMLResponse(body, status_code=status, headers=HEADERS)
