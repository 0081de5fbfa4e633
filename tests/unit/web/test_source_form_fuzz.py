"""A bounded, deterministic fuzz run of every form handler of the source interface.

Each example sends one POST — /start, /login, /confirm, /logout, /submit or
/replies/{id}/delete — through the whole source app in-process (httpx.ASGITransport): random
bytes, wrong or garbled Content-Types, broken and truncated multipart, huge, duplicated, missing
or garbage tokens, invalid UTF-8, NUL bytes and odd percent-encoding, with no session, a forged
one, an unconfirmed one or a valid one, with and without the right form cookie and token, cut
into arbitrary chunks. Whatever arrives:

* no 5xx, no exception out of the app, no error logged by it;
* every refusal is our HTML error page with the security headers;
* the database and the blob store change only as the route's success promises (a source and a
  session from /start, a session from /login, ...) and only when the response says it succeeded;
  a request that carries no valid token, or a broken or truncated upload, changes nothing at all;
* no staging file is ever left behind.

Hypothesis runs derandomized, without an example database, with bounded example counts, so a CI
run is the same run every time. The fuzz checks the web edge, not the KDF: Argon2id runs at a
tiny cost for this module (the real parameters are tested in tests/unit/crypto), so that the
logins, confirmations and starts among the examples take milliseconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import string
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_from_bytes, quote_plus

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, text

from sealdrop.config import load_settings
from sealdrop.crypto import derive, envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.ids import SourceId, new_id
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock
from sealdrop.web import form_tokens
from sealdrop.web.app import create_source_app
from sealdrop.web.headers import SOURCE_HEADERS
from sealdrop.web.source.routes import COOKIE

UPLOAD_LIMIT = 20_000
MESSAGE_CHARS = 500
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --- the instance under test -------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What a request could store or remove, counted."""

    sources: int
    sessions: int
    confirmed: int
    submissions: int
    replies: int
    blobs: int
    staging: int


class ErrorLog(logging.Handler):
    """Keeps every record of level ERROR or above: how the app reports an unhandled exception
    that it contained after the response had started."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Site:
    services: Services
    app: Any
    counter: Engine  # the test's own engine, to count rows
    blob_dir: Path
    source_id: SourceId
    codename: str
    form_cookie: str
    errors: ErrorLog
    reply_identity: Identity = field(repr=False)
    reply_id: str = ""

    @property
    def form_token(self) -> str:
        return form_tokens.token_for(self.form_cookie)

    def new_session(self, *, confirmed: bool) -> tuple[str, str]:
        """A fresh session for the site's source: (cookie value, CSRF token)."""
        cookie = self.services.sessions.open(
            self.source_id, self.reply_identity, confirmed=confirmed
        )
        return cookie, self.services.sessions.resolve(cookie).csrf_token

    def ensure_reply(self) -> str:
        """The id of a reply to the site's source, stored again if an example deleted it."""
        with self.counter.connect() as db:
            query = text("SELECT count(*) FROM replies WHERE id = :id")
            exists = db.execute(query, {"id": self.reply_id}).scalar_one()
        if not exists:
            ciphertext = envelope.encrypt_bytes(b"a reply", [recipient_of(self.reply_identity)])
            self.reply_id = self.services.replies.store(self.source_id, ciphertext).id
        return self.reply_id

    def state(self) -> State:
        # Twice an example, ~2,000 times a run: one query and one walk of each tree.
        with self.counter.connect() as db:
            counts = db.execute(_COUNTS).one()
        sources, sessions, confirmed, submissions, replies = (int(n) for n in counts)
        blobs = _files_under(self.blob_dir / "blobs")
        staging = _files_under(self.blob_dir / "staging")
        return State(sources, sessions, confirmed, submissions, replies, blobs, staging)


_COUNTS = text(
    "SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM source_sessions),"
    " (SELECT count(*) FROM source_sessions WHERE confirmed),"
    " (SELECT count(*) FROM submissions), (SELECT count(*) FROM replies)"
)


def _files_under(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


@pytest.fixture(scope="module")
def fuzz_postgres_url(postgres_url: str) -> Iterator[str]:
    """A database of the module's own on the test session's PostgreSQL server (PostgreSQL refuses
    some values SQLite stores, NUL in text for one, so the fuzz runs on both)."""
    server = postgres_url.rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text("DROP DATABASE IF EXISTS sealdrop_fuzz"))
        db.execute(text("CREATE DATABASE sealdrop_fuzz"))
    try:
        yield server + "/sealdrop_fuzz"
    finally:
        with admin.connect() as db:
            db.execute(text("DROP DATABASE IF EXISTS sealdrop_fuzz WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """An instance on each backend with one journalist recipient, small limits, no login
    throttling to speak of, a confirmed source with one reply, and a cheap KDF for the module's
    duration."""
    url = request.getfixturevalue("fuzz_postgres_url") if request.param == "postgres" else None
    env = {
        "SEALDROP_LIMITS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "SEALDROP_LIMITS_MAX_MESSAGE_CHARS": str(MESSAGE_CHARS),
        "SEALDROP_LOGINS_FAILURES_PER_VISITOR": "1000000",
        "SEALDROP_LOGINS_PER_MINUTE": "1000000",
    }
    if url is not None:
        env["SEALDROP_DATABASE_URL"] = url
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(derive, "ARGON2_MEMORY_KIB", 64)
        patch.setattr(derive, "ARGON2_TIME_COST", 1)
        path = init_instance(tmp_path_factory.mktemp("fuzz") / "instance")
        config = load_settings(path, env=env)
        database = SqlDatabase(config.database_url)
        try:
            database.upgrade()
            with database.transaction() as repos:
                repos.recipients.add(str(recipient_of(generate_identity())), "journalist")
        finally:
            database.close()
        # Derivations in threads of this process: the cheap Argon2 above is patched here, and a
        # derivation process of its own (the server's way) would run the real 64 MiB cost.
        services = build_services(config, FakeClock(), kdf_processes=False)
        counter = create_engine(config.database_url)
        errors = ErrorLog()
        logging.getLogger("sealdrop").addHandler(errors)
        try:
            created = services.sources.create()
            session = services.sessions.resolve(created.session_cookie)
            services.sources.confirm(session, created.codename, None)
            fuzzed = Site(
                services,
                create_source_app(services),
                counter,
                config.blob_dir,
                created.source_id,
                created.codename,
                form_tokens.new_cookie_value(),
                errors,
                session.reply_identity,
            )
            fuzzed.ensure_reply()
            yield fuzzed
        finally:
            logging.getLogger("sealdrop").removeHandler(errors)
            counter.dispose()
            services.close()


# --- sending -----------------------------------------------------------------------------------


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def send(
    site: Site, path: str, headers: list[tuple[bytes, bytes]], body: list[bytes], streamed: bool
) -> httpx.Response:
    """POST ``body`` to ``path`` through the app. ``streamed`` sends the chunks as separate ASGI
    messages without a Content-Length (as a chunked upload arrives); otherwise one body with its
    length, unless ``headers`` already holds a (possibly false) Content-Length."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=site.app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            content: bytes | AsyncIterator[bytes] = _chunks(body) if streamed else b"".join(body)
            request = client.build_request("POST", path, headers=headers, content=content)
            response = await client.send(request)
            await response.aread()
            return response

    return anyio.run(go)


# --- what every response must be ---------------------------------------------------------------

REFUSAL_PAGES = {400, 403, 404, 405, 413, 429}


def assert_proper_response(response: httpx.Response) -> None:
    """Never a 5xx; every page carries the security headers once; a refusal is our HTML page."""
    assert response.status_code < 500, response.text[:500]
    for name, value in SOURCE_HEADERS:
        assert response.headers.get_list(name.decode()) == [value.decode()], name
    for dropped in ("server", "date", "x-powered-by"):
        assert dropped not in response.headers
    if response.status_code == 303:
        assert response.headers["location"] in ("/conversation", "/submitted", "/confirm")
        return
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "<title>" in page
    assert "</html>" in page
    if response.status_code >= 400:
        assert response.status_code in REFUSAL_PAGES, response.status_code
        assert "Traceback" not in page


# --- what each route may change, and when ------------------------------------------------------

NOTHING = State(0, 0, 0, 0, 0, 0, 0)


def difference(before: State, after: State) -> State:
    return State(
        **{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(State)}
    )


def succeeded(route: str, response: httpx.Response) -> bool:
    """Whether the response is the route's success (a 303 to /confirm is a refusal: a session
    that has not confirmed its codename yet is sent there)."""
    location = str(response.headers.get("location", ""))
    return {
        "start": response.status_code == 200,
        "login": location == "/conversation",
        "confirm": location == "/conversation",
        "logout": response.status_code == 200,
        "submit": location == "/submitted",
        "delete": location == "/conversation",
    }[route]


def allowed_changes(route: str, change: State, session: str) -> bool:
    """The changes a successful request of ``route`` makes."""
    if route == "start":
        return change == State(1, 1, 0, 0, 0, 0, 0)
    if route == "login":
        return change == State(0, 1, 1, 0, 0, 0, 0)
    if route == "confirm":
        return change in (NOTHING, State(0, 0, 1, 0, 0, 0, 0))
    if route == "logout":
        return change == State(0, -1, -1 if session == "valid" else 0, 0, 0, 0, 0)
    if route == "submit":
        return change.submissions >= 1 and change == State(
            0, 0, 0, change.submissions, 0, change.submissions, 0
        )
    assert route == "delete"
    return change == State(0, 0, 0, 0, -1, -1, 0)


def check(
    site: Site,
    route: str,
    session: str,
    may_succeed: bool,
    before: State,
    response: httpx.Response,
) -> None:
    assert_proper_response(response)
    assert site.errors.records == [], [r.getMessage() for r in site.errors.records]
    after = site.state()
    assert after.staging == 0, "a staging file was left behind"
    change = difference(before, after)
    if succeeded(route, response):
        assert may_succeed, f"{route} succeeded without a valid token, session and body"
        assert allowed_changes(route, change, session), change
    else:
        assert change == NOTHING, change


# --- strategies --------------------------------------------------------------------------------

T = TypeVar("T")


def weighted(*choices: tuple[int, T]) -> st.SearchStrategy[T]:
    """One of the values, each as often as its weight (examples shrink towards the first)."""
    return st.sampled_from([value for weight, value in choices for _ in range(weight)])


ODD_PERCENT = [
    "%",
    "%%",
    "%G1",
    "%zz",
    "%0",
    "%00",
    "%FF%FE",
    "%C3%28",
    "%E2%82",
    "%ED%A0%80",  # an encoded surrogate: not UTF-8
    "%F4%90%80%80",  # beyond U+10FFFF
    "%2B%26%3D",
    "+++",
    "%u0041",
    "%%32%35",
]
BOUNDARY = b"----WebKitFormBoundaryFuzz7Ab3xQ9z"


def garbage_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Any latin-1 text: control characters, NUL, DEL, C1 controls, accented letters."""
    return st.text(st.characters(codec="latin-1", exclude_categories=()), max_size=max_size)


@st.composite
def token_values(draw: st.DrawFn, valid: str) -> str | bytes:
    """A token field's value: mostly the valid token, else a near miss or garbage of any kind."""
    kind = draw(weighted((6, "valid"), (2, "near"), (1, "text"), (1, "bytes"), (1, "percent")))
    if kind == "valid":
        return valid
    if kind == "near":
        near = ["", valid[:-1], valid + "0", valid.upper(), valid[::-1], " " + valid]
        return draw(st.sampled_from([*near, valid + "\x00", "\x00" + valid, "0" * 64]))
    if kind == "text":
        return draw(garbage_text())
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    return draw(st.sampled_from(ODD_PERCENT))


@st.composite
def free_values(draw: st.DrawFn, codename: str) -> str | bytes:
    """A codename or message field's value: the real codename retyped, another codename, text
    of any kind, invalid UTF-8, odd percent-escapes, NULs, or something over the 64 KiB cap."""
    kind = draw(
        weighted(
            (3, "codename"),
            (1, "other codename"),
            (2, "text"),
            (1, "bytes"),
            (1, "percent"),
            (1, "nul"),
            (1, "huge"),
        )
    )
    if kind == "codename":
        return draw(st.sampled_from([codename, codename.upper(), f"  {codename}\r\n"]))
    if kind == "other codename":  # well formed, but nobody's
        return draw(st.sampled_from(["abacus " * 6 + "zoom", "zoom " * 7, "yo-yo " * 7]))
    if kind == "text":
        return draw(st.one_of(garbage_text(200), st.text(max_size=200)))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "percent":
        return draw(st.sampled_from(ODD_PERCENT))
    if kind == "nul":
        return "\x00" * draw(st.integers(1, 2000))
    return "abacus " * (draw(st.integers(1_000, 12_000)))


def encode(value: str | bytes, how: str) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if how == "plus":
        return quote_plus(raw).encode("ascii")
    if how == "percent":
        return quote_from_bytes(raw, safe="").encode("ascii")
    return raw  # sent as is: "&", "=", "%" and invalid UTF-8 included


@st.composite
def urlencoded(draw: st.DrawFn, token_key: str, valid: str, codename: str) -> tuple[bytes, bool]:
    """An application/x-www-form-urlencoded body in any state of repair — fields reordered,
    duplicated, missing, unknown, oddly encoded, without "=" — and whether the valid token is
    among its values at all (if not, the request must not succeed)."""
    if draw(st.booleans(), label="tidy"):
        # A form as the page sends it, so that the handlers' success paths are fuzzed too.
        typed = draw(st.sampled_from([codename, codename.upper(), f" {codename}\r\n"]))
        how = draw(st.sampled_from(["plus", "percent"]), label="encoding")
        body = b"&".join(
            encode(k, how) + b"=" + encode(v, how)
            for k, v in [(token_key, valid), ("codename", typed)]
        )
        return body, True
    pairs: list[tuple[str, str | bytes]] = [(token_key, draw(token_values(valid), label="token"))]
    if draw(weighted((4, True), (1, False)), label="with codename"):
        pairs.append(("codename", draw(free_values(codename), label="codename")))
    keys = st.one_of(
        st.sampled_from([token_key, "codename", "message", "form_token", "csrf_token", ""]),
        st.sampled_from([token_key.upper(), token_key + "[]", " " + token_key, "codename\x00"]),
        garbage_text(20),
    )
    values = st.one_of(token_values(valid), free_values(codename))
    pairs += draw(st.lists(st.tuples(keys, values), max_size=3), label="extra")
    if draw(weighted((4, False), (1, True)), label="shuffled"):
        pairs = draw(st.permutations(pairs), label="order")
    if draw(weighted((9, False), (1, True)), label="no token"):
        pairs = pairs[1:]
    separator = draw(weighted((8, b"&"), (1, b";"), (1, b"&&"), (1, b"&amp;")), label="separator")
    encoded = []
    for key, value in pairs:
        how = draw(weighted((5, "plus"), (2, "percent"), (2, "raw")), label="encoding")
        bare = draw(weighted((9, False), (1, True)), label="without =")
        encoded.append(encode(key, how) + (b"" if bare else b"=" + encode(value, how)))
    return separator.join(encoded), any(value == valid for _, value in pairs)


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes


def multipart(parts: list[Part], boundary: bytes = BOUNDARY) -> bytes:
    """Encode as browsers do (WHATWG): names and file names escaped, file parts typed."""
    out = b""
    for part in parts:
        name = part.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = f'Content-Disposition: form-data; name="{name}"'
        if part.filename is not None:
            filename = part.filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
            head += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
        out += b"--" + boundary + b"\r\n" + head.encode("utf-8") + b"\r\n\r\n" + part.data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


ODD_UPLOAD_TYPES = [
    b"",
    b"text/plain",
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data",
    b"multipart/form-data; boundary=",
    b"multipart/form-data; boundary=" + BOUNDARY[:-1],
    b"multipart/form-data; boundary=" + b"b" * 300,
    b"multipart/mixed; boundary=" + BOUNDARY,
    b"multipart/form-data; boundary=\xff\xfe",
    b"\xff\xfe\x00",
]


@st.composite
def submit_body(draw: st.DrawFn, csrf: str) -> tuple[bytes, bytes, bool]:
    """(Content-Type, body, may succeed) for POST /submit: a browser's form — the token first,
    a message, files, empty file inputs, unknown fields — then, about half the time, damaged."""
    token = csrf if draw(st.booleans(), label="valid token") else draw(token_values(csrf))
    token_bytes = encode(token, "raw")
    kind = draw(weighted((4, "text"), (1, "bytes"), (1, "nul"), (1, "limit"), (1, "empty")))
    message: str | bytes = ""
    if kind == "text":
        message = draw(st.text(max_size=300), label="message")
    elif kind == "bytes":
        message = draw(st.binary(max_size=300), label="message")  # rarely UTF-8
    elif kind == "nul":
        message = "\x00\r\n" * 50
    elif kind == "limit":
        message = "\u00e9" * draw(st.integers(MESSAGE_CHARS - 2, MESSAGE_CHARS + 2), label="length")
    file_part = st.builds(
        Part,
        st.just("files"),
        st.one_of(st.just(""), garbage_text(40), st.text(max_size=40)),
        st.one_of(
            st.binary(max_size=2000),
            st.integers(UPLOAD_LIMIT - 500, UPLOAD_LIMIT + 100).map(bytes),
            st.just(b"\r\n--" + BOUNDARY + b"x\r\n"),
        ),
    )
    other_part = st.one_of(
        st.builds(Part, garbage_text(12), st.none(), st.binary(max_size=50)),
        st.builds(Part, st.just("message"), st.just("m.txt"), st.binary(max_size=50)),
    )
    others = draw(st.lists(st.one_of(file_part, other_part), max_size=3), label="others")
    parts = [Part("csrf_token", None, token_bytes), Part("message", None, encode(message, "raw"))]
    parts += others
    order = draw(
        weighted((9, "token first"), (1, "token last"), (1, "token twice"), (1, "no token")),
        label="order",
    )
    if order == "token last":
        parts = [*parts[1:], parts[0]]
    elif order == "token twice":
        second = draw(token_values(csrf), label="second token")
        parts.insert(
            draw(st.integers(0, 1), label="where"), Part("csrf_token", None, encode(second, "raw"))
        )
    elif order == "no token":
        parts = parts[1:]
    body = multipart(parts)
    may_succeed = (
        order != "no token" and parts[0].name == "csrf_token" and parts[0].data == csrf.encode()
    )

    damage = draw(
        weighted(
            (6, "none"),
            (2, "flip"),
            (2, "truncate"),
            (1, "closing"),
            (1, "garbage"),
            (1, "urlencoded"),
        ),
        label="damage",
    )
    if damage == "truncate":
        # Anywhere short of the closing delimiter's last "-" (the final CRLF is optional).
        body = body[: draw(st.integers(0, 1 << 20), label="cut") % (len(body) - 2)]
        may_succeed = False
    elif damage == "closing":
        closing = len(body) - len(BOUNDARY) - 8  # the "\r\n--BOUNDARY--" that ends the form
        changed = bytearray(body)
        changed[closing + draw(st.integers(0, len(BOUNDARY) + 5), label="at")] ^= draw(
            st.integers(1, 255), label="xor"
        )
        body = bytes(changed)
        may_succeed = False
    elif damage == "flip":
        changed = bytearray(body)
        for _ in range(draw(st.integers(1, 4), label="flips")):
            at = draw(st.integers(0, 1 << 20), label="at") % len(changed)
            changed[at] = draw(st.sampled_from(b'\x00\r\n-"; :=\xff'), label="byte")
        # May still be a valid form (a flip inside a message or a file), and may even move the
        # token to the front; but no flip to these bytes can make the valid token out of another.
        body = bytes(changed)
        may_succeed = csrf.encode() in body
    elif damage == "garbage":
        body = draw(st.binary(max_size=3000), label="garbage")
        may_succeed = False
    elif damage == "urlencoded":
        body = b"csrf_token=" + token_bytes + b"&message=" + quote(encode(message, "raw")).encode()
        may_succeed = False
    content_type = b"multipart/form-data; boundary=" + BOUNDARY
    if draw(weighted((9, False), (1, True)), label="odd content type"):
        content_type = draw(st.sampled_from(ODD_UPLOAD_TYPES), label="content type")
        may_succeed = False
    return content_type, body, may_succeed


FORM_TYPES: list[bytes | None] = [
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=utf-8",
    None,
    b"text/plain",
    b"multipart/form-data; boundary=" + BOUNDARY,
    b"application/json",
    b"\xff\xfe",
]


def form_bodies(
    site: Site, route: str, csrf: str
) -> st.SearchStrategy[tuple[bytes | None, bytes, bool]]:
    """(Content-Type, body, may succeed) for the urlencoded routes: mostly a form in some state
    of repair; else random bytes, or the right fields as multipart or JSON (never accepted: these
    routes read urlencoded forms only)."""
    pre_session = route in ("start", "login")
    token_key = "form_token" if pre_session else "csrf_token"
    valid = site.form_token if pre_session else csrf

    @st.composite
    def draw_body(draw: st.DrawFn) -> tuple[bytes | None, bytes, bool]:
        content_type = draw(
            weighted((6, FORM_TYPES[0]), *((1, t) for t in FORM_TYPES[1:])), label="content type"
        )
        kind = draw(weighted((8, "form"), (1, "bytes"), (1, "multipart"), (1, "json")))
        if kind == "form":
            body, carries = draw(urlencoded(token_key, valid, site.codename), label="form")
            return content_type, body, carries
        if kind == "bytes":
            return content_type, draw(st.binary(max_size=3000), label="bytes"), False
        if kind == "multipart":
            parts = [Part(token_key, None, valid.encode()), Part("codename", None, b"x")]
            return content_type, multipart(parts), False
        payload = {token_key: valid, "codename": site.codename}
        return content_type, json.dumps(payload).encode(), False

    return draw_body()


@st.composite
def chunking(draw: st.DrawFn, body: bytes) -> tuple[list[bytes], bool]:
    """The body as it arrives: whole with its length, or streamed in arbitrary chunks."""
    if not draw(st.booleans(), label="streamed"):
        return [body], False
    cuts = {c % (len(body) + 1) for c in draw(st.lists(st.integers(0, 1 << 20), max_size=6))}
    points = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(points)], True


@st.composite
def extra_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Headers a browser, a proxy or an attacker might add, now and then."""
    headers = []
    fetch_site = draw(
        weighted(
            (16, None),
            (2, b"same-origin"),
            (1, b"none"),
            (1, b"cross-site"),
            (1, b"same-site"),
            (1, b"\xff"),
        )
    )
    if fetch_site is not None:
        headers.append((b"sec-fetch-site", fetch_site))
    length = draw(
        weighted(
            (16, None),
            *((1, v) for v in (b"0", b"1", b"-1", b"abc", b"\xb2", b"99999999999999")),
        )
    )
    if length is not None:
        headers.append((b"content-length", length))
    if draw(weighted((4, False), (1, True))):
        headers.append((b"accept-language", draw(st.sampled_from([b"fa", b"zz;q=x", b"\xff"]))))
    return headers


SESSIONS = weighted((8, "valid"), (1, "unconfirmed"), (1, "none"), (1, "forged"), (1, "garbage"))
FORM_COOKIES = weighted((8, "valid"), (1, "none"), (1, "other"), (1, "long"), (1, "garbage"))


def cookie_header(site: Site, session: str, session_cookie: str, form_cookie: str) -> bytes:
    """A Cookie header for the drawn states (values a server never issued included)."""
    pairs: list[str] = []
    if session == "forged":
        pairs.append(f"{COOKIE}={'A' * 86}")  # the shape of a session cookie, opening nothing
    elif session != "none":
        pairs.append(f"{COOKIE}={session_cookie}")
    form_values = {
        "valid": site.form_cookie,
        "other": form_tokens.new_cookie_value(),  # a real cookie, but not the token's
        "long": "x" * 101,
        "garbage": "\u00e9\u00ff,",
    }
    if form_cookie in form_values:
        pairs.append(f"{form_tokens.COOKIE}={form_values[form_cookie]}")
    return "; ".join(pairs).encode("latin-1")


# --- the fuzz runs -----------------------------------------------------------------------------

Bodies = Callable[[str], st.SearchStrategy[tuple[bytes | None, bytes, bool]]]


def run_example(site: Site, data: st.DataObject, route: str, path: str, bodies: Bodies) -> None:
    """Draw the states and a body, send it, and check the response and the stored state."""
    session = data.draw(SESSIONS, label="session")
    form_cookie = data.draw(FORM_COOKIES, label="form cookie")
    cookie, csrf = site.new_session(confirmed=session != "unconfirmed")
    if session == "garbage":
        alphabet = string.ascii_letters + string.digits + "-_=.%"
        cookie = data.draw(st.text(alphabet, max_size=120), label="cookie")
    content_type, body, may_succeed = data.draw(bodies(csrf), label="body")
    chunks, streamed = data.draw(chunking(body), label="chunks")
    headers = [(b"cookie", cookie_header(site, session, cookie, form_cookie))]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    added = data.draw(extra_headers(), label="headers")
    headers += added
    if any(h == (b"sec-fetch-site", v) for h in added for v in (b"cross-site", b"same-site")):
        may_succeed = False
    if route in ("start", "login"):
        may_succeed = may_succeed and form_cookie == "valid"
    elif route in ("submit", "delete"):
        may_succeed = may_succeed and session == "valid"
    else:
        may_succeed = may_succeed and session in ("valid", "unconfirmed")
    site.errors.records.clear()
    before = site.state()
    response = send(site, path, headers, chunks, streamed)
    # Shown with --hypothesis-show-statistics: how often each outcome was reached.
    event(f"{response.status_code} {response.headers.get('location', '')}")
    check(site, route, session, may_succeed, before, response)


def form_route(route: str) -> Callable[[Site, st.DataObject], None]:
    def example(site: Site, data: st.DataObject) -> None:
        run_example(site, data, route, f"/{route}", lambda csrf: form_bodies(site, route, csrf))

    return example


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_start_survives_malformed_forms(site: Site, data: st.DataObject) -> None:
    """POST /start with malformed bodies, content types, form tokens, cookies and chunkings:
    never a 5xx, always our page with the security headers, and a new source and session only on
    the codename page, which needs the visitor's valid form cookie and token."""
    form_route("start")(site, data)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_login_survives_malformed_forms(site: Site, data: st.DataObject) -> None:
    """POST /login with malformed bodies, codenames (the real one retyped included), tokens,
    cookies and chunkings: never a 5xx, always our page with the security headers, and a new
    session only on the redirect to the conversation."""
    form_route("login")(site, data)


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_confirm_survives_malformed_forms(site: Site, data: st.DataObject) -> None:
    """POST /confirm with malformed bodies, codenames, CSRF tokens and sessions: never a 5xx,
    always our page with the security headers, and a session is confirmed only on the redirect
    to the conversation."""
    form_route("confirm")(site, data)


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_logout_survives_malformed_forms(site: Site, data: st.DataObject) -> None:
    """POST /logout with malformed bodies, CSRF tokens and sessions: never a 5xx, always our page
    with the security headers, and the session is deleted only on the logged-out page."""
    form_route("logout")(site, data)


@pytest.mark.slow  # 400 examples of multipart bodies: ~10 s
@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_submit_survives_malformed_uploads(site: Site, data: st.DataObject) -> None:
    """POST /submit with broken, truncated, corrupted or garbage multipart, wrong content types,
    misplaced, duplicated or bad tokens, over-long messages and files, invalid UTF-8, and any
    chunking: never a 5xx; nothing stored and no staging file unless the page says it was
    received — and never without the valid token as the form's first field."""
    run_example(site, data, "submit", "/submit", lambda csrf: submit_body(csrf))


REPLY_IDS = [
    "{real}",
    "{real}?csrf_token=1",
    "{fresh}",
    "{real_upper}",
    "%00",
    "{real}%00",
    "0000000000000000000000000000000%00",
    "..%2F..%2Fconversation",
    "%2E%2E",
    "%E2%82%AC",
    "%ZZ",
    "%",
    "x" * 5000,
]


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_reply_delete_survives_malformed_requests_and_ids(site: Site, data: st.DataObject) -> None:
    """POST /replies/{id}/delete with odd ids (NUL, percent-escapes, 5,000 characters, a random
    id) and malformed bodies: never a 5xx, and the reply is gone only when the page says so."""
    real = site.ensure_reply()
    # Mostly ids that are not ids: with a valid session and token they reach the reply service.
    template = data.draw(
        weighted((3, REPLY_IDS[0]), (1, REPLY_IDS[1]), *((2, t) for t in REPLY_IDS[2:])), label="id"
    )
    reply = template.format(real=real, fresh=new_id(), real_upper=real.upper())
    deletable = template in REPLY_IDS[:2]

    def bodies(csrf: str) -> st.SearchStrategy[tuple[bytes | None, bytes, bool]]:
        return form_bodies(site, "delete", csrf).map(lambda b: (b[0], b[1], b[2] and deletable))

    run_example(site, data, "delete", f"/replies/{reply}/delete", bodies)
