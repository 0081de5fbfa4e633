"""A client of the journalist API (sync httpx): login, listings, changes, verified downloads.

The bearer token lives in this object: it is never logged or put in a repr; only the CLI may save
it (``use_token``/``token``) in a 0600 file in the reader's data folder, until it expires. Every
answer is validated with the API's own models (``sealdrop.wire``) before it is used, ids and
digests included, because the reader turns ids into file names (a hostile server must not name
``../../.bashrc``).
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from socksio.exceptions import ProtocolError as SocksProtocolError

from sealdrop import wire
from sealdrop.errors import (
    ApiError,
    LoginRefused,
    NotAnApi,
    ProtocolViolation,
    RemoteNotFound,
    ServerUnreachable,
    TokenExpired,
)
from sealdrop.reader.compat import items_of_an_older_server
from sealdrop.reader.download import DownloadResult, Progress, download
from sealdrop.reader.socks import socks_transport

__all__ = ["ApiClient", "content_path"]

M = TypeVar("M", bound=BaseModel)

# tor's SOCKS answer that it could not connect: with ExtendedErrors (Tor Browser's) onion failures
# get codes 0xF0-0xF7, which socksio cannot parse and reports as a protocol error; the standard
# codes (a general failure after tor's own wait, ~45 s for a revoked device in the end-to-end
# test; TTL expired) reach httpx as a ProxyError, whose class name alone told a journalist nothing.
_ONION_REFUSED = (
    "connection failed: tor could not reach the onion service (it is not published yet or is "
    "restarting, or this device's client key is missing or was revoked)"
)
# A timeout through tor: tor gives a revoked or missing client key no quick answer (its own
# SocksTimeout is 2 minutes), so what the journalist sees after the client's timeout is this.
_TOR_TIMED_OUT = (
    "connection failed: no answer in time ({name}); through tor this usually means the onion "
    "service could not be reached (it is not published yet or is restarting, or this device's "
    "client key is missing or was revoked)"
)
_ID = re.compile(r"[0-9a-f]{32}")
_REF = re.compile(r"[A-Za-z0-9_-]{1,64}")


def content_path(kind: str, item_id: str) -> str:
    """The API path of an item's ciphertext."""
    collection = "replies" if kind == "reply" else "submissions"
    return f"/{collection}/{_id(item_id)}/content"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (certifi's CA bundle, httpx's defaults) for every client of the process:
    httpx builds and loads a new one for each client otherwise, ~25 ms of CPU, and the reader UI
    makes a client for each background sync. A context only verifies; sharing it shares no
    session or secret."""
    return httpx.create_ssl_context()


class ApiClient:
    """The journalist API at ``base_url`` (the listener's root, or ``…/api/v1``)."""

    def __init__(
        self,
        base_url: str,
        *,
        proxy: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        if not root.endswith("/api/v1"):
            root += "/api/v1"
        self.base_url = root
        self._token: str | None = None
        self._through_tor = proxy is not None
        if transport is None and proxy is not None:
            # Through tor: the SOCKS handshake bounded by the timeout too (reader/socks.py).
            transport = socks_transport(proxy, timeout, _tls_context())
        self._http = httpx.Client(
            base_url=root,
            timeout=timeout,
            transport=transport,
            verify=_tls_context(),
            follow_redirects=False,
            trust_env=False,  # an environment proxy must not silently see the traffic
        )

    def __repr__(self) -> str:  # never the token
        state = "logged in" if self._token else "anonymous"
        return f"ApiClient({self.base_url!r}, {state})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    @property
    def token(self) -> str | None:
        """The bearer token of the current login (a secret: keep it in a 0600 file at most)."""
        return self._token

    def use_token(self, token: str) -> None:
        """Continue a login made earlier (a token saved by ``reader login``)."""
        if not token:
            raise ValueError("empty token")
        self._token = token

    def check_api(self) -> None:
        """NotAnApi unless ``base_url`` answers as a Sealdrop journalist API.

        Asked before any passphrase is sent: an unauthenticated ``GET /me`` must be the API's
        JSON 401 (``{"error": {"code": …}}``). The source listener, a web server or a proxy page
        answers something else (often an HTML 404), and the journalist is told which URL to give
        instead of a bare "404 Not Found"."""
        response = self._send("GET", "/me", auth=False)
        try:
            wire.ErrorBody.model_validate_json(response.content, strict=True)
            is_api = response.status_code == 401
        except ValidationError:
            is_api = False
        if not is_api:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise NotAnApi(
                f"{self.base_url} is not a Sealdrop journalist API (it answered "
                f"{response.status_code} {response.reason_phrase}, {kind}). Give the journalist "
                "API's URL: its own listener (by default http://127.0.0.1:8081, the [api] port "
                "of the instance) or the API's onion address, not the source interface's"
            )

    # -- authentication --------------------------------------------------------------------

    def login(self, username: str, passphrase: str, totp: str) -> int:
        """Log in; keep the token in this object. Returns its expiry (Unix time)."""
        body = {"username": username, "passphrase": passphrase, "totp": totp}
        response = self._send("POST", "/token", json=body, auth=False)
        if response.status_code == 401:
            raise LoginRefused("login refused: check username, passphrase and code")
        answer = _parse(wire.TokenResponse, self._ok(response, 200))
        if not answer.token:
            raise ProtocolViolation("malformed token answer")
        self._token = answer.token
        return answer.expires_at

    def logout(self) -> None:
        if self._token is not None:
            self._ok(self._send("POST", "/logout"), 204)
            self._token = None

    def me(self) -> wire.Me:
        return self._get(wire.Me, "/me")

    def register_key(self, public_key: str, name: str = "") -> str:
        """Register this device's age recipient; returns the key's id."""
        body = {"public_key": public_key, "name": name}
        response = self._send("POST", "/me/keys", json=body)
        return _parse(wire.DeviceKey, self._ok(response, 201)).id

    # -- listings --------------------------------------------------------------------------

    def source_page(self, updated_since: int, limit: int = 50) -> wire.SourcePage:
        params = {"updated_since": updated_since, "limit": limit}
        return self._get(wire.SourcePage, "/sources", params=params)

    def list_sources(self, updated_since: int = 0, limit: int = 50) -> Iterator[wire.SourcePage]:
        """Pages of sources changed after ``updated_since``, oldest change first."""
        cursor: int | None = updated_since
        while cursor is not None:
            page = self.source_page(cursor, limit)
            yield page
            if page.next is not None and page.next <= cursor:
                raise ProtocolViolation("source cursor went backwards")
            cursor = page.next

    def source(self, source_id: str) -> wire.Source:
        return self._get(wire.Source, f"/sources/{_id(source_id)}")

    def submissions(self, source_id: str) -> list[wire.Item]:
        return self._get(wire.Items, f"/sources/{_id(source_id)}/submissions").items

    def replies(self, source_id: str) -> list[wire.Item]:
        return self._get(wire.Items, f"/sources/{_id(source_id)}/replies").items

    def reply_keys(self) -> list[str]:
        """The age recipients a reply must be encrypted to besides the source's reply key: the
        organisation recipients and every active journalist's device keys."""
        return self._get(wire.ReplyKeys, "/keys").keys

    def post_quantum(self) -> bool:
        """Whether the instance encrypts to hybrid post-quantum keys (``crypto.post_quantum``)."""
        return self._get(wire.ReplyKeys, "/keys").post_quantum

    # -- changes ---------------------------------------------------------------------------

    def upload_reply(self, source_id: str, ciphertext: bytes) -> wire.Item:
        """Upload a reply already encrypted on this machine (an age file)."""
        headers = {"content-type": "application/octet-stream"}
        response = self._send(
            "POST", f"/sources/{_id(source_id)}/replies", content=ciphertext, headers=headers
        )
        return _parse(wire.Item, self._ok(response, 201))

    def set_starred(self, source_id: str, starred: bool) -> wire.Source:
        response = self._send("PUT", f"/sources/{_id(source_id)}/star", json={"starred": starred})
        return _parse(wire.Source, self._ok(response, 200))

    def assign(self, source_id: str, username: str | None) -> wire.Source:
        """Assign the source to an enabled account, or to nobody (None)."""
        body = {"username": username}
        response = self._send("PUT", f"/sources/{_id(source_id)}/assignee", json=body)
        return _parse(wire.Source, self._ok(response, 200))

    def set_labels(self, source_id: str, labels: list[str]) -> wire.Source:
        """Replace the source's labels."""
        body = {"labels": labels}
        response = self._send("PUT", f"/sources/{_id(source_id)}/labels", json=body)
        return _parse(wire.Source, self._ok(response, 200))

    def set_hold(self, source_id: str, hold: bool) -> wire.Source:
        """Put the source on hold (exempt from the server's retention rules), or take it off."""
        response = self._send("PUT", f"/sources/{_id(source_id)}/hold", json={"hold": hold})
        return _parse(wire.Source, self._ok(response, 200))

    def journalists(self) -> list[str]:
        """The usernames a source can be assigned to (every enabled account)."""
        return [j.username for j in self._get(wire.Journalists, "/journalists").journalists]

    def mark_seen(self, item_ids: list[str]) -> int:
        response = self._send("POST", "/seen", json={"ids": [_id(i) for i in item_ids]})
        return _parse(wire.SeenResponse, self._ok(response, 200)).marked

    def delete_source(self, source_id: str) -> None:
        self._ok(self._send("DELETE", f"/sources/{_id(source_id)}"), 204)

    def delete_submission(self, submission_id: str) -> None:
        self._ok(self._send("DELETE", f"/submissions/{_id(submission_id)}"), 204)

    def delete_reply(self, reply_id: str) -> None:
        self._ok(self._send("DELETE", f"/replies/{_id(reply_id)}"), 204)

    # -- administration (admins only; the server refuses anyone else) ---------------------

    def users(self) -> list[wire.User]:
        return self._get(wire.Users, "/users").users

    def create_user(self, username: str, role: str) -> wire.CreatedUser:
        """Create an account; the answer holds its passphrase and otpauth URI (shown once)."""
        response = self._send("POST", "/users", json={"username": username, "role": role})
        return _parse(wire.CreatedUser, self._ok(response, 201))

    def disable_user(self, user_id: str) -> wire.User:
        response = self._send("POST", f"/users/{_ref(user_id)}/disable")
        return _parse(wire.User, self._ok(response, 200))

    def enable_user(self, user_id: str) -> wire.User:
        response = self._send("POST", f"/users/{_ref(user_id)}/enable")
        return _parse(wire.User, self._ok(response, 200))

    def reset_2fa(self, user_id: str) -> str:
        """A new TOTP enrolment for the user; returns its otpauth URI (shown once)."""
        response = self._send("POST", f"/users/{_ref(user_id)}/reset-2fa")
        return _parse(wire.Enrolment, self._ok(response, 200)).totp_uri

    def recipients(self) -> list[wire.Recipient]:
        return self._get(wire.Recipients, "/recipients").recipients

    def add_recipient(self, public_key: str, name: str = "") -> wire.Recipient:
        body = {"public_key": public_key, "name": name}
        response = self._send("POST", "/recipients", json=body)
        return _parse(wire.Recipient, self._ok(response, 201))

    def remove_recipient(self, recipient_id: str) -> None:
        self._ok(self._send("DELETE", f"/recipients/{_ref(recipient_id)}"), 204)

    def settings(self) -> wire.InstanceSettings:
        return self._get(wire.InstanceSettings, "/settings")

    def change_settings(self, changes: dict[str, Any]) -> wire.InstanceSettings:
        response = self._send("PATCH", "/settings", json=changes)
        return _parse(wire.InstanceSettings, self._ok(response, 200))

    # -- content ---------------------------------------------------------------------------

    def download(
        self, path: str, dest: Path, expected_digest: str, progress: Progress | None = None
    ) -> DownloadResult:
        """Fetch ciphertext at ``path`` into ``dest``, verified and resumable (see
        :func:`sealdrop.reader.download.download`)."""

        @contextmanager
        def opener(headers: dict[str, str]) -> Iterator[httpx.Response]:
            try:
                with self._http.stream("GET", path, headers=self._auth(headers)) as response:
                    ranged = "range" in headers
                    if response.status_code not in (200, 206) and not (
                        ranged and response.status_code == 416
                    ):
                        response.read()
                        self._raise_for(response)
                    yield response
            except (SocksProtocolError, httpx.TransportError) as exc:
                raise self._unreachable(exc) from None

        return download(opener, dest, expected_digest, progress)

    # -- plumbing --------------------------------------------------------------------------

    def _auth(self, headers: dict[str, str]) -> dict[str, str]:
        if self._token is None:
            raise TokenExpired("not logged in")
        return {**headers, "authorization": f"Bearer {self._token}"}

    def _get(self, model: type[M], path: str, **kwargs: Any) -> M:
        return _parse(model, self._ok(self._send("GET", path, **kwargs), 200))

    def _send(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers = self._auth(headers)
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except (SocksProtocolError, httpx.TransportError) as exc:  # ProxyError is one
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        """What a journalist is told when the request did not get through. Never the exception
        text: it may hold the URL (never the token, which is only in a header)."""
        if isinstance(exc, (httpx.ProxyError, SocksProtocolError)):
            return ServerUnreachable(_ONION_REFUSED)
        name = type(exc).__name__
        if self._through_tor and isinstance(exc, httpx.TimeoutException):
            return ServerUnreachable(_TOR_TIMED_OUT.format(name=name))
        return ServerUnreachable(f"connection failed: {name}")

    def _ok(self, response: httpx.Response, status: int) -> httpx.Response:
        if response.status_code != status:
            self._raise_for(response)
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        code, message = "error", response.reason_phrase
        try:
            detail = wire.ErrorBody.model_validate_json(response.content).error
            code, message = detail.code, detail.message
        except ValidationError:
            pass
        if response.status_code == 401:
            self._token = None
            raise TokenExpired(message)
        if response.status_code == 404:
            raise RemoteNotFound(404, code, message)
        raise ApiError(response.status_code, code, message)


def _parse(model: type[M], response: httpx.Response) -> M:
    """The answer as ``model`` (strictly: no "1" for 1, no 1 for true), or ProtocolViolation.

    The message names the model and the first field at fault, never the value: the server's data
    (a hostile server's, say) stays out of the journalist's terminal and the UI's pages."""
    content = response.content
    if model is wire.Items or model is wire.Item:
        content = items_of_an_older_server(content)  # a server before migration 0009
    try:
        return model.model_validate_json(content, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise ProtocolViolation(
            f"malformed {model.__name__} answer ({where}: {first['type']})"
        ) from None


def _id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ProtocolViolation("malformed id")
    return value


def _ref(value: str) -> str:
    """An id that goes into a URL path: letters, digits, ``-`` and ``_`` only."""
    if not _REF.fullmatch(value):
        raise ProtocolViolation("malformed id")
    return value
