"""One static page of the kit: HTML with inline CSS and an inline SVG QR code, nothing else.

No script, no font, image or stylesheet from anywhere: the page must work in Tor Browser at
"Safest", on a mirror, and saved to disk, and must not tell a third party who reads it.
"""

from __future__ import annotations

import base64
import gettext
import hashlib
from dataclasses import dataclass
from html import escape

from sealdrop.kit import text as t
from sealdrop.web.i18n import Language

# Inline, so the page loads nothing else. The print rules fit the page on one A4 or Letter sheet:
# the language list goes, the QR code shrinks, the text tightens.
STYLE = """
body{font-family:system-ui,"Noto Sans",sans-serif;line-height:1.5;margin:0 auto;max-width:40em;
padding:1em;color:#111;background:#fff}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em .9em;font-size:.9em}
h1{font-size:1.5em;margin:.5em 0}h2{font-size:1.15em;margin:1.2em 0 .3em}
.address{font-family:monospace;font-size:1.05em;word-break:break-all;background:#f3f3f3;
padding:.5em;border:1px solid #999}
.groups{font-family:monospace;font-size:1.05em;letter-spacing:.05em}
.qr svg{width:12em;height:auto}
footer{margin-top:2em;font-size:.9em;color:#333}
@media print{
@page{margin:1.2cm}
nav{display:none}
body{font-size:9.5pt;line-height:1.3;padding:0;max-width:none}
h1{font-size:14pt;margin:0 0 .3em}h2{font-size:11pt;margin:.6em 0 .1em}
p,li{margin:.15em 0}ul{margin:.2em 0}
.qr{float:right;margin:0 0 0 1em}.qr svg{width:3.2cm}
[dir=rtl] .qr{float:left;margin:0 1em 0 0}
a{color:#000;text-decoration:none}
footer{margin-top:.6em}
}
"""

# The page's own policy, for a copy served without one (a mirror, a saved file): nothing may load
# or run but this exact stylesheet, even if someone adds a tag to a copy in transit or on disk.
CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
    + "'; base-uri 'none'; form-action 'none'"
)
HEAD = [
    '<head><meta charset="utf-8">',
    f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
]


@dataclass(frozen=True, slots=True)
class KitFacts:
    """What the pages carry about this instance."""

    organisation: str
    onion_url: str  # http://<56 characters>.onion/
    public_url: str  # "" when the instance has no clearnet address
    qr_svg: str  # the QR code of onion_url, as an <svg> element


def _link(url: str, label: str | None = None) -> str:
    # noreferrer: a click from a published copy tells the next site nothing about where from.
    return f'<a href="{escape(url)}" rel="noreferrer" dir="ltr">{escape(label or url)}</a>'


def _telegram(handle: str) -> str:
    return _link(t.TELEGRAM_BASE + handle[1:], handle)


def _email(address: str) -> str:
    return _link("mailto:" + address, address)


def _direction(language: Language) -> str:
    return "rtl" if language.rtl else "ltr"


def _groups(onion_url: str) -> str:
    """The 56 characters in groups of seven, to compare one group at a time."""
    host = onion_url.removeprefix("http://").removesuffix("/").removesuffix(".onion")
    return " ".join(host[i : i + 7] for i in range(0, len(host), 7)) + " .onion"


def render_page(
    language: Language,
    translations: gettext.NullTranslations,
    facts: KitFacts,
    languages: list[Language],
) -> str:
    """The kit page in one language."""

    def say(message: str, **links: str) -> str:
        # The translation is escaped first; the placeholders then receive HTML made here
        # (links, addresses), which no catalog can alter.
        html = escape(translations.gettext(message), quote=False)
        return html % links if links else html

    direction = _direction(language)
    nav = "".join(
        f'<li><a href="{escape(other.tag)}.html" hreflang="{escape(other.tag)}" '
        f'lang="{escape(other.tag)}">{escape(other.name)}</a></li>'
        for other in languages
    )
    org = escape(facts.organisation, quote=False)
    address = _link(facts.onion_url)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(language.tag)}" dir="{direction}">',
        *HEAD,
        f"<title>{say(t.TITLE, org=org)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        f'<nav aria-label="{say(t.LANGUAGES_LABEL)}"><ul>{nav}</ul></nav>',
        "<main>",
        f"<h1>{say(t.TITLE, org=org)}</h1>",
        f"<p>{say(t.LEAD)}</p>",
        f"<h2>{say(t.ADDRESS_HEADING)}</h2>",
        f"<p>{say(t.ADDRESS)}</p>",
        f'<p class="address" dir="ltr">{address}</p>',
        f'<div class="qr"><p>{say(t.QR)}</p>{facts.qr_svg}</div>',
        f"<h2>{say(t.CHECK_HEADING)}</h2>",
        f"<p>{say(t.CHECK)}</p>",
        f'<p class="groups" dir="ltr">{escape(_groups(facts.onion_url))}</p>',
    ]
    if facts.public_url:
        parts += [
            f"<h2>{say(t.VPN_HEADING)}</h2>",
            f"<p>{say(t.VPN, url=_link(facts.public_url))}</p>",
        ]
    parts += [
        f"<h2>{say(t.GET_HEADING)}</h2>",
        f"<p>{say(t.GET, url=_link(t.TOR_DOWNLOAD))}</p>",
        "<p>"
        + say(t.MIRRORS, mirror1=_link(t.TOR_MIRROR_EFF), mirror2=_link(t.TOR_MIRROR_GITHUB))
        + "</p>",
        "<p>"
        + say(t.GETTOR, email=_email(t.GETTOR_EMAIL), telegram=_telegram(t.GETTOR_TELEGRAM))
        + "</p>",
        f"<h2>{say(t.BRIDGES_HEADING)}</h2>",
        f"<p>{say(t.BRIDGES)}</p>",
        "<p>"
        + say(
            t.ASK_BRIDGES,
            web=_link(t.BRIDGES_WEB),
            email=_email(t.BRIDGES_EMAIL),
            telegram=_telegram(t.BRIDGES_TELEGRAM),
        )
        + "</p>",
        f"<h2>{say(t.DONT_HEADING)}</h2>",
        "<ul>",
        f"<li>{say(t.DONT_DEVICE)}</li>",
        f"<li>{say(t.DONT_BROWSER)}</li>",
        f"<li>{say(t.DONT_TELL)}</li>",
        "</ul>",
        f"<p>{say(t.CODENAME)}</p>",
        f"<footer><p>{say(t.FACTS, date=f'<time>{t.FACTS_CHECKED_ON}</time>')}</p></footer>",
        "</main></body></html>",
        "",
    ]
    return "\n".join(parts)


def render_index(facts: KitFacts, languages: list[Language]) -> str:
    """The folder's index: the address, its QR code, and the list of languages (each in itself)."""
    items = "".join(
        f'<li><a href="{escape(lang.tag)}.html" hreflang="{escape(lang.tag)}" '
        f'lang="{escape(lang.tag)}" dir="{_direction(lang)}">{escape(lang.name)}</a></li>'
        for lang in languages
    )
    org = escape(facts.organisation, quote=False)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en" dir="ltr">',
            *HEAD,
            f"<title>{org}</title>",
            f"<style>{STYLE}</style></head>",
            "<body><main>",
            f"<h1>{org}</h1>",
            f'<p class="address" dir="ltr">{_link(facts.onion_url)}</p>',
            f'<div class="qr">{facts.qr_svg}</div>',
            f"<ul>{items}</ul>",
            "</main></body></html>",
            "",
        ]
    )
