"""Jinja2 rendering: autoescaping always on, and gettext per request.

Every value a page shows is escaped. Translations come from ``i18n.Catalogs``; the language is
chosen per request and handed to Jinja's i18n extension through a context variable, which is
local to the rendering thread, so concurrent requests in different languages never mix.
"""

from __future__ import annotations

import contextvars
import gettext
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from sealdrop.web import formatting
from sealdrop.web.i18n import COOKIE, LANGUAGES, Catalogs, Language, choose
from sealdrop.web.source.script import RESUME_SCRIPT
from sealdrop.web.source.stylesheet import STYLESHEET

_MAX_TRANSLATED = 10_000


class Templates:
    def __init__(self, package: str, organisation: str) -> None:
        self._organisation = organisation
        self._catalogs = Catalogs(package)
        self._current: contextvars.ContextVar[gettext.NullTranslations] = contextvars.ContextVar(
            "translations"
        )
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader(package, "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
            # The templates are package data: they change only with an upgrade, which restarts
            # the server. Jinja's default checks each template's file on disk at every render
            # (stat calls for the page and the base it extends: ~5% of a page's CPU).
            auto_reload=False,
        )
        self._env.install_gettext_callables(  # type: ignore[attr-defined]
            lambda message: self._current.get().gettext(message),
            lambda singular, plural, n: self._current.get().ngettext(singular, plural, n),
            newstyle=True,
        )
        # `_("…")`, the templates' usual call, goes past Jinja's newstyle wrapper (which
        # formatted every result, Markup(text) % {}, behind two context calls: ~15% of a page's
        # CPU): a message without variables is translated and made Markup once per language and
        # kept; with variables it is done as the wrapper does it, the values escaped. `{% trans %}`
        # and `ngettext` still go through Jinja's callables above.
        self._translated: dict[tuple[gettext.NullTranslations, str], Markup] = {}
        self._env.globals["_"] = self._translate
        # Inlined in every page (one request per page); the CSP allows it by its hash.
        self._env.globals["stylesheet"] = STYLESHEET
        self._env.globals["resume_script"] = RESUME_SCRIPT
        self._env.globals["language_links"] = language_links

    def _translate(self, message: str, **variables: Any) -> Markup:
        """``_(message, **variables)`` in a template: what Jinja's newstyle gettext returns.

        A translation is trusted markup, as Jinja's own wrapper trusts it: the shipped catalogs'
        text, which holds no markup (tests/unit/web/test_translations.py); the values are escaped.
        """
        translations = self._current.get()
        if variables:
            return Markup(translations.gettext(message)) % variables  # noqa: S704
        key = (translations, message)
        found = self._translated.get(key)
        if found is None:
            # The messages are the templates' and the routes' own msgids (a few hundred in all
            # languages); the bound is a guard, not a limit ever met.
            found = Markup(translations.gettext(message)) % {}  # noqa: S704
            if len(self._translated) < _MAX_TRANSLATED:
                self._translated[key] = found
        return found

    def language(self, request: Request | None) -> Language:
        if request is None:
            return LANGUAGES["en"]
        return choose(request.cookies.get(COOKIE), request.headers.get("accept-language"))

    def format_param(self, request: Request | None, name: str, value: str | int) -> str:
        """An error page's value in the request's locale (a size keeps its unit: GiB, MiB)."""
        if isinstance(value, str):
            return value
        code = self.language(request).code
        if name == "size":
            return formatting.size(value, code)
        return formatting.number(value, code)

    def gettext(self, request: Request | None, message: str) -> str:
        """``message`` translated into the request's language."""
        return self._catalogs.get(self.language(request).code).gettext(message)

    def render(
        self,
        request: Request | None,
        name: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        language = self.language(request)
        root = (request.scope.get("root_path", "") if request else "") + "/"
        # Where the language links lead: this page again if it can be fetched with GET; the
        # answer to a form post (logout, an upload refused) cannot, so those lead to the start.
        # A GET that reaches a page template matched one of our routes, so its path is ours;
        # error.html overrides ``here`` with the start page, since its path is the client's.
        here = root
        if request is not None and request.method == "GET":
            path = request.scope.get("root_path", "") + request.url.path
            if path.startswith("/") and not path.startswith(("//", "/\\")):
                here = path
        context.setdefault("logged_in", False)
        context.setdefault("csrf_token", "")
        context.setdefault("error", None)
        context.setdefault("show_languages", True)
        token = self._current.set(self._catalogs.get(language.code))
        try:
            html = self._env.get_template(name).render(
                root=root,
                here=here,
                organisation=self._organisation,
                language=language,
                format_day=lambda day: formatting.day(day, language.code),
                format_number=lambda n: formatting.number(n, language.code),
                **context,
            )
        finally:
            self._current.reset(token)
        return HTMLResponse(html, status_code=status, headers=headers)


# Every language's link in the footer, escaped once: all of it but the page's own address. As a
# Jinja loop over the 24 languages it cost half of rendering a page (~65 of ~130 us: five escapes
# and attribute lookups per language), on every page, the refusals a flood gets included.
_LINK_TAILS = [
    (
        language.code,
        str(
            Markup('?lang={}" lang="{}" dir="{}"').format(
                language.code, language.tag, "rtl" if language.rtl else "ltr"
            )
        ),
        str(Markup(">{}</a></li>\n").format(language.name)),
    )
    for language in LANGUAGES.values()
]
_CURRENT = ' aria-current="true"'


def language_links(here: str, current: Language) -> Markup:
    """The footer's list items, one link per language to ``here`` in that language (the current
    one marked ``aria-current``), each item on a line of its own."""
    start = f'<li><a href="{escape(here)}'
    return Markup(  # noqa: S704 - every piece escaped above, ``here`` just now
        "".join(
            start + tail + (_CURRENT if code == current.code else "") + name
            for code, tail, name in _LINK_TAILS
        )
    )
