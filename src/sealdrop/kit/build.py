"""Write the kit: one page per language, an index, and the QR code as SVG and PNG files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno

from sealdrop.errors import ConfigError
from sealdrop.kit.catalogs import kit_translations
from sealdrop.kit.page import KitFacts, render_index, render_page
from sealdrop.web.i18n import LANGUAGES, Language

QR_SVG = "onion-qr.svg"
QR_PNG = "onion-qr.png"


@dataclass(frozen=True, slots=True)
class KitFiles:
    pages: dict[str, Path]  # language code -> page
    index: Path
    qr_svg: Path
    qr_png: Path


def onion_url(hostname: str) -> str:
    return f"http://{hostname}/"


def qr_code(url: str) -> segno.QRCode:
    # Error correction Q (25%): a printed copy that is creased or stained still scans.
    return segno.make_qr(url, error="q", boost_error=False)


def qr_svg(code: segno.QRCode) -> str:
    """The SVG both inlined in every page and written beside them (the same bytes)."""
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=4,
        border=4,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        title="QR",
        dark="#000",
        light="#fff",
    )
    return out.getvalue().decode("ascii")


def choose_languages(codes: Sequence[str]) -> list[Language]:
    if not codes:
        return list(LANGUAGES.values())
    unknown = [code for code in codes if code not in LANGUAGES]
    if unknown:
        raise ConfigError(
            f"unknown language {', '.join(unknown)}; the languages are {', '.join(LANGUAGES)}"
        )
    return [LANGUAGES[code] for code in dict.fromkeys(codes)]


def build_kit(
    out: Path, hostname: str, organisation: str, public_url: str, codes: Sequence[str] = ()
) -> KitFiles:
    """Write the kit into ``out`` (created if need be; files of the same names are replaced)."""
    languages = choose_languages(codes)
    url = onion_url(hostname)
    code = qr_code(url)
    svg = qr_svg(code)
    facts = KitFacts(organisation=organisation, onion_url=url, public_url=public_url, qr_svg=svg)
    # Every catalog before any file: a missing one leaves no half-written kit behind.
    catalogs = {language.code: kit_translations(language.code) for language in languages}
    out.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    for language in languages:
        html = render_page(language, catalogs[language.code], facts, languages)
        pages[language.code] = out / f"{language.tag}.html"
        pages[language.code].write_text(html, encoding="utf-8")
    index = out / "index.html"
    index.write_text(render_index(facts, languages), encoding="utf-8")
    (out / QR_SVG).write_text(svg, encoding="ascii")
    # Large modules for a poster or a phone screen; a quiet zone of 4 modules as the standard asks.
    code.save(str(out / QR_PNG), kind="png", scale=10, border=4)
    return KitFiles(pages=pages, index=index, qr_svg=out / QR_SVG, qr_png=out / QR_PNG)
