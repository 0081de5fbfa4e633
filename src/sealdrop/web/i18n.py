"""Languages of the source interface: gettext catalogs (Babel), negotiation, and the no-JS picker.

Catalogs are the ``.po`` files under ``source/translations``; they are compiled in memory when
the app starts, so no build step and no binary ``.mo`` files are needed.

The language comes from, in order: the ``sealdrop_lang`` cookie that the picker sets, the
``Accept-Language`` header, English. Tor Browser sends ``en-US`` whatever the user reads, so the
picker (plain links, no script) is the way most sources will choose.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "sealdrop_lang"


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # catalog folder name (Babel locale identifier)
    tag: str  # BCP 47 tag for the lang attribute
    name: str  # the language's name in itself
    rtl: bool


# The picker's order: English first, then by catalog code (a fixed order that favours no
# language the organisation happens to know). Names are written in their own script.
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "en", "English", rtl=False),
        Language("am", "am", "አማርኛ", rtl=False),
        Language("ar", "ar", "العربية", rtl=True),
        Language("be", "be", "Беларуская", rtl=False),
        Language("bo", "bo", "བོད་སྐད་", rtl=False),
        Language("de", "de", "Deutsch", rtl=False),
        Language("es", "es", "Español", rtl=False),
        Language("fa", "fa", "فارسی", rtl=True),
        Language("fr", "fr", "Français", rtl=False),
        Language("hi", "hi", "हिन्दी", rtl=False),
        Language("id", "id", "Bahasa Indonesia", rtl=False),
        Language("km", "km", "ខ្មែរ", rtl=False),
        Language("ko", "ko", "한국어", rtl=False),
        Language("my", "my", "မြန်မာ", rtl=False),
        Language("ps", "ps", "پښتو", rtl=True),
        Language("pt_BR", "pt-BR", "Português (Brasil)", rtl=False),
        Language("ru", "ru", "Русский", rtl=False),
        Language("tr", "tr", "Türkçe", rtl=False),
        Language("ug", "ug", "ئۇيغۇرچە", rtl=True),
        Language("uk", "uk", "Українська", rtl=False),
        Language("ur", "ur", "اردو", rtl=True),
        Language("vi", "vi", "Tiếng Việt", rtl=False),
        Language("zh_Hans", "zh-Hans", "简体中文", rtl=False),
        Language("zh_Hant", "zh-Hant", "繁體中文", rtl=False),
    )
}
DEFAULT = "en"


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def _language_of_tag(tag: str) -> str | None:
    parts = tag.strip().replace("_", "-").lower().split("-")
    if not parts or not parts[0]:
        return None
    if parts[0] == "zh":
        traditional = {"hant", "tw", "hk", "mo"}
        return "zh_Hant" if traditional & set(parts[1:]) else "zh_Hans"
    if parts[0] == "pt":
        # The one Portuguese catalog is Brazilian; a reader of European Portuguese reads it
        # more easily than English.
        return "pt_BR"
    return parts[0] if parts[0] in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """The best available language for an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "")[:1000].split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = _language_of_tag(tag)
        if code is not None and quality > 0:
            choices.append((-quality, index, code))
    return min(choices)[2] if choices else DEFAULT


def choose(cookie: str | None, accept_language: str | None) -> Language:
    if cookie in LANGUAGES:
        return LANGUAGES[cookie]
    return LANGUAGES[negotiate(accept_language)]


class Catalogs:
    """Every language's translations, compiled once from the shipped .po files."""

    def __init__(self, package: str) -> None:
        self._translations: dict[str, gettext.NullTranslations] = {}
        root = resources.files(package) / "translations"
        for code in LANGUAGES:
            po = root / code / "LC_MESSAGES" / "messages.po"
            if not po.is_file():
                self._translations[code] = gettext.NullTranslations()
                continue
            with po.open("rb") as source:
                catalog = read_po(source, locale=code)
            compiled = io.BytesIO()
            write_mo(compiled, catalog, use_fuzzy=False)
            compiled.seek(0)
            self._translations[code] = Translations(compiled)

    def get(self, code: str) -> gettext.NullTranslations:
        return self._translations.get(code) or self._translations[DEFAULT]


class LanguagePicker:
    """``GET any-page?lang=fa`` sets the language cookie and comes back to the page.

    A plain link works without JavaScript; the cookie is first-party, HttpOnly, SameSite=Strict
    and ends with the browser session, like the session cookie.
    """

    def __init__(self, app: ASGIApp, pages: frozenset[str]) -> None:
        self._app = app
        # The pages it may come back to: the app's own GET pages. Anything else the client sent
        # (a made-up path, 100 KB long) is never echoed into the Location header: it goes to "/".
        self._pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope.get("query_string"):
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            code = query.get("lang")
            if code in LANGUAGES:
                path = self._return_path(scope)
                cookie = f"{COOKIE}={code}; Path=/; HttpOnly; SameSite=Strict"
                if scope.get("scheme") == "https":
                    cookie += "; Secure"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [
                            (b"location", path),
                            (b"set-cookie", cookie.encode("latin-1")),
                            (b"content-length", b"0"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await self._app(scope, receive, send)

    def _return_path(self, scope: Scope) -> bytes:
        """The page to come back to: one of ours, never anything that leaves the site ("//host"
        would) or repeats what the client sent."""
        root = str(scope.get("root_path", ""))
        path = str(scope["path"])
        if root and path.startswith(root):  # ASGI servers differ on whether path includes it
            path = path[len(root) :]
        if path not in self._pages:
            path = "/"
        return (root + path).encode("utf-8")
