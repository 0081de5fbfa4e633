"""tus 1.0 (core, creation, termination, expiration) at ``/uploads``: uploads that resume.

Same rules as the form (``POST /submit``): a live, confirmed session; the page's anti-forgery
token, here in an ``X-CSRF-Token`` header on every request that changes something; cross-site
requests refused before they reach here (``web/fetch_metadata.py``); an upload URL that another
session did not create is 404 to it. What is stored and how: ``services/resumable.py``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
from collections.abc import Awaitable, Callable

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sealdrop.errors import ClientDisconnected, Conflict, CsrfTokenInvalid, MalformedUpload
from sealdrop.services.resumable import ResumableUploads, UploadStatus
from sealdrop.services.sessions import SessionService, SourceSession

TUS_VERSION = "1.0.0"
_EXTENSIONS = "creation,termination,expiration"
_OCTETS = "application/offset+octet-stream"
# Upload-Expires is rounded up to the hour: an exact time would show the server's clock.
_EXPIRES_GRANULARITY = 3600
_MAX_METADATA = 4096

SessionOf = Callable[[Request], Awaitable[SourceSession]]


def _headers(**extra: str) -> dict[str, str]:
    return {"tus-resumable": TUS_VERSION, **extra}


def _expires(status: UploadStatus) -> str:
    rounded = -(-status.expires // _EXPIRES_GRANULARITY) * _EXPIRES_GRANULARITY
    return email.utils.formatdate(rounded, usegmt=True)


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise MalformedUpload(f"missing or malformed {name}")
    return int(value)


def _metadata(header: str) -> dict[str, str]:
    """tus Upload-Metadata: ``key base64value`` pairs separated by commas."""
    if len(header) > _MAX_METADATA:
        raise MalformedUpload("Upload-Metadata too long")
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedUpload("malformed Upload-Metadata") from None
    return pairs


class TusEndpoint:
    def __init__(
        self, uploads: ResumableUploads, session_of: SessionOf, slots: anyio.CapacityLimiter
    ) -> None:
        self._uploads = uploads
        self._session_of = session_of
        self._slots = slots

    def routes(self) -> list[Route]:
        return [
            Route("/uploads", self.options, methods=["OPTIONS"]),
            Route("/uploads", self.create, methods=["POST"]),
            Route("/uploads/{upload_id}", self.head, methods=["HEAD"]),
            Route("/uploads/{upload_id}", self.patch, methods=["PATCH"]),
            Route("/uploads/{upload_id}", self.delete, methods=["DELETE"]),
        ]

    async def _checked(self, request: Request) -> SourceSession:
        """The session, the protocol version and the anti-forgery token of a changing request.
        The session first: without one, every route of the interface answers alike (403)."""
        session = await self._session_of(request)
        if request.headers.get("tus-resumable") != TUS_VERSION:
            raise _Refusal(412)
        if not SessionService.csrf_valid(session, request.headers.get("x-csrf-token")):
            raise CsrfTokenInvalid()
        return session

    async def options(self, request: Request) -> Response:
        return Response(
            status_code=204,
            headers=_headers(**{"tus-version": TUS_VERSION, "tus-extension": _EXTENSIONS}),
        )

    async def create(self, request: Request) -> Response:
        try:
            session = await self._checked(request)
        except _Refusal as refusal:
            return refusal.response()
        if request.headers.get("content-length", "0") != "0":
            # creation-with-upload is not offered: the body goes in PATCH requests.
            raise MalformedUpload("a body on upload creation")
        length = _int_header(request, "upload-length")
        meta = _metadata(request.headers.get("upload-metadata", ""))
        filename = meta.get("filename") or meta.get("name") or "upload"
        content_type = meta.get("filetype") or meta.get("type") or "application/octet-stream"
        upload_id, status = await anyio.to_thread.run_sync(
            functools.partial(
                self._uploads.create, session, length, filename[:1024], content_type[:255]
            )
        )
        root = request.scope.get("root_path", "")
        return Response(
            status_code=201,
            headers=_headers(
                location=f"{root}/uploads/{upload_id}", **{"upload-expires": _expires(status)}
            ),
        )

    async def head(self, request: Request) -> Response:
        session = await self._session_of(request)
        status = await anyio.to_thread.run_sync(
            self._uploads.status, session, request.path_params["upload_id"]
        )
        return Response(status_code=200, headers=self._status_headers(status))

    def _status_headers(self, status: UploadStatus) -> dict[str, str]:
        return _headers(
            **{
                "upload-offset": str(status.offset),
                "upload-length": str(status.length),
                "upload-expires": _expires(status),
            }
        )

    async def patch(self, request: Request) -> Response:
        try:
            session = await self._checked(request)
        except _Refusal as refusal:
            return refusal.response()
        if request.headers.get("content-type", "").split(";")[0].strip() != _OCTETS:
            return Response(status_code=415, headers=_headers())
        offset = _int_header(request, "upload-offset")
        body = request.stream().__aiter__()

        async def next_piece() -> bytes:
            try:
                return await body.__anext__()
            except StopAsyncIteration:
                return b""

        def read() -> bytes:
            try:
                return anyio.from_thread.run(next_piece)
            except ClientDisconnect:
                raise ClientDisconnected() from None

        try:
            status = await anyio.to_thread.run_sync(
                functools.partial(
                    self._uploads.receive, session, request.path_params["upload_id"], offset, read
                ),
                limiter=self._slots,
            )
        except Conflict:
            return Response(status_code=409, headers=_headers())
        return Response(status_code=204, headers=self._status_headers(status))

    async def delete(self, request: Request) -> Response:
        try:
            session = await self._checked(request)
        except _Refusal as refusal:
            return refusal.response()
        await anyio.to_thread.run_sync(
            self._uploads.delete, session, request.path_params["upload_id"]
        )
        return Response(status_code=204, headers=_headers())


class _Refusal(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status

    def response(self) -> Response:
        return Response(status_code=self.status, headers=_headers(**{"tus-version": TUS_VERSION}))
