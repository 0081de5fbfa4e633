"""Anti-forgery tokens for the forms that come before a session (start, log in).

A random value lives in a first-party cookie; the form carries HMAC(cookie, label), so the page
never repeats the cookie itself. A forged post from another site has neither: browsers do not
send SameSite=Strict cookies with it, and the other site cannot read the token. (Forms inside a
session use the session's own token, derived from the session key.)

The hash of the cookie also names the visitor for the per-visitor login failure counter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "sealdrop_form"
_LABEL = b"sealdrop/v1/form-token"


def new_cookie_value() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def token_for(cookie_value: str) -> str:
    return hmac.new(cookie_value.encode("ascii", "replace"), _LABEL, hashlib.sha256).hexdigest()


def valid(cookie_value: str | None, token: str | None) -> bool:
    if not cookie_value or not token or len(cookie_value) > 100:
        return False
    return hmac.compare_digest(token_for(cookie_value).encode(), token.encode("utf-8", "replace"))


def visitor(cookie_value: str | None) -> bytes | None:
    if not cookie_value or len(cookie_value) > 100:
        return None
    return hashlib.sha256(cookie_value.encode("ascii", "replace")).digest()
