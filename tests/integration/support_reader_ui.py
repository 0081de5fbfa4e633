"""`sealdrop reader ui` as a real process, entered and unlocked in a browser (Playwright): for the
reader UI's browser tests and the journalist's end-to-end walk. (Kept out of the test modules so
that both can import it by a unique name.)"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support_reader_cli import IDENTITY_PASSPHRASE

from sealdrop.testing import sealdrop_command


@contextmanager
def running_ui(
    data_dir: Path, lang: str = "en", sync_every: int = 5, *extra: str
) -> Iterator[tuple[str, str]]:
    """`sealdrop reader ui --lang LANG --sync-every N` as a process: (one-time link, base)."""
    process = subprocess.Popen(
        sealdrop_command(
            "reader", "ui", "--data-dir", data_dir, "--lang", lang,
            "--sync-every", str(sync_every), *extra,
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=[\w-]+", process.stdout.readline())
        assert found, process.stderr.read() if process.poll() is not None else "no link"
        yield found.group(0), found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def enter(page: Any, link: str, playwright_error: type[Exception]) -> None:
    """Open the one-time link (retried while the interface is still starting)."""
    for _ in range(100):  # the socket is bound before the link is printed
        try:
            page.goto(link)
            return
        except playwright_error:
            time.sleep(0.1)
    raise AssertionError("the interface did not answer")


def unlock(page: Any, base: str, passphrase: str = IDENTITY_PASSPHRASE) -> None:
    """Type the identity passphrase into the unlock form: back to the inbox."""
    page.goto(f"{base}/unlock")
    page.fill("#passphrase", passphrase)
    page.click("form[action='/unlock'] button[type=submit]")
    page.wait_for_url(f"{base}/")  # unlocked: back to the inbox
