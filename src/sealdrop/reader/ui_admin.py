"""The administration page of the reader's local web interface (admins only; the server refuses
anyone else, and the page is not even offered to them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sealdrop.errors import ApiError
from sealdrop.reader.client import ApiClient
from sealdrop.reader.ui_context import UiContext
from sealdrop.reader.ui_guard import posted_form

__all__ = ["AdminPages"]

Work = Callable[[ApiClient], dict[str, Any] | None]
"""A change made as an admin: its dict (one-time secrets) is shown on the page; None redirects
back to it."""


class AdminPages:
    def __init__(self, ui: UiContext) -> None:
        self._ui = ui
        self._state = ui.state
        self._client = ui.client

    def routes(self) -> list[Route]:
        return [
            Route("/admin", self.admin),
            Route("/admin/users", self.create_user, methods=["POST"]),
            Route("/admin/users/{user_id:str}/{action:str}", self.user_action, methods=["POST"]),
            Route("/admin/recipients", self.add_recipient, methods=["POST"]),
            Route(
                "/admin/recipients/{recipient_id:str}/remove",
                self.remove_recipient,
                methods=["POST"],
            ),
            Route("/admin/settings", self.change_settings, methods=["POST"]),
        ]

    # -- plumbing --------------------------------------------------------------------------

    def _page(self, client: ApiClient, status: int = 200, **shown: Any) -> dict[str, Any]:
        return {
            "status": status,
            "users": client.users(),
            "recipients": client.recipients(),
            "settings": client.settings(),
            **shown,
        }

    def _work(self, work: Work) -> dict[str, Any] | None:
        """Run ``work`` as an admin; an API error is shown on the page as text."""
        with self._client() as client:
            if client.me().role != "admin":
                raise HTTPException(403, "administration is for admins only")
            try:
                shown = work(client)
            except ApiError as exc:
                return self._page(client, status=400, error=str(exc))
            return None if shown is None else self._page(client, **shown)

    async def _run(self, work: Work) -> Response:
        answer = await run_in_threadpool(self._work, work)
        if answer is None:
            return RedirectResponse("/admin", status_code=303)
        return await self._ui.page("admin.html", current="admin", **answer)

    # -- routes ----------------------------------------------------------------------------

    async def admin(self, request: Request) -> Response:
        return await self._run(lambda client: {})

    async def create_user(self, request: Request) -> Response:
        data = await posted_form(request, self._state)
        username = data.get("username", "").strip()
        role = data.get("role", "journalist")
        return await self._run(lambda client: {"created": client.create_user(username, role)})

    async def user_action(self, request: Request) -> Response:
        await posted_form(request, self._state)
        user_id = str(request.path_params["user_id"])
        action = str(request.path_params["action"])

        def work(client: ApiClient) -> dict[str, Any] | None:
            if action == "disable":
                client.disable_user(user_id)
            elif action == "enable":
                client.enable_user(user_id)
            elif action == "reset-2fa":
                uri = client.reset_2fa(user_id)
                users = {u.id: u.username for u in client.users()}
                return {"enrolment": {"username": users.get(user_id, user_id), "totp_uri": uri}}
            else:
                raise HTTPException(404, "no such action")
            return None

        return await self._run(work)

    async def add_recipient(self, request: Request) -> Response:
        data = await posted_form(request, self._state)
        key, name = data.get("public_key", "").strip(), data.get("name", "").strip()

        def work(client: ApiClient) -> None:
            client.add_recipient(key, name)

        return await self._run(work)

    async def remove_recipient(self, request: Request) -> Response:
        await posted_form(request, self._state)
        recipient_id = str(request.path_params["recipient_id"])

        def work(client: ApiClient) -> None:
            client.remove_recipient(recipient_id)

        return await self._run(work)

    async def change_settings(self, request: Request) -> Response:
        data = await posted_form(request, self._state)

        def work(client: ApiClient) -> dict[str, Any] | None:
            current = client.settings()
            wanted: dict[str, Any] = {
                "accepting_submissions": data.get("accepting_submissions") == "1",
                "files_enabled": data.get("files_enabled") == "1",
            }
            for name in ("max_upload_bytes", "max_message_chars"):
                raw = data.get(name, "").strip()
                try:
                    wanted[name] = int(raw)
                except ValueError:
                    return {"error": f"{name} must be a whole number, not {raw!r}"}
            changes = {k: v for k, v in wanted.items() if getattr(current, k) != v}
            if changes:
                client.change_settings(changes)
            return None

        return await self._run(work)
