"""The reach kit's pages: every language, the address exactly, nothing loaded from anywhere, small
enough for a slow circuit, a print stylesheet; and `sealdrop kit` on an instance."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from support_kit import ONION, ONION_URL, StrictPage, all_languages
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.kit import text as t
from sealdrop.kit.build import QR_PNG, QR_SVG, build_kit, qr_code, qr_svg
from sealdrop.kit.catalogs import kit_translations
from sealdrop.kit.page import KitFacts, render_page
from sealdrop.web.i18n import LANGUAGES, Language

PUBLIC_URL = "https://drop.example.org"
LIMIT = 32 * 1024
LANGS = all_languages()


def _facts(organisation: str = "Example News", public_url: str = PUBLIC_URL) -> KitFacts:
    return KitFacts(organisation, ONION_URL, public_url, qr_svg(qr_code(ONION_URL)))


def _page(language: Language, facts: KitFacts | None = None) -> str:
    return render_page(language, kit_translations(language.code), facts or _facts(), LANGS)


def _run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stderr


@pytest.mark.parametrize("language", LANGS, ids=lambda lang: lang.code)
def test_page_parses_and_carries_the_address_exactly(language: Language) -> None:
    """Each language's page is well-formed HTML in that language and direction, and shows the
    onion URL as text and link exactly, its 56 characters in groups, and the VPN address."""
    html = _page(language)
    page = StrictPage(html)
    html_attrs = page.tags[0][1]
    assert html_attrs["lang"] == language.tag
    assert html_attrs["dir"] == ("rtl" if language.rtl else "ltr")
    assert ("a", {"href": ONION_URL, "rel": "noreferrer", "dir": "ltr"}) in page.tags
    assert ("a", ONION_URL) in page.texts
    groups = re.search(r'<p class="groups" dir="ltr">([^<]*)</p>', html)
    assert groups is not None
    assert re.fullmatch(r"([a-z2-7]{7} ){8}\.onion", groups[1])
    assert groups[1].replace(" ", "") == ONION
    assert ("a", PUBLIC_URL) in page.texts
    assert t.FACTS_CHECKED_ON in page.text()


@pytest.mark.parametrize("language", LANGS, ids=lambda lang: lang.code)
def test_page_loads_nothing_and_links_only_to_listed_addresses(language: Language) -> None:
    """No script, no src, no stylesheet or font from anywhere, no event handler: the only
    http(s) addresses are plain links a reader clicks (the Tor Project's, listed in text.LINKS,
    and the drop's own); the rest are the kit's own pages."""
    page = StrictPage(_page(language))
    own = {f"{lang.tag}.html" for lang in LANGS}
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed", "base"), tag
        assert "src" not in attrs
        assert "srcset" not in attrs
        assert not any(name.startswith("on") for name in attrs), attrs
        if "href" in attrs:
            assert tag == "a"
            assert attrs["href"] in t.LINKS | {ONION_URL, PUBLIC_URL} | own, attrs["href"]
        assert "xlink:href" not in attrs
    for remote in ("url(", "@import", "@font-face"):
        assert remote not in page.style


@pytest.mark.parametrize("language", LANGS, ids=lambda lang: lang.code)
def test_page_fits_the_size_limit_and_prints(language: Language) -> None:
    """With the longest organisation name and a long VPN address, a page stays within 32 KB,
    and its inline print stylesheet hides the language list."""
    facts = _facts("W" * 100, "https://" + "long-name." * 20 + "example.org")
    html = _page(language, facts)
    assert len(html.encode("utf-8")) <= LIMIT
    style = StrictPage(html).style
    assert re.search(r"@media print\{.*nav\{display:none\}", style, re.S)


def test_page_policy_allows_exactly_its_own_stylesheet() -> None:
    """The page's CSP meta allows nothing but the inline stylesheet, by its SHA-256, so a copy
    served without a policy still loads and runs nothing else."""
    page = StrictPage(_page(LANGUAGES["en"]))
    policy = next(
        a["content"] for tag, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy is not None
    digest = base64.b64encode(hashlib.sha256(page.style.encode("utf-8")).digest()).decode()
    assert policy == (
        f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def test_no_public_url_no_vpn_section() -> None:
    """Without [source] public_url the pages say nothing about a clearnet address."""
    html = _page(LANGUAGES["en"], _facts(public_url=""))
    assert t.VPN_HEADING not in html
    assert "https://drop" not in html


def test_text_from_a_catalog_cannot_inject_markup() -> None:
    """The organisation name is text, never markup (it comes from a config file an attacker
    who can edit it could otherwise use to add a script to every published page)."""
    html = _page(LANGUAGES["en"], _facts(organisation='<script>x</script>"'))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_kit_writes_every_language_of_languages_and_the_qr_files(tmp_path: Path) -> None:
    """build_kit writes one page per entry of LANGUAGES (at run time), an index, and the QR
    code as SVG (the same bytes as inlined in the pages) and PNG."""
    files = build_kit(tmp_path, ONION, "Example News", "")
    assert set(files.pages) == set(LANGUAGES)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"{lang.tag}.html" for lang in LANGUAGES.values()} | {
        "index.html",
        QR_SVG,
        QR_PNG,
    }
    svg = (tmp_path / QR_SVG).read_text(encoding="ascii")
    for path in [*files.pages.values(), files.index]:
        html = path.read_text(encoding="utf-8")
        assert svg in html
        assert ONION_URL in html
        StrictPage(html)


def test_kit_lang_chooses_languages_and_refuses_unknown_ones(tmp_path: Path) -> None:
    """--lang keeps the kit to the languages named; an unknown code is an error, no file."""
    files = build_kit(tmp_path / "a", ONION, "Example News", "", ["fa", "en", "fa"])
    assert list(files.pages) == ["fa", "en"]
    with pytest.raises(Exception, match="unknown language xx"):
        build_kit(tmp_path / "b", ONION, "Example News", "", ["xx"])
    assert not (tmp_path / "b").exists()


def test_cli_kit_without_an_onion_address_says_to_start_serve(tmp_path: Path) -> None:
    """Before tor has created the onion (serve never ran), `sealdrop kit` fails with an
    error that says to start serve once, and writes nothing."""
    instance = tmp_path / "instance"
    assert _run("init", instance)[0] == 0
    code, err = _run("kit", instance, "--out", tmp_path / "kit")
    assert code == 1
    assert "error:" in err
    assert "sealdrop serve" in err
    assert not (tmp_path / "kit").exists()


def test_cli_kit_uses_the_onion_of_the_instance_and_its_public_url(tmp_path: Path) -> None:
    """`sealdrop kit DIR --out F --lang ar` reads the onion hostname tor wrote and the
    instance's public_url and organisation name, and writes them into the page."""
    instance = tmp_path / "instance"
    assert _run("init", instance, "--org-name", "Example News")[0] == 0
    config = instance / "sealdrop.toml"
    config.write_text(
        config.read_text().replace('# public_url = ""', f'public_url = "{PUBLIC_URL}"')
    )
    onion_dir = instance / "tor" / "source-onion"
    onion_dir.mkdir(parents=True)
    (onion_dir / "hostname").write_text(ONION + "\n")
    code, err = _run("kit", instance, "--out", tmp_path / "kit", "--lang", "ar")
    assert code == 0, err
    html = (tmp_path / "kit" / "ar.html").read_text(encoding="utf-8")
    assert ONION_URL in html
    assert PUBLIC_URL in html
    assert "Example News" in html
    assert sorted(p.name for p in (tmp_path / "kit").iterdir()) == [
        "ar.html",
        "index.html",
        QR_PNG,
        QR_SVG,
    ]


def test_cli_kit_behind_onionbalance_gives_the_front_address(tmp_path: Path) -> None:
    """With [tor] onionbalance_front set, the kit gives sources the front address, not this
    worker's own source onion (which only this host serves)."""
    instance = tmp_path / "instance"
    assert _run("init", instance)[0] == 0
    onion_dir = instance / "tor" / "source-onion"
    onion_dir.mkdir(parents=True)
    (onion_dir / "hostname").write_text(ONION + "\n")
    front = "speapn2j3z6sqxonugui2to65knbixh4elsqtqkbhnixewo2jgpan6qd.onion"
    config = instance / "sealdrop.toml"
    config.write_text(
        config.read_text().replace('# onionbalance_front = ""', f'onionbalance_front = "{front}"')
    )
    code, err = _run("kit", instance, "--out", tmp_path / "kit", "--lang", "en")
    assert code == 0, err
    html = (tmp_path / "kit" / "en.html").read_text(encoding="utf-8")
    assert f"http://{front}" in html
    assert ONION not in html
