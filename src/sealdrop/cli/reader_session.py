"""How each ``sealdrop reader`` command opens the reader and reports what went wrong: one line
per error, and an expired login says what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from sealdrop.cli.common import err, fail
from sealdrop.errors import NotHere, SealdropError, TokenExpired
from sealdrop.reader.client import ApiClient
from sealdrop.reader.profile import Profile, ReaderConfig
from sealdrop.reader.reader import Reader


@contextmanager
def reporting_errors(profile: Profile) -> Iterator[None]:
    """Report the reader's errors in one line each; an expired token says what to do."""
    try:
        yield
    except NotHere as exc:
        # As a mistyped argument (exit status 2): the source or item is not in the local copy.
        raise typer.BadParameter(str(exc)) from None
    except TokenExpired:
        profile.forget_token()
        err.print(
            "[bold red]error:[/] the session has expired (or was revoked): "
            "run `sealdrop reader login`"
        )
        raise typer.Exit(code=1) from None
    except SealdropError as exc:
        raise fail(exc) from None


@contextmanager
def open_reader(profile: Profile, *, online: bool = False) -> Iterator[Reader]:
    """The reader of ``profile``; ``online``: log in to the server first (TokenExpired before
    anything is asked or changed)."""
    profile.load_config()  # fail early, with a hint, if init was never run
    with Reader.open(profile) as reader:
        if online:
            reader.client  # noqa: B018
        yield reader


def log_in(profile: Profile, config: ReaderConfig, passphrase: str, code: str) -> ApiClient:
    client = ApiClient(config.server, proxy=config.proxy)
    try:
        expires_at = client.login(config.username, passphrase, code)
    except BaseException:
        client.close()
        raise
    token = client.token
    assert token is not None
    profile.save_token(token, expires_at)
    return client
