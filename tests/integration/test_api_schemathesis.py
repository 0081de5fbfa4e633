"""Property-based tests of the journalist API against its own OpenAPI document (schemathesis,
in-process through ASGI): no request, valid or not, makes the server fail (5xx), and every answer
has a documented status code and a body matching the documented schema.

The instance is real (SQLite; PostgreSQL too, with the ``postgres`` mark) and holds a logged-in
admin, a journalist, sources with submissions and replies, device keys and an organisation
recipient. Generated ids are random, so the test also draws path ids (and some bodies: fresh age
keys, a well-formed age reply, the journalist's real credentials) from real objects, and each
operation runs on things that exist, not only into 404s.

One instance serves a whole module (building one costs several Argon2 derivations), so the run
must not destroy what later operations rely on:

- POST /logout would revoke the token every request carries: it is excluded from generation and
  checked once, explicitly (``test_logout_revokes_the_token``).
- Destructive operations (DELETE of sources, submissions, replies, device keys, organisation
  recipients) get real ids only from a pool of disposable objects made for them.
- Account operations (disable, enable, reset-2fa) get real ids only of the journalist, never of
  the admin whose token the run uses (POST /users may create more admins, so the "last admin"
  rule alone would not protect it).

Stateful testing runs too (``test_api_stateful_sequences``), on an instance of its own: the
document declares no OpenAPI links, but schemathesis infers them (GET /me -> DELETE
/me/keys/{key_id}, GET /users -> POST /users/{user_id}/enable, ...) and chains them in a second or
two. Its sequences may delete anything they find, hence the separate instance.

Determinism: Hypothesis is derandomized with no example database, schemathesis has a fixed seed
and deterministic generation. ~25 examples per operation keep the run to about 15 s per backend
(2 vCPUs).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import psycopg
import pyrage
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from sealdrop.config import load_settings
from sealdrop.crypto import passwords
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.ids import SourceId
from sealdrop.services.accounts import NewAccount
from sealdrop.services.auth import Principal
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.testing import FakeClock
from sealdrop.web.api.app import create_api_app

SOURCES = 3  # sources (with a message, a file and a reply) that any operation may point at
DISPOSABLE = 3  # objects of each kind that only destructive operations get the ids of
MAX_EXAMPLES = 25
SEED = 20_270_115
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
DESTRUCTIVE = {
    ("DELETE", "/api/v1/sources/{source_id}"),
    ("DELETE", "/api/v1/submissions/{submission_id}"),
    ("DELETE", "/api/v1/replies/{reply_id}"),
    ("DELETE", "/api/v1/me/keys/{key_id}"),
    ("DELETE", "/api/v1/recipients/{recipient_id}"),
}
NEW_KEY_OPERATIONS = {("POST", "/api/v1/me/keys"), ("POST", "/api/v1/recipients")}
ASSIGN = ("PUT", "/api/v1/sources/{source_id}/assignee")
LABEL = ("PUT", "/api/v1/sources/{source_id}/labels")
# Triage bodies that are sometimes accepted: generated names and labels are nearly always
# refused (422), which would leave the accepting path of both operations untried.
ASSIGNEES = ["admin", "journalist", " Journalist ", None]
LABEL_SETS = [[], ["spam"], ["follow up", "Spam"], ["café", "x" * 32]]
NOTIFICATION_OPERATIONS = {
    ("PUT", "/api/v1/me/notifications"),
    ("PUT", "/api/v1/users/{user_id}/notifications"),
}
# Bodies that are accepted (generated ones almost never hold a usable address or Apprise URL).
NOTIFICATION_BODIES = [
    {"channel": "email", "email": "journalist@example.org", "language": "fa"},
    {"channel": "apprise", "url": "json://127.0.0.1:9/notify/token"},
    {"channel": "off"},
]


def new_key() -> str:
    return str(recipient_of(generate_identity()))


def encrypt(plaintext: bytes, recipients: list[str]) -> bytes:
    return bytes(
        pyrage.encrypt(plaintext, [pyrage.x25519.Recipient.from_str(r) for r in recipients])
    )


@dataclass
class ApiFixture:
    services: Services
    app: Any
    clock: FakeClock
    token: str
    journalist: NewAccount
    # Real ids by path parameter name: any operation may use these ...
    readable: dict[str, list[str]] = field(default_factory=dict)
    # ... and only destructive operations these.
    disposable: dict[str, list[str]] = field(default_factory=dict)
    age_reply: bytes = b""  # a well-formed age file, so that a reply is sometimes accepted
    fresh_keys: list[str] = field(default_factory=list)  # keys nobody registered (yet)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def send(api: ApiFixture, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to the fixture's application in-process (httpx.ASGITransport under
    anyio.run, as the other in-process web tests do), with the admin's token unless given."""
    kwargs["headers"] = {**api.headers, **kwargs.get("headers", {})}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(method, url, **kwargs)

    return anyio.run(go)


def add_source(
    services: Services, admin: Principal, reply_to: str
) -> tuple[SourceId, list[str], list[str]]:
    """A source (made as the source interface makes one) that sent a message and a file and got
    a reply; returns its id and the ids of its submissions and of its reply."""
    source_id = services.sources.create().source_id
    with services.submissions.intake(source_id) as intake:
        intake.add_message(io.BytesIO(b"a message from a source"))
        intake.add_file("notes.txt", "text/plain", io.BytesIO(b"a file from a source"))
        intake.commit()
    return source_id, *add_items(services, admin, source_id, reply_to)


def add_items(
    services: Services, admin: Principal, source_id: SourceId, reply_to: str
) -> tuple[list[str], list[str]]:
    """One more message from the source and one more reply to it; returns their ids."""
    before = {item.id for item in services.inbox.submissions(admin, source_id)}
    with services.submissions.intake(source_id) as intake:
        intake.add_message(io.BytesIO(b"another message"))
        intake.commit()
    after = [item.id for item in services.inbox.submissions(admin, source_id)]
    reply_key = services.inbox.source(admin, source_id).reply_key
    reply = services.replies.store(
        source_id, encrypt(b"a reply", [reply_key, reply_to]), admin.user.id
    )
    return [i for i in after if i not in before], [reply.id]


def build_api(root: Path, env: dict[str, str]) -> ApiFixture:
    instance = init_instance(root / "instance")
    clock = FakeClock()
    # Apprise URLs on, so that the accepted notification bodies are accepted (off by default).
    env = {**env, "SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true"}
    services = build_services(load_settings(instance, env=env), clock=clock)
    admin = services.accounts.create("admin", "admin", actor="test")
    journalist = services.accounts.create("journalist", "journalist", actor="test")
    code = passwords.totp_code(admin.totp_secret, clock.now())
    issued = services.auth.login("admin", admin.passphrase, code)
    principal = services.auth.authenticate(issued.token)
    journalist_key = new_key()
    services.accounts.add_recipient(journalist.user.id, journalist_key, "laptop")
    api = ApiFixture(services, create_api_app(services), clock, issued.token, journalist)

    read: dict[str, list[str]] = {"source_id": [], "submission_id": [], "reply_id": []}
    gone: dict[str, list[str]] = {"source_id": [], "submission_id": [], "reply_id": []}
    for _ in range(SOURCES):
        source_id, submissions, replies = add_source(services, principal, journalist_key)
        read["source_id"].append(source_id)
        read["submission_id"] += submissions
        read["reply_id"] += replies
        # Disposable items of a kept source: deleting a disposable source would take its own
        # items along before the operations that delete items run.
        submissions, replies = add_items(services, principal, source_id, journalist_key)
        gone["submission_id"] += submissions
        gone["reply_id"] += replies
    for _ in range(DISPOSABLE):
        gone["source_id"].append(add_source(services, principal, journalist_key)[0])
    read["user_id"] = [journalist.user.id]
    read["key_id"] = [services.accounts.add_recipient(admin.user.id, new_key(), "kept").id]
    read["recipient_id"] = [services.recipients.add(new_key(), "kept").id]
    gone["key_id"] = [
        services.accounts.add_recipient(admin.user.id, new_key(), "spare").id
        for _ in range(DISPOSABLE)
    ]
    gone["recipient_id"] = [
        services.recipients.add(new_key(), "spare").id for _ in range(DISPOSABLE)
    ]
    api.readable, api.disposable = read, gone
    api.age_reply = encrypt(b"a generated reply", [journalist_key])
    api.fresh_keys = [new_key() for _ in range(5)]
    return api


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiFixture]:
    api = build_api(tmp_path_factory.mktemp("api-sqlite"), env={})
    yield api
    api.services.close()


@pytest.fixture(scope="module")
def postgres_api(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[ApiFixture]:
    """The same instance on the session's PostgreSQL server (its schema emptied first, as
    ``fresh_postgres_url`` does for function-scoped tests)."""
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    env = {"SEALDROP_DATABASE_URL": postgres_url}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEALDROP_DATABASE_URL", postgres_url)  # init_instance migrates this one
        api = build_api(tmp_path_factory.mktemp("api-postgres"), env=env)
    yield api
    api.services.close()


def document_app() -> Any:
    """The API application, built only to serve its OpenAPI document while pytest collects this
    module (schemathesis makes one test per operation from it). Building the routes reads nothing
    of the services but the reply size limit and the readiness check (taken, never called), and
    no request reaches a handler of this copy: the tests send every request to a fixture's real
    application (``app=`` below).

    (``schemathesis.pytest.from_fixture`` would load the document from a fixture instead, but with
    pytest 9 it fails: "'Function' object has no attribute '_nodeid'".)
    """
    stand_in = SimpleNamespace(
        settings=SimpleNamespace(max_reply_bytes=1024),
        readiness=SimpleNamespace(ready=lambda: True),
    )
    return create_api_app(stand_in)  # type: ignore[arg-type]


def load_schema(allow_x00: bool) -> Any:
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", document_app())
    loaded.config.seed = SEED
    # with_security_parameters=False: the run's own bearer token goes with every request, rather
    # than generated Authorization headers that would make a third of the cases plain 401s.
    loaded.config.generation.update(
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        with_security_parameters=False,
        allow_x00=allow_x00,
    )
    return loaded.exclude(method="POST", path="/api/v1/logout")


sqlite_schema = load_schema(allow_x00=True)
# NUL characters are left out on PostgreSQL, which refuses them in text: that known bug has its
# own test below (test_nul_characters_are_not_a_server_error_on_postgres).
postgres_schema = load_schema(allow_x00=False)


def aim_at_real_objects(case: Any, api: ApiFixture, data: st.DataObject) -> None:
    """Sometimes replace generated values with real ones: path ids of existing objects (only of
    disposable ones for destructive operations), a fresh age key, a well-formed age reply, the
    journalist's real credentials, an account's name to assign to, labels that pass the rules."""
    operation = (case.operation.method.upper(), case.operation.path)
    pool = api.disposable if operation in DESTRUCTIVE else api.readable
    for name in list(case.path_parameters or {}):
        ids = pool.get(name, [])
        if bool(ids) and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(ids), label=name)
    if not data.draw(st.booleans(), label="real body"):
        return
    if operation in NEW_KEY_OPERATIONS:
        case.body = {"public_key": data.draw(st.sampled_from(api.fresh_keys)), "name": "device"}
    elif operation == ASSIGN:
        case.body = {"username": data.draw(st.sampled_from(ASSIGNEES), label="assignee")}
    elif operation == LABEL:
        case.body = {"labels": data.draw(st.sampled_from(LABEL_SETS), label="labels")}
    elif operation == ("POST", "/api/v1/sources/{source_id}/replies"):
        case.body = api.age_reply
    elif operation in NOTIFICATION_OPERATIONS:
        case.body = data.draw(st.sampled_from(NOTIFICATION_BODIES), label="notifications")
    elif operation == ("POST", "/api/v1/token"):
        code = passwords.totp_code(api.journalist.totp_secret, api.clock.now())
        case.body = {
            "username": api.journalist.user.username,
            "passphrase": api.journalist.passphrase,
            "totp": code,
        }


def call_and_check(case: Any, api: ApiFixture, data: st.DataObject) -> None:
    aim_at_real_objects(case, api, data)
    case.call_and_validate(headers=api.headers, checks=CHECKS, app=api.app)


HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # The fixture is module-scoped on purpose; generation is slow-ish for large bodies.
    suppress_health_check=list(HealthCheck),
)


# schemathesis annotates what parametrize() and given() return as a bare Callable.
@sqlite_schema.parametrize()  # type: ignore[untyped-decorator]
@sqlite_schema.given(data=st.data())  # type: ignore[untyped-decorator]
@HYPOTHESIS
def test_api_conforms_to_its_schema(case: Any, data: st.DataObject, sqlite_api: ApiFixture) -> None:
    """Generated requests (valid and invalid) never get a 5xx, and always get a documented status
    with a body matching the documented schema."""
    call_and_check(case, sqlite_api, data)


@pytest.mark.postgres
@postgres_schema.parametrize()  # type: ignore[untyped-decorator]
@postgres_schema.given(data=st.data())  # type: ignore[untyped-decorator]
@HYPOTHESIS
def test_api_conforms_to_its_schema_on_postgres(
    case: Any, data: st.DataObject, postgres_api: ApiFixture
) -> None:
    """The same on PostgreSQL: no 5xx, documented statuses and bodies (NUL-free input)."""
    call_and_check(case, postgres_api, data)


def test_logout_revokes_the_token(sqlite_api: ApiFixture) -> None:
    """Left out of generation (it would end the run's session): logout answers 204, and the
    token is then refused with 401."""
    api = sqlite_api
    account = api.services.accounts.create("logout-check", "journalist", actor="test")
    code = passwords.totp_code(account.totp_secret, api.clock.now())
    token = send(
        api,
        "POST",
        "/api/v1/token",
        headers={"Authorization": ""},
        json={"username": "logout-check", "passphrase": account.passphrase, "totp": code},
    )
    assert token.status_code == 200, token.text
    mine = {"Authorization": f"Bearer {token.json()['token']}"}
    assert send(api, "GET", "/api/v1/me", headers=mine).status_code == 200
    assert send(api, "POST", "/api/v1/logout", headers=mine).status_code == 204
    refused = send(api, "GET", "/api/v1/me", headers=mine)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    # The run's own token is untouched.
    assert send(api, "GET", "/api/v1/me").status_code == 200


# -- beyond the document: headers and characters the schema does not describe ------------------


def content_url(api: ApiFixture) -> tuple[str, bytes]:
    """The content URL of a real submission, and its ciphertext."""
    submission_id = api.readable["submission_id"][0]
    whole = send(api, "GET", f"/api/v1/submissions/{submission_id}/content")
    assert whole.status_code == 200
    return f"/api/v1/submissions/{submission_id}/content", whole.content


@given(
    first=st.one_of(st.none(), st.integers(min_value=0, max_value=10**30)),
    last=st.one_of(st.none(), st.integers(min_value=0, max_value=10**30)),
)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
def test_byte_ranges_answer_the_right_slice(
    sqlite_api: ApiFixture, first: int | None, last: int | None
) -> None:
    """Any single byte range is answered with 206 and exactly the bytes asked for (clipped to
    the end), or with 416 when unsatisfiable; never with a server error."""
    url, blob = content_url(sqlite_api)
    wanted = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    response = send(sqlite_api, "GET", url, headers={"range": wanted})
    size = len(blob)
    if first is None and last is None:
        assert response.status_code == 416
        return
    if first is None:
        assert last is not None
        start, end = max(0, size - last), size - 1
    else:
        start, end = first, size - 1 if last is None else min(last, size - 1)
    if start > end or start >= size:
        assert response.status_code == 416
        assert response.headers["content-range"] == f"bytes */{size}"
    else:
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.content == blob[start : end + 1]


@pytest.mark.parametrize("wanted", ["bytes=9{n}-", "bytes=0-9{n}", "bytes=-9{n}"])
def test_an_overlong_range_number_is_not_a_server_error(
    sqlite_api: ApiFixture, wanted: str
) -> None:
    """A Range header with a 5,000-digit number (fits in any server's header limit) is
    unsatisfiable (416), not a crash (500)."""
    url, _ = content_url(sqlite_api)
    header = wanted.replace("9{n}", "9" * 5000)
    response = send(sqlite_api, "GET", url, headers={"range": header})
    assert response.status_code < 500


def test_an_overlong_content_length_is_refused_as_too_large(sqlite_api: ApiFixture) -> None:
    """A Content-Length of 5,000 digits is refused as too large (413). The ASGI app is called
    directly: httpx insists on a Content-Length matching the body."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/seen",
        "raw_path": b"/api/v1/seen",
        "root_path": "",
        "query_string": b"",
        "server": ("api", 80),
        "client": ("127.0.0.1", 1),
        "headers": [
            (b"authorization", f"Bearer {sqlite_api.token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"9" * 5000),
        ],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"ids": []}', "more_body": False}

    async def collect(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        await sqlite_api.app(scope, receive, collect)

    anyio.run(go)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert starts, "the application sent no response"
    assert starts[0]["status"] == 413


NUL_REQUESTS = [
    ("GET", "/api/v1/sources/%00", None),
    ("GET", "/api/v1/submissions/%00", None),
    ("GET", "/api/v1/replies/%00/content", None),
    ("POST", "/api/v1/users/%00/disable", None),
    ("DELETE", "/api/v1/recipients/%00", None),
    ("POST", "/api/v1/seen", {"ids": ["\x00"]}),
    ("POST", "/api/v1/token", {"username": "a\x00", "passphrase": "x", "totp": "123456"}),
    ("POST", "/api/v1/recipients", {"public_key": "{key}", "name": "a\x00b"}),
    ("POST", "/api/v1/me/keys", {"public_key": "{key}", "name": "a\x00b"}),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("method", "path", "body"), NUL_REQUESTS)
def test_nul_characters_are_not_a_server_error_on_postgres(
    postgres_api: ApiFixture, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """An id or a name holding a NUL character is refused as the input error it is (400, 401,
    404), not answered as a database outage (503) or a conflict (409)."""
    if body is not None and body.get("public_key") == "{key}":
        body = {**body, "public_key": new_key()}
    response = send(postgres_api, method, path, json=body)
    # Refused (400/401/404), or accepted with the NUL ignored or removed (200/201); never a
    # server error, and never a false "already registered" (409).
    assert response.status_code in (200, 201, 400, 401, 404), response.text
