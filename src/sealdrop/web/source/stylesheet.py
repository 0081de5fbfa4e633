"""The source interface's stylesheet, inlined in every page.

Every page is one request: over Tor each extra request costs a round trip of a second or more,
and with ``Cache-Control: no-store`` (a page may show a codename) the browser would fetch a
separate stylesheet again for every page. The Content-Security-Policy allows exactly this
stylesheet by its SHA-256 hash, and no other style."""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

from markupsafe import Markup

_TEXT = (resources.files("sealdrop.web.source") / "static" / "style.css").read_text("utf-8")

# Markup: the template must emit the CSS byte for byte (escaping would change the hash).
STYLESHEET = Markup(_TEXT)  # noqa: S704 - our own packaged file, never user input
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_TEXT.encode("utf-8")).digest()).decode()
