"""The conversation page's one script: resumable uploads (``static/resume.js``), inlined.

Inlined like the stylesheet, so that the page stays one request with or without JavaScript; the
Content-Security-Policy allows exactly this script by its SHA-256 hash, and no other (no
``'unsafe-inline'``, no script URL). Pages without JavaScript ignore it; the form it takes over
works without it (Tor Browser "Safest")."""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

from markupsafe import Markup

_TEXT = (resources.files("sealdrop.web.source") / "static" / "resume.js").read_text("utf-8")

# Markup: the template must emit the script byte for byte (escaping would change the hash).
RESUME_SCRIPT = Markup(_TEXT)  # noqa: S704 - our own packaged file, never user input
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_TEXT.encode("utf-8")).digest()).decode()
