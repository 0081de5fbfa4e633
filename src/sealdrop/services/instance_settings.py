"""Instance settings that admins change at run time through the API.

They start from sealdrop.toml and are overridden by what an admin stored in the database, so a
change takes effect at once, for the very next request, without a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sealdrop.config import Settings
from sealdrop.errors import InputError
from sealdrop.services.audit import AuditTrail
from sealdrop.storage.interfaces import Database, Repositories


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    accepting_submissions: bool
    files_enabled: bool
    max_upload_bytes: int
    max_message_chars: int


_BOOLS = {"accepting_submissions", "files_enabled"}
_INTS = {"max_upload_bytes": (1024, 1 << 40), "max_message_chars": (1, 10_000_000)}


class InstanceSettings:
    def __init__(self, database: Database, settings: Settings, audit: AuditTrail) -> None:
        self._db = database
        self._defaults = RuntimeSettings(
            accepting_submissions=True,
            files_enabled=True,
            max_upload_bytes=settings.max_upload_bytes,
            max_message_chars=settings.max_message_chars,
        )
        self._audit = audit
        # Fixed for the process (sealdrop.toml, not the database): which kind of key the
        # instance encrypts to (``recipients.encryption_keys``).
        self.post_quantum = settings.post_quantum

    def current(self) -> RuntimeSettings:
        with self._db.transaction(read_only=True) as repos:
            return self.current_in(repos)

    def current_in(self, repos: Repositories) -> RuntimeSettings:
        """The settings as seen by a transaction a caller already has open (a page that reads
        several things reads them in one transaction)."""
        return self._merge(repos.settings.all())

    def update(self, actor: str, changes: dict[str, Any]) -> RuntimeSettings:
        values: dict[str, str] = {}
        for key, value in changes.items():
            if key in _BOOLS:
                if not isinstance(value, bool):
                    raise InputError(f"{key} must be true or false")
                values[key] = "true" if value else "false"
            elif key in _INTS:
                low, high = _INTS[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not low <= value <= high
                ):
                    raise InputError(f"{key} must be an integer from {low} to {high}")
                values[key] = str(value)
            else:
                raise InputError("unknown setting")  # not the key: it came from the request
        with self._db.transaction() as repos:
            for key, value in values.items():
                repos.settings.set(key, value)
                self._audit.record(repos, actor, f"settings.{key}", None)
            stored = repos.settings.all()
        return self._merge(stored)

    def _merge(self, stored: dict[str, str]) -> RuntimeSettings:
        values: dict[str, Any] = asdict(self._defaults)
        for key, text in stored.items():
            if key in _BOOLS:
                values[key] = text == "true"
            elif key in _INTS and text.isdigit():
                values[key] = int(text)
        return RuntimeSettings(**values)

    @staticmethod
    def as_dict(settings: RuntimeSettings) -> dict[str, Any]:
        return asdict(settings)
