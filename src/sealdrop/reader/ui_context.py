"""What every page of the reader's local web interface shares: the data folder, the run's state
in memory, the templates, the API client and the syncer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse

from sealdrop.errors import SealdropError
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import open_client
from sealdrop.reader.profile import Profile
from sealdrop.reader.reader import Reader
from sealdrop.reader.ui_guard import UiState
from sealdrop.reader.ui_sync import Syncer
from sealdrop.reader.ui_views import Pages

__all__ = ["ClientFactory", "UiContext"]

T = TypeVar("T")
ClientFactory = Callable[[], ApiClient]


class UiContext:
    """``client_factory`` makes the API client (by default from the saved token, read on each
    use so that a login, in the page or in a terminal, takes effect at once; that client is
    closed after each use, otherwise the factory's owner closes it)."""

    def __init__(
        self,
        profile: Profile,
        state: UiState,
        pages: Pages,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.profile = profile
        self.state = state
        self.pages = pages
        self.client_factory = client_factory
        self.syncer = Syncer(profile, state.sync, client_factory)

    @contextmanager
    def client(self) -> Iterator[ApiClient]:
        if self.client_factory is not None:
            yield self.client_factory()
            return
        with open_client(self.profile) as client:
            yield client

    async def with_reader(self, work: Callable[[Reader], T]) -> T:
        """``work`` with the reader, in a worker thread (it blocks: SQLite, HTTP, decryption)."""

        def run() -> T:
            with Reader.open(self.profile, self.client_factory) as reader:
                return work(reader)

        return await run_in_threadpool(run)

    async def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page in the layout: the status bar (online, offline, last sync) and the Admin
        link (only for an admin) come with every one."""
        last = await self.with_reader(Reader.last_synced)
        state_class, state_text = self.pages.status_line(self.state.sync, last)
        return self.pages.render(
            template,
            status,
            csrf=self.state.csrf,
            admin=await run_in_threadpool(self.is_admin),
            sync_state=state_class,
            sync_text=state_text,
            sync=self.state.sync,
            **context,
        )

    def is_admin(self) -> bool:
        """Whether the logged-in account is an admin (asked once, when the server answers)."""
        if self.state.admin is None and self.state.sync.online is not False:
            try:
                with self.client() as client:
                    self.state.admin = client.me().role == "admin"
            except SealdropError:
                return False
        return bool(self.state.admin)

    @staticmethod
    def see(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)
