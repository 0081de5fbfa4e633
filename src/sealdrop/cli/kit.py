"""``sealdrop kit DIR --out FOLDER``: the reach kit, static pages for the organisation's website."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sealdrop.cli.common import err, fail
from sealdrop.config import load_settings
from sealdrop.errors import SealdropError, TorError
from sealdrop.kit.build import build_kit
from sealdrop.tor.layout import TorLayout


def kit(
    directory: Annotated[Path, typer.Argument(help="The instance folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the pages into.")],
    lang: Annotated[
        list[str] | None,
        typer.Option("--lang", help="Only this language (repeat for more; default: all)."),
    ] = None,
) -> None:
    """Write the reach kit: one static page per language with the onion address, its QR code,
    and how to reach it from behind a censor (docs/reach-kit.md)."""
    try:
        settings = load_settings(directory)
        # Read from the file tor wrote, never typed by hand: one wrong character would send
        # sources to whoever owns the look-alike address.
        hostname = TorLayout.of_instance(settings.instance_dir).source_onion_address()
        if settings.tor_onionbalance_front is not None:
            # Behind Onionbalance sources are given the front, whose address carries a
            # checksum that loading the settings checked.
            hostname = settings.tor_onionbalance_front
        if hostname is None:
            raise TorError(
                "the source onion address is not known yet (no tor/source-onion/hostname): run "
                "`sealdrop serve DIR` once with tor enabled so that tor creates it, then run "
                "`sealdrop kit` again"
            )
        files = build_kit(
            out, hostname, settings.organisation_name, settings.public_url, tuple(lang or ())
        )
    except SealdropError as exc:
        raise fail(exc) from None
    err.print(
        f"Wrote {len(files.pages)} pages, index.html and the QR code to {escape(str(out))}. "
        "Check the address on them before you publish (docs/reach-kit.md).",
        highlight=False,
    )
