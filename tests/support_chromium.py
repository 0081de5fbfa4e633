"""How the tests start Debian's Chromium (through Playwright), in one place for the e2e browser
tests and the reader UI's."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# The flags of docs DESIGN.md "Tests that use real components". Without the background-networking
# flags Chromium keeps trying to reach Google, which this sandbox's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
