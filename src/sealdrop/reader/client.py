"""A client of the journalist API (sync httpx): login, listings, resumable verified downloads.

The bearer token lives in this object: it is never logged or put in a repr; only the CLI may save
it (``use_token``/``token``) in a 0600 file in the reader's data folder, until it expires. Every
id and digest that comes from the server is checked for form before it is used, because the reader
turns ids into file names (a hostile server must not name ``../../.bashrc``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from socksio.exceptions import ProtocolError as SocksProtocolError

from sealdrop.errors import (
    ApiError,
    Corrupted,
    LoginRefused,
    NotAnApi,
    ProtocolViolation,
    ReaderError,
    RemoteNotFound,
    ServerUnreachable,
    TokenExpired,
)
from sealdrop.reader.profile import Profile

CHUNK = 64 * 1024
# A tor SocksPort with ExtendedErrors (Tor Browser's) answers onion failures with codes 0xF0-0xF7,
# which socksio cannot parse and reports as a protocol error.
_ONION_REFUSED = (
    "connection failed: tor could not reach the onion service (it is not published yet, or "
    "this device's client key is missing or was revoked)"
)
_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REF = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KINDS = ("message", "file", "reply")


@dataclass(frozen=True)
class RemoteSource:
    id: str
    pseudonym: str
    reply_key: str
    starred: bool
    version: int
    created_day: dt.date | None
    submissions: int
    unread: int


@dataclass(frozen=True)
class RemoteItem:
    id: str
    source_id: str
    seq: int
    kind: str  # "message" | "file" | "reply"
    arrival_day: dt.date | None
    size: int
    sha256: str
    seen: bool
    metadata: bytes | None  # files: an age file holding name, type and size
    author: str | None

    @property
    def content_path(self) -> str:
        collection = "replies" if self.kind == "reply" else "submissions"
        return f"/{collection}/{self.id}/content"


@dataclass(frozen=True)
class SourcePage:
    sources: list[RemoteSource]
    next: int | None


@dataclass(frozen=True)
class DownloadResult:
    """How a download went: where it resumed from and how many bytes came over the wire."""

    size: int
    resumed_from: int
    received: int


Progress = Callable[[int], None]
"""Called with the number of bytes just received."""


def check_connection(server: str, proxy: str | None) -> None:
    """Refuse a server and proxy pair that would fail, or leak, before anything is sent.

    Only ``socks5h://`` proxies: the name is then resolved by Tor, never by the local resolver
    (an onion name cannot be resolved locally, and a clearnet name looked up locally would tell
    the network which server the journalist uses)."""
    host = httpx.URL(server).host
    if proxy is not None:
        scheme = httpx.URL(proxy).scheme
        if scheme != "socks5h":
            raise ReaderError(
                f"the proxy must be a Tor SOCKS port given as socks5h://HOST:PORT (not {scheme}://)"
                ", for example socks5h://127.0.0.1:9050, or 9150 for Tor Browser's tor"
            )
    elif host.endswith(".onion"):
        raise ReaderError(
            "an .onion server is reached through Tor: add --proxy socks5h://127.0.0.1:9050 "
            "(the SOCKS port of your tor; 9150 for Tor Browser's)"
        )


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
        self._http = httpx.Client(
            base_url=root,
            proxy=proxy,
            timeout=timeout,
            transport=transport,
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
            detail = response.json()["error"]
            is_api = response.status_code == 401 and isinstance(detail["code"], str)
        except (ValueError, KeyError, TypeError):
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
        data = _json(self._ok(response, 200))
        token, expires_at = data.get("token"), data.get("expires_at")
        if not isinstance(token, str) or not token or not isinstance(expires_at, int):
            raise ProtocolViolation("malformed token answer")
        self._token = token
        return expires_at

    def logout(self) -> None:
        if self._token is not None:
            self._ok(self._send("POST", "/logout"), 204)
            self._token = None

    def me(self) -> dict[str, Any]:
        return _json(self._ok(self._send("GET", "/me"), 200))

    def register_key(self, public_key: str, name: str = "") -> str:
        """Register this device's age recipient; returns the key's id."""
        body = {"public_key": public_key, "name": name}
        data = _json(self._ok(self._send("POST", "/me/keys", json=body), 201))
        return _str(data, "id")

    # -- listings --------------------------------------------------------------------------

    def source_page(self, updated_since: int, limit: int = 50) -> SourcePage:
        params = {"updated_since": updated_since, "limit": limit}
        data = _json(self._ok(self._send("GET", "/sources", params=params), 200))
        raw = data.get("sources")
        following = data.get("next")
        if not isinstance(raw, list) or not (following is None or isinstance(following, int)):
            raise ProtocolViolation("malformed source page")
        return SourcePage([_source(s) for s in raw], following)

    def list_sources(self, updated_since: int = 0, limit: int = 50) -> Iterator[SourcePage]:
        """Pages of sources changed after ``updated_since``, oldest change first."""
        cursor: int | None = updated_since
        while cursor is not None:
            page = self.source_page(cursor, limit)
            yield page
            if page.next is not None and page.next <= cursor:
                raise ProtocolViolation("source cursor went backwards")
            cursor = page.next

    def source(self, source_id: str) -> RemoteSource:
        return _source(_json(self._ok(self._send("GET", f"/sources/{_id(source_id)}"), 200)))

    def submissions(self, source_id: str) -> list[RemoteItem]:
        return self._items(f"/sources/{_id(source_id)}/submissions")

    def replies(self, source_id: str) -> list[RemoteItem]:
        return self._items(f"/sources/{_id(source_id)}/replies")

    def _items(self, path: str) -> list[RemoteItem]:
        raw = _json(self._ok(self._send("GET", path), 200)).get("items")
        if not isinstance(raw, list):
            raise ProtocolViolation("malformed item list")
        return [_item(i) for i in raw]

    def reply_keys(self) -> list[str]:
        """The age recipients a reply must be encrypted to besides the source's reply key: the
        organisation recipients and every active journalist's device keys."""
        keys = _json(self._ok(self._send("GET", "/keys"), 200)).get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ProtocolViolation("malformed key list")
        return list(keys)

    # -- changes ---------------------------------------------------------------------------

    def upload_reply(self, source_id: str, ciphertext: bytes) -> RemoteItem:
        """Upload a reply already encrypted on this machine (an age file)."""
        headers = {"content-type": "application/octet-stream"}
        response = self._send(
            "POST", f"/sources/{_id(source_id)}/replies", content=ciphertext, headers=headers
        )
        return _item(_json(self._ok(response, 201)))

    def set_starred(self, source_id: str, starred: bool) -> RemoteSource:
        response = self._send("PUT", f"/sources/{_id(source_id)}/star", json={"starred": starred})
        return _source(_json(self._ok(response, 200)))

    def mark_seen(self, item_ids: list[str]) -> int:
        response = self._send("POST", "/seen", json={"ids": [_id(i) for i in item_ids]})
        marked = _json(self._ok(response, 200)).get("marked")
        return marked if isinstance(marked, int) else 0

    def delete_source(self, source_id: str) -> None:
        self._ok(self._send("DELETE", f"/sources/{_id(source_id)}"), 204)

    def delete_submission(self, submission_id: str) -> None:
        self._ok(self._send("DELETE", f"/submissions/{_id(submission_id)}"), 204)

    def delete_reply(self, reply_id: str) -> None:
        self._ok(self._send("DELETE", f"/replies/{_id(reply_id)}"), 204)

    # -- administration (admins only; the server refuses anyone else) ---------------------

    def users(self) -> list[dict[str, Any]]:
        return _objects(_json(self._ok(self._send("GET", "/users"), 200)), "users")

    def create_user(self, username: str, role: str) -> dict[str, Any]:
        """Create an account; the answer holds its passphrase and otpauth URI (shown once)."""
        body = {"username": username, "role": role}
        return _json(self._ok(self._send("POST", "/users", json=body), 201))

    def disable_user(self, user_id: str) -> dict[str, Any]:
        return _json(self._ok(self._send("POST", f"/users/{_ref(user_id)}/disable"), 200))

    def enable_user(self, user_id: str) -> dict[str, Any]:
        return _json(self._ok(self._send("POST", f"/users/{_ref(user_id)}/enable"), 200))

    def reset_2fa(self, user_id: str) -> str:
        """A new TOTP enrolment for the user; returns its otpauth URI (shown once)."""
        response = self._send("POST", f"/users/{_ref(user_id)}/reset-2fa")
        return _str(_json(self._ok(response, 200)), "totp_uri")

    def recipients(self) -> list[dict[str, Any]]:
        return _objects(_json(self._ok(self._send("GET", "/recipients"), 200)), "recipients")

    def add_recipient(self, public_key: str, name: str = "") -> dict[str, Any]:
        body = {"public_key": public_key, "name": name}
        return _json(self._ok(self._send("POST", "/recipients", json=body), 201))

    def remove_recipient(self, recipient_id: str) -> None:
        self._ok(self._send("DELETE", f"/recipients/{_ref(recipient_id)}"), 204)

    def settings(self) -> dict[str, Any]:
        return _json(self._ok(self._send("GET", "/settings"), 200))

    def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        return _json(self._ok(self._send("PATCH", "/settings", json=changes), 200))

    # -- content ---------------------------------------------------------------------------

    def download(
        self,
        path: str,
        dest: Path,
        expected_sha256: str,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Fetch ciphertext at ``path`` into ``dest``, resuming ``dest.part`` with a Range request.

        The whole file is hashed before it is renamed into place; on a mismatch the ``.part`` is
        deleted and :class:`Corrupted` raised (once more from scratch first, if the mismatch may
        come from a stale partial file). A broken connection keeps the ``.part`` for next time.
        """
        expected = _sha(expected_sha256)
        part = dest.with_name(dest.name + ".part")
        result = self._fetch(path, part, expected, progress)
        actual = _file_sha256(part)
        if actual != expected and result.resumed_from > 0:
            # The kept prefix may be what is wrong (a blob replaced since): one fresh try.
            part.unlink()
            result = self._fetch(path, part, expected, progress)
            actual = _file_sha256(part)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise Corrupted(expected, actual)
        os.replace(part, dest)
        return result

    def _fetch(
        self, path: str, part: Path, expected: str, progress: Progress | None
    ) -> DownloadResult:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"range": f"bytes={offset}-"} if offset else {}
        try:
            with self._http.stream("GET", path, headers=self._auth(headers)) as response:
                if response.status_code == 416 and offset:
                    # The partial file is as long as the blob or longer: start again.
                    response.close()
                    part.unlink()
                    return self._fetch(path, part, expected, progress)
                if response.status_code not in (200, 206):
                    response.read()
                    self._raise_for(response)
                etag = response.headers.get("etag", "").strip('"')
                if etag and etag != expected:
                    part.unlink(missing_ok=True)
                    raise Corrupted(expected, etag)
                if response.status_code == 200:
                    offset = 0  # the server sent it all: overwrite what was kept
                elif not response.headers.get("content-range", "").startswith(f"bytes {offset}-"):
                    raise ProtocolViolation("content range does not match the request")
                received = 0
                flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC)
                with os.fdopen(os.open(part, flags, 0o600), "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"connection failed: {type(exc).__name__}") from None
        except SocksProtocolError:
            raise ServerUnreachable(_ONION_REFUSED) from None
        return DownloadResult(size=offset + received, resumed_from=offset, received=received)

    # -- plumbing --------------------------------------------------------------------------

    def _auth(self, headers: dict[str, str]) -> dict[str, str]:
        if self._token is None:
            raise TokenExpired("not logged in")
        return {**headers, "authorization": f"Bearer {self._token}"}

    def _send(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers = self._auth(headers)
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            # The exception text may hold the URL; never the token (it is only in a header).
            raise ServerUnreachable(f"connection failed: {type(exc).__name__}") from None
        except SocksProtocolError:
            raise ServerUnreachable(_ONION_REFUSED) from None

    def _ok(self, response: httpx.Response, status: int) -> httpx.Response:
        if response.status_code != status:
            self._raise_for(response)
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        code, message = "error", response.reason_phrase
        try:
            detail = response.json()["error"]
            code, message = str(detail["code"]), str(detail["message"])
        except (ValueError, KeyError, TypeError):
            pass
        if response.status_code == 401:
            self._token = None
            raise TokenExpired(message)
        if response.status_code == 404:
            raise RemoteNotFound(404, code, message)
        raise ApiError(response.status_code, code, message)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ProtocolViolation("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolViolation("the answer is not a JSON object")
    return data


def _id(value: object) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ProtocolViolation("malformed id")
    return value


def _ref(value: object) -> str:
    """An id that goes into a URL path: letters, digits, ``-`` and ``_`` only."""
    if not isinstance(value, str) or not _REF.match(value):
        raise ProtocolViolation("malformed id")
    return value


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    raw = data.get(key)
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise ProtocolViolation(f"malformed {key} list")
    return list(raw)


def _sha(value: object) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ProtocolViolation("malformed sha256")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolViolation(f"missing or malformed field: {key}")
    return value


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolViolation(f"missing or malformed field: {key}")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ProtocolViolation(f"missing or malformed field: {key}")
    return value


def _day(data: dict[str, Any], key: str) -> dt.date | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ProtocolViolation(f"malformed day: {key}") from None


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolViolation(f"malformed field: {key}")
    return value


def _source(data: object) -> RemoteSource:
    if not isinstance(data, dict):
        raise ProtocolViolation("malformed source")
    return RemoteSource(
        id=_id(data.get("id")),
        pseudonym=_str(data, "pseudonym"),
        reply_key=_str(data, "reply_key"),
        starred=_bool(data, "starred"),
        version=_int(data, "version"),
        created_day=_day(data, "created_day"),
        submissions=_int(data, "submissions"),
        unread=_int(data, "unread"),
    )


def _item(data: object) -> RemoteItem:
    if not isinstance(data, dict):
        raise ProtocolViolation("malformed item")
    kind = _str(data, "kind")
    if kind not in _KINDS:
        raise ProtocolViolation("unknown item kind")
    encoded = _optional_str(data, "metadata")
    try:
        metadata = base64.b64decode(encoded, validate=True) if encoded else None
    except (binascii.Error, ValueError):
        raise ProtocolViolation("malformed metadata") from None
    return RemoteItem(
        id=_id(data.get("id")),
        source_id=_id(data.get("source_id")),
        seq=_int(data, "seq"),
        kind=kind,
        arrival_day=_day(data, "arrival_day"),
        size=_int(data, "size"),
        sha256=_sha(data.get("sha256")),
        seen=_bool(data, "seen"),
        metadata=metadata,
        author=_optional_str(data, "author"),
    )


def open_client(profile: Profile) -> ApiClient:
    """A client of the profile's server (through its proxy, if any) holding the saved token;
    TokenExpired when there is none or it has expired (the CLI and the UI both start here)."""
    config = profile.load_config()
    token = profile.load_token()
    if token is None:
        raise TokenExpired("no valid token")
    client = ApiClient(config.server, proxy=config.proxy)
    client.use_token(token)
    return client
