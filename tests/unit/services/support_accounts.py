"""A real instance (as `sealdrop init` makes it) on SQLite, with the service graph the server
builds and a clock that moves only when told to: the ground the account and auth tests stand on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from sealdrop.config import Settings, load_settings
from sealdrop.crypto import passwords
from sealdrop.ids import UserId
from sealdrop.services.accounts import NewAccount
from sealdrop.services.auth import IssuedToken
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces_accounts import Role, UserRecord
from sealdrop.testing import FakeClock

# A moment on a 30-second TOTP step boundary, so that offsets of +-29 s stay in one step.
START = 1_800_013_200.0


class AccountsEnv:
    """An instance with its services, a FakeClock and a separate handle on its database."""

    def __init__(self, root: Path) -> None:
        self.root = init_instance(root / "i")
        # Apprise URLs on: the notification tests set some (off is the default, tested there).
        self.settings: Settings = load_settings(
            self.root, env={"SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true"}
        )
        self.clock = FakeClock(START)
        self.services: Services = build_services(self.settings, clock=self.clock)
        self.db = SqlDatabase(self.settings.database_url)

    def account(
        self, name: str = "alice", role: Role = "journalist", passphrase: str | None = None
    ) -> NewAccount:
        return self.services.accounts.create(name, role, actor="test", passphrase=passphrase)

    def code(self, account: NewAccount | str, offset: float = 0.0) -> str:
        """The TOTP code of the current moment (plus ``offset`` seconds)."""
        secret = account if isinstance(account, str) else account.totp_secret
        return passwords.totp_code(secret, self.clock.now() + offset)

    def login(self, account: NewAccount, offset: float = 0.0) -> IssuedToken:
        return self.services.auth.login(
            account.user.username, account.passphrase, self.code(account, offset)
        )

    def next_step(self) -> None:
        """Move to the next TOTP step, so that a fresh code exists."""
        self.clock.advance(passwords.TOTP_INTERVAL)

    def token_rows(self, user_id: UserId | None = None) -> int:
        query = "SELECT count(*) FROM api_tokens"
        params: dict[str, str] = {}
        if user_id is not None:
            query += " WHERE user_id = :user_id"
            params["user_id"] = user_id
        with self.db.engine.connect() as conn:
            return int(conn.execute(text(query), params).scalar_one())

    def stored(self, user_id: UserId) -> UserRecord:
        """The account as stored, secrets and lock-out state included (services show a view)."""
        with self.db.transaction() as repos:
            record = repos.users.get(user_id)
        assert record is not None
        return record

    def lock(self, user_id: UserId, until: int) -> None:
        """Put an account in the locked state directly, as the back-off would."""
        with self.db.transaction() as repos:
            repos.users.record_failure(user_id, until)

    def stored_bytes(self) -> bytes:
        """Every byte of every file in the instance: the database, its WAL, the blob store."""
        return b"".join(p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file())

    def close(self) -> None:
        self.services.close()
        self.db.close()
