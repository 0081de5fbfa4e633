"""A cap on the body of every request except uploads (``limits.max_form_bytes``).

Forms are a few hundred bytes; a page request has no body at all. Anything larger is refused:
at once when ``Content-Length`` declares it (nothing is read), and as soon as the count passes the
cap when the body is sent in chunks (the handler's read fails with UploadTooLarge, which the
error layer turns into the "Too large" page). Uploads (``POST /submit``) have their own, larger
limits, checked while streaming.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealdrop.errors import UploadTooLarge


class CapBodies:
    def __init__(
        self,
        app: ASGIApp,
        cap: int,
        exempt: set[tuple[str, str]],
        refuse: ASGIApp,
        exempt_prefixes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._app = app
        self._cap = cap
        self._exempt = exempt
        # (method, path prefix): resumable uploads' PATCH /uploads/<id>, bounded by their own
        # Upload-Length (services/resumable.py).
        self._exempt_prefixes = exempt_prefixes
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope.get("method"), scope.get("path", "")
        if (
            scope["type"] != "http"
            or (method, path) in self._exempt
            or any(method == m and path.startswith(p) for m, p in self._exempt_prefixes)
        ):
            await self._app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self._cap):
                await self._refuse(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._cap:
                    raise UploadTooLarge(self._cap)
            return message

        await self._app(scope, counted, send)
