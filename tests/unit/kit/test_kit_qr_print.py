"""The kit's QR codes decode (zbar, Debian zbar-tools) to the exact onion URL, as PNG and as SVG
rendered by Chromium; and every page prints on one sheet (A4 and Letter)."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from pypdf import PdfReader
from support_kit import ONION, ONION_URL, all_languages

from sealdrop.kit.build import QR_PNG, QR_SVG, build_kit, qr_code, qr_svg
from sealdrop.kit.catalogs import kit_translations
from sealdrop.kit.page import KitFacts, render_page
from support_chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow
ZBARIMG = shutil.which("zbarimg")


def _decode(image: Path) -> list[str]:
    assert ZBARIMG, "zbarimg is missing: apt-get install zbar-tools (scripts/test does)"
    result = subprocess.run(
        [ZBARIMG, "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # As Tor Browser at "Safest" shows it: no script (the pages need none).
        yield browser.new_page(java_script_enabled=False, viewport={"width": 390, "height": 800})
        browser.close()


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kit")
    build_kit(out, ONION, "Example News", "https://drop.example.org")
    return out


def test_png_qr_code_decodes_to_the_exact_onion_url(kit: Path) -> None:
    """zbar reads the PNG as exactly http://<onion>/, nothing more."""
    assert _decode(kit / QR_PNG) == [ONION_URL]


def test_svg_qr_code_rendered_by_chromium_decodes_to_the_onion_url(
    kit: Path, page: Page, tmp_path: Path
) -> None:
    """The SVG (the same bytes inlined in every page), drawn by a browser, reads as the URL."""
    page.goto((kit / QR_SVG).as_uri())
    shot = tmp_path / "svg.png"
    page.screenshot(path=str(shot))
    assert _decode(shot) == [ONION_URL]


def test_every_page_prints_on_one_sheet(page: Page, tmp_path: Path) -> None:
    """With the print stylesheet, each language's page (with the VPN section, the longest
    case) is one page of PDF on A4 and on Letter."""
    languages = all_languages()
    facts = KitFacts(
        "Example News", ONION_URL, "https://drop.example.org", qr_svg(qr_code(ONION_URL))
    )
    pages = {}
    # Chromium reports a stylesheet its CSP refused on the console: there must be none.
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    for language in languages:
        path = tmp_path / f"{language.tag}.html"
        html = render_page(language, kit_translations(language.code), facts, languages)
        path.write_text(html, encoding="utf-8")
        page.goto(path.as_uri())
        pages[language.code] = [
            len(PdfReader(io.BytesIO(page.pdf(format=size))).pages) for size in ("A4", "Letter")
        ]
    assert pages == {language.code: [1, 1] for language in languages}
    assert console == []
