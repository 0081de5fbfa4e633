"""The reader's data folder (mode 0700): identity, config, token, local DB, ciphertext cache, and
``exports/`` (0700), where exported files go unless another folder is chosen.

``config.json`` (0600) holds the server URL, the username and the Tor SOCKS proxy if any;
``token.json`` (0600) the bearer token of the last login and its expiry (8 h). Neither holds
anything decrypted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sealdrop.errors import NotInitialised, ReaderError
from sealdrop.reader.private_files import write_private

__all__ = ["DEFAULT_DATA_DIR", "Profile", "ReaderConfig"]

DEFAULT_DATA_DIR = Path("~/.local/share/sealdrop-reader")
# A token this close to its expiry is treated as expired (a long sync should not die half-way).
_EXPIRY_MARGIN = 60


@dataclass(frozen=True)
class ReaderConfig:
    server: str
    username: str
    # A Tor SOCKS proxy (socks5h://127.0.0.1:9050) for a server behind an onion service.
    proxy: str | None = None


class Profile:
    """The files of one reader data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def ensure(self) -> Profile:
        """Create the folder (0700) if needed, and tighten its mode."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise ReaderError(f"cannot use the data folder {self.root}: {exc.strerror}") from None
        return self

    @property
    def identity_path(self) -> Path:
        return self.root / "identity.age"

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def token_path(self) -> Path:
        return self.root / "token.json"

    @property
    def db_path(self) -> Path:
        return self.root / "reader.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def ensure_exports(self) -> Path:
        """The default export folder, created 0700 if needed (and tightened if it exists).

        Inside the data folder on purpose: a journalist who keeps the reader on an encrypted
        volume keeps its decrypted exports there too, not in an unencrypted home folder."""
        folder = self.exports_dir
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
        except OSError as exc:
            raise ReaderError(f"cannot use the export folder {folder}: {exc.strerror}") from None
        return folder

    # -- config ----------------------------------------------------------------------------

    def load_config(self) -> ReaderConfig:
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotInitialised(
                f"no reader set up in {self.root}: run `sealdrop reader init` first"
            ) from None
        except (OSError, ValueError) as exc:
            raise ReaderError(f"cannot read {self.config_path}: {exc}") from None
        server, username = data.get("server"), data.get("username")
        proxy = data.get("proxy")
        if (
            not isinstance(server, str)
            or not isinstance(username, str)
            or not isinstance(proxy, str | None)
        ):
            raise ReaderError(f"{self.config_path} is malformed")
        return ReaderConfig(server=server, username=username, proxy=proxy)

    def save_config(self, config: ReaderConfig) -> None:
        body = {"server": config.server, "username": config.username, "proxy": config.proxy}
        write_private(self.config_path, json.dumps(body, indent=2).encode("utf-8"))

    # -- the interface's language ----------------------------------------------------------

    @property
    def language_path(self) -> Path:
        return self.root / "language"

    def language(self, chosen: str | None) -> str:
        """The local interface's language: ``chosen`` (then kept for the next runs), or the
        one kept, or English."""
        known = ("en", "fa")
        if chosen is not None:
            if chosen not in known:
                raise ReaderError(f"unknown language {chosen!r}: choose one of {', '.join(known)}")
            write_private(self.language_path, chosen.encode("ascii"))
            return chosen
        try:
            kept = self.language_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return "en"
        return kept if kept in known else "en"

    # -- token -----------------------------------------------------------------------------

    def save_token(self, token: str, expires_at: int) -> None:
        body = {"token": token, "expires_at": expires_at}
        write_private(self.token_path, json.dumps(body).encode("utf-8"))

    def load_token(self, now: float | None = None) -> str | None:
        """The saved token, or None if there is none or it has expired."""
        try:
            data = json.loads(self.token_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        token, expires_at = data.get("token"), data.get("expires_at")
        if not isinstance(token, str) or not token or not isinstance(expires_at, int):
            return None
        if expires_at - _EXPIRY_MARGIN <= (time.time() if now is None else now):
            return None
        return token

    def forget_token(self) -> None:
        self.token_path.unlink(missing_ok=True)
