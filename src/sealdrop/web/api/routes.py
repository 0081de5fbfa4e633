"""The journalist API's endpoints under /api/v1.

Endpoints are plain functions (FastAPI runs them in worker threads, since every service call
blocks on the database or the disk). Authentication is a dependency; admin-only endpoints add a
role check. Ids of the wrong type, of deleted items and of made-up items all answer 404.

(No ``from __future__ import annotations`` here: FastAPI must see the ``Caller``/``Admin``
dependency aliases, which are local to ``build_router``, as real objects, not strings.)
"""

import base64
import re
from collections.abc import Iterator
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sealdrop import wire
from sealdrop.errors import AuthenticationFailed, PermissionDenied
from sealdrop.ids import UserId
from sealdrop.services.accounts import UserView
from sealdrop.services.auth import Principal
from sealdrop.services.container import Services
from sealdrop.services.inbox import Download, ItemView, SourceView
from sealdrop.web.api.errors import error_json
from sealdrop.web.api.routes_notifications import add_notification_routes

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Python refuses to parse very long integers; no blob is near 10**18 bytes, so any longer number
# means "beyond the end".
_HUGE = 10**18


def _number(digits: str) -> int:
    return _HUGE if len(digits) > 18 else int(digits)


_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": wire.ErrorBody} for code in (400, 401, 403, 404, 409, 413, 429, 503)
}
# Triage refuses a well-formed request that names an unusable assignee or labels.
_UNPROCESSABLE: dict[int | str, dict[str, object]] = {422: {"model": wire.ErrorBody}}


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=_ERRORS)
    bearer = HTTPBearer(auto_error=False)

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise AuthenticationFailed("authentication required")
        return services.auth.authenticate(credentials.credentials)

    def admin(user: Annotated[Principal, Depends(principal)]) -> Principal:
        if not user.is_admin:
            raise PermissionDenied("admins only")
        return user

    Caller = Annotated[Principal, Depends(principal)]  # noqa: N806 - a type alias
    Admin = Annotated[Principal, Depends(admin)]  # noqa: N806 - a type alias

    # -- authentication ------------------------------------------------------------------------

    @router.post("/token", response_model=wire.TokenResponse, tags=["auth"])
    def token(body: wire.TokenRequest) -> wire.TokenResponse:
        """Log in with username, passphrase and a TOTP code; get a bearer token (8 h)."""
        issued = services.auth.login(body.username, body.passphrase, body.totp)
        return wire.TokenResponse(token=issued.token, expires_at=issued.expires_at)

    @router.post("/logout", status_code=204, tags=["auth"])
    def logout(caller: Caller) -> Response:
        """Revoke the token used for this request."""
        services.auth.logout(caller)
        return Response(status_code=204)

    @router.get("/me", response_model=wire.Me, tags=["me"])
    def me(caller: Caller) -> wire.Me:
        keys = services.accounts.recipients(caller.user.id)
        return wire.Me(
            **_user(caller.user).model_dump(),
            keys=[wire.DeviceKey(id=k.id, public_key=k.public_key, name=k.name) for k in keys],
        )

    @router.post("/me/keys", response_model=wire.DeviceKey, status_code=201, tags=["me"])
    def add_key(caller: Caller, body: wire.NewDeviceKey) -> wire.DeviceKey:
        """Register a reader device's age public key: new submissions are encrypted to it."""
        key = services.accounts.add_recipient(caller.user.id, body.public_key, body.name)
        return wire.DeviceKey(id=key.id, public_key=key.public_key, name=key.name)

    @router.delete("/me/keys/{key_id}", status_code=204, tags=["me"])
    def remove_key(caller: Caller, key_id: str) -> Response:
        services.accounts.remove_recipient(caller.user.id, key_id)
        return Response(status_code=204)

    # -- sources -------------------------------------------------------------------------------

    @router.get("/sources", response_model=wire.SourcePage, tags=["sources"])
    def sources(
        caller: Caller,
        updated_since: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        starred: bool | None = None,
    ) -> wire.SourcePage:
        """Sources that changed after ``updated_since``, oldest change first. Pass ``next`` as
        ``updated_since`` to get the following page."""
        views, following = services.inbox.sources(caller, updated_since, limit, starred)
        return wire.SourcePage(sources=[_source(v) for v in views], next=following)

    @router.get("/sources/{source_id}", response_model=wire.Source, tags=["sources"])
    def source(caller: Caller, source_id: str) -> wire.Source:
        return _source(services.inbox.source(caller, source_id))

    @router.put("/sources/{source_id}/star", response_model=wire.Source, tags=["sources"])
    def star(caller: Caller, source_id: str, body: wire.StarRequest) -> wire.Source:
        return _source(services.inbox.set_starred(caller, source_id, body.starred))

    @router.put(
        "/sources/{source_id}/assignee",
        response_model=wire.Source,
        tags=["sources"],
        responses=_UNPROCESSABLE,
    )
    def assign(caller: Caller, source_id: str, body: wire.AssigneeRequest) -> wire.Source:
        """Assign the source to an enabled account, or to nobody (``null``)."""
        return _source(services.triage.assign(caller, source_id, body.username))

    @router.put(
        "/sources/{source_id}/labels",
        response_model=wire.Source,
        tags=["sources"],
        responses=_UNPROCESSABLE,
    )
    def labels(caller: Caller, source_id: str, body: wire.LabelsRequest) -> wire.Source:
        """Replace the source's labels (shared by every journalist)."""
        return _source(services.triage.set_labels(caller, source_id, body.labels))

    @router.put("/sources/{source_id}/hold", response_model=wire.Source, tags=["sources"])
    def hold(caller: Caller, source_id: str, body: wire.HoldRequest) -> wire.Source:
        """Put the source on hold (exempt from the retention rules), or take it off."""
        return _source(services.triage.set_hold(caller, source_id, body.hold))

    @router.get("/journalists", response_model=wire.Journalists, tags=["sources"])
    def journalists(caller: Caller) -> wire.Journalists:
        """The enabled accounts a source can be assigned to."""
        names = services.triage.journalists(caller)
        return wire.Journalists(journalists=[wire.Journalist(username=n) for n in names])

    @router.delete("/sources/{source_id}", status_code=204, tags=["sources"])
    def delete_source(caller: Caller, source_id: str) -> Response:
        services.inbox.delete_source(caller, source_id)
        return Response(status_code=204)

    @router.get("/sources/{source_id}/submissions", response_model=wire.Items, tags=["items"])
    def submissions(caller: Caller, source_id: str) -> wire.Items:
        return wire.Items(items=[_item(i) for i in services.inbox.submissions(caller, source_id)])

    @router.get("/submissions/{submission_id}", response_model=wire.Item, tags=["items"])
    def submission(caller: Caller, submission_id: str) -> wire.Item:
        return _item(services.inbox.submission(caller, submission_id))

    @router.get(
        "/submissions/{submission_id}/content",
        tags=["items"],
        response_class=StreamingResponse,
        responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}, 416: {}},
    )
    def submission_content(caller: Caller, submission_id: str, request: Request) -> Response:
        """The age ciphertext, streamed; its ETag is its content digest; single byte ranges."""
        return _download(request, services.inbox.open_submission(caller, submission_id))

    @router.delete("/submissions/{submission_id}", status_code=204, tags=["items"])
    def delete_submission(caller: Caller, submission_id: str) -> Response:
        services.inbox.delete_submission(caller, submission_id)
        return Response(status_code=204)

    @router.get("/sources/{source_id}/replies", response_model=wire.Items, tags=["items"])
    def replies(caller: Caller, source_id: str) -> wire.Items:
        return wire.Items(items=[_item(i) for i in services.inbox.replies(caller, source_id)])

    @router.post(
        "/sources/{source_id}/replies",
        response_model=wire.Item,
        status_code=201,
        tags=["items"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def add_reply(caller: Caller, source_id: str, request: Request) -> wire.Item:
        """Upload a reply: an age file encrypted on the journalist's machine to the source's
        reply key (and the journalists' own keys). The server checks only its form and size."""
        body = await request.body()
        view = await anyio.to_thread.run_sync(services.inbox.add_reply, caller, source_id, body)
        return _item(view)

    @router.get(
        "/replies/{reply_id}/content",
        tags=["items"],
        response_class=StreamingResponse,
        responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}, 416: {}},
    )
    def reply_content(caller: Caller, reply_id: str, request: Request) -> Response:
        return _download(request, services.inbox.open_reply(caller, reply_id))

    @router.delete("/replies/{reply_id}", status_code=204, tags=["items"])
    def delete_reply(caller: Caller, reply_id: str) -> Response:
        services.inbox.delete_reply(caller, reply_id)
        return Response(status_code=204)

    @router.get("/keys", response_model=wire.ReplyKeys, tags=["items"])
    def reply_keys(caller: Caller) -> wire.ReplyKeys:
        """The keys a reply is encrypted to besides the source's own, so that every journalist
        (and the organisation's offline keys) can read the conversation later."""
        return wire.ReplyKeys(
            keys=services.submissions.recipient_keys(),
            post_quantum=services.settings.post_quantum,
        )

    @router.post("/seen", response_model=wire.SeenResponse, tags=["items"])
    def seen(caller: Caller, body: wire.SeenRequest) -> wire.SeenResponse:
        """Mark submissions and replies as seen by the caller; unknown ids are ignored."""
        return wire.SeenResponse(marked=services.inbox.mark_seen(caller, body.ids))

    # -- admin ---------------------------------------------------------------------------------

    @router.get("/users", response_model=wire.Users, tags=["admin"])
    def users(caller: Admin) -> wire.Users:
        return wire.Users(users=[_user(u) for u in services.accounts.list()])

    @router.post("/users", response_model=wire.CreatedUser, status_code=201, tags=["admin"])
    def create_user(caller: Admin, body: wire.NewUser) -> wire.CreatedUser:
        new = services.accounts.create(body.username, body.role, caller.user.username)
        return wire.CreatedUser(
            user=_user(new.user), passphrase=new.passphrase, totp_uri=new.totp_uri
        )

    @router.post("/users/{user_id}/disable", response_model=wire.User, tags=["admin"])
    def disable_user(caller: Admin, user_id: str) -> wire.User:
        return _user(services.accounts.set_disabled(_uid(user_id), True, caller.user.username))

    @router.post("/users/{user_id}/enable", response_model=wire.User, tags=["admin"])
    def enable_user(caller: Admin, user_id: str) -> wire.User:
        return _user(services.accounts.set_disabled(_uid(user_id), False, caller.user.username))

    @router.post("/users/{user_id}/reset-2fa", response_model=wire.Enrolment, tags=["admin"])
    def reset_2fa(caller: Admin, user_id: str) -> wire.Enrolment:
        enrolment = services.accounts.reset_totp(_uid(user_id), caller.user.username)
        return wire.Enrolment(totp_uri=enrolment.totp_uri)

    @router.get("/recipients", response_model=wire.Recipients, tags=["admin"])
    def recipients(caller: Admin) -> wire.Recipients:
        return wire.Recipients(
            recipients=[
                wire.Recipient(id=r.id, public_key=r.public_key, name=r.name)
                for r in services.recipients.list()
            ]
        )

    @router.post("/recipients", response_model=wire.Recipient, status_code=201, tags=["admin"])
    def add_recipient(caller: Admin, body: wire.NewRecipient) -> wire.Recipient:
        r = services.recipients.add(body.public_key, body.name, actor=caller.user.username)
        return wire.Recipient(id=r.id, public_key=r.public_key, name=r.name)

    @router.delete("/recipients/{recipient_id}", status_code=204, tags=["admin"])
    def remove_recipient(caller: Admin, recipient_id: str) -> Response:
        services.recipients.remove_checked(recipient_id, actor=caller.user.username)
        return Response(status_code=204)

    @router.get("/settings", response_model=wire.InstanceSettings, tags=["admin"])
    def get_settings(caller: Admin) -> wire.InstanceSettings:
        return wire.InstanceSettings(
            **services.instance_settings.as_dict(services.instance_settings.current())
        )

    @router.patch("/settings", response_model=wire.InstanceSettings, tags=["admin"])
    def change_settings(caller: Admin, body: wire.SettingsChange) -> wire.InstanceSettings:
        changes = body.model_dump(exclude_none=True)
        updated = services.instance_settings.update(caller.user.username, changes)
        return wire.InstanceSettings(**services.instance_settings.as_dict(updated))

    @router.get("/audit", response_model=wire.AuditPage, tags=["admin"])
    def audit(
        caller: Admin,
        before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> wire.AuditPage:
        entries = services.audit.page(before, limit + 1)
        more = len(entries) > limit
        entries = list(entries)[:limit]
        return wire.AuditPage(
            entries=[
                wire.AuditEntry(
                    id=e.id,
                    day=e.day,
                    username=e.username,
                    action=e.action,
                    source=e.source_pseudonym,
                )
                for e in entries
            ],
            next=entries[-1].id if more else None,
        )

    add_notification_routes(router, services, principal, admin)
    return router


def _uid(user_id: str) -> UserId:
    return UserId(user_id)


def _user(user: UserView) -> wire.User:
    return wire.User(id=user.id, username=user.username, role=user.role, disabled=user.disabled)


def _source(view: SourceView) -> wire.Source:
    return wire.Source(
        id=view.id,
        pseudonym=view.pseudonym,
        reply_key=view.reply_key,
        starred=view.starred,
        version=view.version,
        created_day=view.created_day,
        submissions=view.submissions,
        unread=view.unread,
        assignee=view.assignee,
        labels=list(view.labels),
        hold=view.hold,
    )


def _item(view: ItemView) -> wire.Item:
    return wire.Item(
        id=view.id,
        source_id=view.source_id,
        seq=view.seq,
        kind=view.kind,  # type: ignore[arg-type]
        arrival_day=view.arrival_day,
        size=view.size,
        digest=view.digest,
        seen=view.seen,
        metadata=base64.b64encode(view.metadata).decode("ascii") if view.metadata else None,
        author=view.author,
    )


def _download(request: Request, download: Download) -> Response:
    """Stream a blob with ETag (its content digest), If-None-Match and one byte range."""
    etag = f'"{download.digest}"'
    headers = {"etag": etag, "accept-ranges": "bytes"}
    if download.digest and request.headers.get("if-none-match") == etag:
        download.stream.close()
        return Response(status_code=304, headers=headers)
    start, end = 0, download.size - 1
    status = 200
    wanted = request.headers.get("range")
    if wanted:
        match = _RANGE.match(wanted.strip())
        first, last = (match.group(1), match.group(2)) if match else ("", "")
        if not match or (not first and not last):
            download.stream.close()
            return _unsatisfiable(download.size)
        if first:
            start = _number(first)
            end = min(_number(last), download.size - 1) if last else download.size - 1
        else:
            start = max(0, download.size - _number(last))
        if start > end or start >= download.size:
            download.stream.close()
            return _unsatisfiable(download.size)
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{download.size}"
    headers["content-length"] = str(end - start + 1)
    return StreamingResponse(
        _chunks(download, start, end - start + 1),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def _chunks(download: Download, start: int, length: int) -> Iterator[bytes]:
    with download.stream as stream:
        stream.seek(start)
        while length > 0:
            chunk = stream.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _unsatisfiable(size: int) -> Response:
    return error_json(
        416,
        "range_not_satisfiable",
        "the requested byte range is not within the content",
        {"content-range": f"bytes */{size}"},
    )
