"""Invariant 8, route by route: every route of both listeners, called by every kind of caller.

The tables below are the decision of who may call what. The API's routes are read from the live
OpenAPI document and the source interface's from ``SourceInterface.routes()``; a route without an
entry here (or an entry without a route) fails the test, so no route ships without a decision.

Callers: anonymous; a source (its session cookie, no token); a journalist's and an admin's bearer
token; the token of a user who was then disabled (`sealdrop user disable`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support_api import (
    Account,
    Api,
    age_keygen,
    age_opens,
    api_account,
    assert_api_error,
    cli_account,
    cli_users,
    encrypt_reply,
    new_age_recipient,
    new_source,
    start_instance,
)
from support_http import JournalistKey, Source, setup_cli

from sealdrop.config import load_settings
from sealdrop.services.container import build_services
from sealdrop.testing import ServerProcess
from sealdrop.web.source.routes import COOKIE, SourceInterface
from sealdrop.web.templating import Templates

CALLERS = ("anonymous", "source", "disabled", "journalist", "admin")
TOKEN_CALLERS = ("journalist", "admin", "disabled")

# Who may call an API route.
OPEN = "open"  # anyone, with or without credentials, gets the document
LOGIN = "login"  # anyone may try to log in; a token (or cookie) sent along changes nothing
JOURNALIST = "journalist"  # any enabled account's token
ADMIN = "admin"  # an enabled admin's token only


@dataclass(frozen=True)
class Call:
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # another token of the same caller (e.g. one to log out)


Builder = Callable[["World", str, bool], Call]


@dataclass(frozen=True)
class Rule:
    access: str
    status: int  # the answer to a caller who is allowed
    build: Builder  # (world, caller, allowed) -> the request


# -- the world the calls act on ----------------------------------------------------------------


@dataclass
class World:
    """Accounts, tokens, a source with a conversation, and victims: real objects that refused
    calls aim at, checked afterwards to be untouched."""

    root: Path
    instance: Path
    server: ServerProcess
    anonymous: Api
    admin_account: Account
    journalist_account: Account
    apis: dict[str, Api]  # caller -> client with its token (anonymous/source: none)
    headers: dict[str, dict[str, str]]  # caller -> extra headers (the source's cookie)
    source: Source
    source_id: str
    reply_key: str
    device: JournalistKey
    leaver_device: JournalistKey  # the disabled user's
    victims: dict[str, str] = field(default_factory=dict)
    victim_api: Api | None = None
    counter: int = 0

    @property
    def admin(self) -> Api:
        return self.apis["admin"]

    def ids(self) -> dict[str, str]:
        """What path templates of read-only calls are filled with."""
        return {
            "source": self.source_id,
            "submission": self.victims["submission"],
            "reply": self.victims["reply"],
        }

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def newest_submission(self) -> str:
        items = self.admin.submissions(self.source_id)
        return str(max(items, key=lambda i: i["seq"])["id"])

    def fresh_submission(self) -> str:
        assert self.source.submit("one more").status_code == 303
        return self.newest_submission()

    def fresh_reply(self) -> str:
        body = encrypt_reply("a reply", self.reply_key, self.device.recipient)
        url = f"/sources/{self.source_id}/replies"
        return str(self.admin.ok("POST", url, 201, content=body, headers=OCTETS)["id"])

    def fresh_source(self) -> str:
        new_source(self.server, "a source to delete")
        return str(self.admin.latest_source()["id"])

    def fresh_recipient(self) -> str:
        body = {"public_key": new_age_recipient()}
        return str(self.admin.ok("POST", "/recipients", 201, json=body)["id"])

    def fresh_token(self, caller: str) -> str:
        account = self.admin_account if caller == "admin" else self.journalist_account
        return self.anonymous.login(account)


OCTETS = {"content-type": "application/octet-stream"}


def path_only(path: str) -> Builder:
    def build(world: World, caller: str, allowed: bool) -> Call:
        return Call(path.format(**world.ids()))

    return build


def with_json(path: str, body: Callable[[World, bool], Any]) -> Builder:
    def build(world: World, caller: str, allowed: bool) -> Call:
        return Call(path.format(**world.ids()), {"json": body(world, allowed)})

    return build


def fresh_or_victim(path: str, kind: str, fresh: Callable[[World], str]) -> Builder:
    """A destructive call: an allowed caller acts on a fresh object of its own; a refused one
    aims at a victim, which must survive."""

    def build(world: World, caller: str, allowed: bool) -> Call:
        return Call(path.format(fresh(world) if allowed else world.victims[kind]))

    return build


def own_key(world: World, caller: str, allowed: bool) -> Call:
    if not allowed:
        return Call(f"/me/keys/{world.victims['key']}")
    key = world.apis[caller].ok("POST", "/me/keys", 201, json={"public_key": new_age_recipient()})
    return Call(f"/me/keys/{key['id']}")


def reply_upload(world: World, caller: str, allowed: bool) -> Call:
    body = encrypt_reply("hello", world.reply_key, world.device.recipient)
    return Call(f"/sources/{world.source_id}/replies", {"content": body, "headers": OCTETS})


def logout(world: World, caller: str, allowed: bool) -> Call:
    return Call("/logout", token=world.fresh_token(caller) if allowed else None)


def star(world: World, caller: str, allowed: bool) -> Call:
    source = world.source_id if allowed else world.victims["source"]
    return Call(f"/sources/{source}/star", {"json": {"starred": True}})


def assign(world: World, caller: str, allowed: bool) -> Call:
    # A refused caller tries to claim the victim source for itself.
    source = world.source_id if allowed else world.victims["source"]
    return Call(f"/sources/{source}/assignee", {"json": {"username": "writer"}})


def label(world: World, caller: str, allowed: bool) -> Call:
    # A refused caller tries to hide the victim source as spam.
    source = world.source_id if allowed else world.victims["source"]
    return Call(f"/sources/{source}/labels", {"json": {"labels": ["spam"]}})


def hold(world: World, caller: str, allowed: bool) -> Call:
    # A refused caller tries to shield the victim source from retention.
    source = world.source_id if allowed else world.victims["source"]
    return Call(f"/sources/{source}/hold", {"json": {"hold": True}})


def user_action(action: str) -> Builder:
    def build(world: World, caller: str, allowed: bool) -> Call:
        user = world.victims["target_user" if allowed else "victim_user"]
        return Call(f"/users/{user}/{action}")

    return build


def new_user(world: World, allowed: bool) -> dict[str, str]:
    if allowed:
        return {"username": world.unique("created")}
    return {"username": "intruder", "role": "admin"}


def new_recipient(world: World, allowed: bool) -> dict[str, str]:
    return {"public_key": world.victims["recipient_key"] if not allowed else new_age_recipient()}


def own_notifications(world: World, allowed: bool) -> dict[str, str]:
    return {"channel": "email", "email": "me@example.org"}


def others_notifications(world: World, caller: str, allowed: bool) -> Call:
    # A refused caller tries to send the bystander's notices to itself.
    user = world.victims["target_user" if allowed else "victim_user"]
    body = {"channel": "email", "email": "target@example.org" if allowed else INTRUDER_MAIL}
    return Call(f"/users/{user}/notifications", {"json": body})


INTRUDER_MAIL = "intruder@example.org"


def settings_change(world: World, allowed: bool) -> dict[str, bool]:
    # A refused caller tries to switch intake off; the admin's change is a no-op.
    return {"accepting_submissions": allowed}


def no_such_user(world: World, allowed: bool) -> dict[str, str]:
    return {"username": "nobody", "passphrase": "wrong passphrase", "totp": "123456"}


A = "/api/v1"
API_RULES: dict[tuple[str, str], Rule] = {
    ("GET", f"{A}/openapi.json"): Rule(OPEN, 200, path_only("/openapi.json")),
    ("POST", f"{A}/token"): Rule(LOGIN, 401, with_json("/token", no_such_user)),
    ("POST", f"{A}/logout"): Rule(JOURNALIST, 204, logout),
    ("GET", f"{A}/me"): Rule(JOURNALIST, 200, path_only("/me")),
    ("POST", f"{A}/me/keys"): Rule(
        JOURNALIST, 201, with_json("/me/keys", lambda w, a: {"public_key": new_age_recipient()})
    ),
    ("DELETE", f"{A}/me/keys/{{key_id}}"): Rule(JOURNALIST, 204, own_key),
    ("GET", f"{A}/me/notifications"): Rule(JOURNALIST, 200, path_only("/me/notifications")),
    ("PUT", f"{A}/me/notifications"): Rule(
        JOURNALIST, 200, with_json("/me/notifications", own_notifications)
    ),
    ("GET", f"{A}/sources"): Rule(JOURNALIST, 200, path_only("/sources")),
    ("GET", f"{A}/sources/{{source_id}}"): Rule(JOURNALIST, 200, path_only("/sources/{source}")),
    ("DELETE", f"{A}/sources/{{source_id}}"): Rule(
        JOURNALIST, 204, fresh_or_victim("/sources/{}", "source", World.fresh_source)
    ),
    ("PUT", f"{A}/sources/{{source_id}}/star"): Rule(JOURNALIST, 200, star),
    ("PUT", f"{A}/sources/{{source_id}}/assignee"): Rule(JOURNALIST, 200, assign),
    ("PUT", f"{A}/sources/{{source_id}}/labels"): Rule(JOURNALIST, 200, label),
    ("PUT", f"{A}/sources/{{source_id}}/hold"): Rule(JOURNALIST, 200, hold),
    ("GET", f"{A}/journalists"): Rule(JOURNALIST, 200, path_only("/journalists")),
    ("GET", f"{A}/sources/{{source_id}}/submissions"): Rule(
        JOURNALIST, 200, path_only("/sources/{source}/submissions")
    ),
    ("GET", f"{A}/submissions/{{submission_id}}"): Rule(
        JOURNALIST, 200, path_only("/submissions/{submission}")
    ),
    ("DELETE", f"{A}/submissions/{{submission_id}}"): Rule(
        JOURNALIST, 204, fresh_or_victim("/submissions/{}", "submission", World.fresh_submission)
    ),
    ("GET", f"{A}/submissions/{{submission_id}}/content"): Rule(
        JOURNALIST, 200, path_only("/submissions/{submission}/content")
    ),
    ("GET", f"{A}/sources/{{source_id}}/replies"): Rule(
        JOURNALIST, 200, path_only("/sources/{source}/replies")
    ),
    ("POST", f"{A}/sources/{{source_id}}/replies"): Rule(JOURNALIST, 201, reply_upload),
    ("GET", f"{A}/replies/{{reply_id}}/content"): Rule(
        JOURNALIST, 200, path_only("/replies/{reply}/content")
    ),
    ("DELETE", f"{A}/replies/{{reply_id}}"): Rule(
        JOURNALIST, 204, fresh_or_victim("/replies/{}", "reply", World.fresh_reply)
    ),
    ("GET", f"{A}/keys"): Rule(JOURNALIST, 200, path_only("/keys")),
    ("POST", f"{A}/seen"): Rule(
        JOURNALIST, 200, with_json("/seen", lambda w, a: {"ids": [w.victims["submission"]]})
    ),
    ("GET", f"{A}/users"): Rule(ADMIN, 200, path_only("/users")),
    ("POST", f"{A}/users"): Rule(ADMIN, 201, with_json("/users", new_user)),
    ("POST", f"{A}/users/{{user_id}}/disable"): Rule(ADMIN, 200, user_action("disable")),
    ("POST", f"{A}/users/{{user_id}}/enable"): Rule(ADMIN, 200, user_action("enable")),
    ("POST", f"{A}/users/{{user_id}}/reset-2fa"): Rule(ADMIN, 200, user_action("reset-2fa")),
    ("PUT", f"{A}/users/{{user_id}}/notifications"): Rule(ADMIN, 200, others_notifications),
    ("GET", f"{A}/recipients"): Rule(ADMIN, 200, path_only("/recipients")),
    ("POST", f"{A}/recipients"): Rule(ADMIN, 201, with_json("/recipients", new_recipient)),
    ("DELETE", f"{A}/recipients/{{recipient_id}}"): Rule(
        ADMIN, 204, fresh_or_victim("/recipients/{}", "recipient", World.fresh_recipient)
    ),
    ("GET", f"{A}/settings"): Rule(ADMIN, 200, path_only("/settings")),
    ("PATCH", f"{A}/settings"): Rule(ADMIN, 200, with_json("/settings", settings_change)),
    ("GET", f"{A}/audit"): Rule(ADMIN, 200, path_only("/audit")),
}

# The source interface: (answer without a session, answer to the source's own session). Bearer
# tokens mean nothing here: journalists and admins get what anyone without a session gets. The
# posts carry no form or CSRF token, so none of them changes anything.
SOURCE_RULES: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/"): (200, 200),
    ("POST", "/start"): (400, 400),  # Form expired: no form token
    ("GET", "/confirm"): (403, 303),  # already confirmed: on to the conversation
    ("POST", "/confirm"): (403, 400),
    ("GET", "/login"): (200, 200),
    ("POST", "/login"): (400, 400),
    ("POST", "/logout"): (403, 400),
    ("GET", "/conversation"): (403, 200),
    ("POST", "/submit"): (403, 400),
    ("GET", "/submitted"): (403, 200),
    ("POST", "/replies/{reply_id}/delete"): (403, 400),
    # Resumable uploads (tus): discovery is open to all; the rest needs a session, then the tus
    # version header (412 without it), then the X-CSRF-Token. HEAD is tested with the others
    # in test_resumable_uploads.py (another session: 404).
    ("OPTIONS", "/uploads"): (204, 204),
    ("POST", "/uploads"): (403, 412),
    ("PATCH", "/uploads/{upload_id}"): (403, 412),
    ("DELETE", "/uploads/{upload_id}"): (403, 412),
}


def expected_api_status(access: str, caller: str, allowed_status: int) -> int:
    if access in (OPEN, LOGIN):
        return allowed_status
    if caller in ("anonymous", "source", "disabled"):
        return 401
    if access == ADMIN and caller != "admin":
        return 403
    return allowed_status


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A running instance with every kind of caller, a source with a message, a file and a
    reply, and the victims that refused calls aim at."""
    root = tmp_path_factory.mktemp("authorization")
    instance, server = start_instance(root)
    try:
        admin_account = cli_account(instance, "chief", admin=True)
        anonymous = Api(server)
        admin = anonymous.as_(anonymous.login(admin_account))
        journalist_account = api_account(admin, "writer")
        journalist = anonymous.as_(anonymous.login(journalist_account))
        device = age_keygen(root / "writer-device.txt")
        key = journalist.ok("POST", "/me/keys", 201, json={"public_key": device.recipient})

        leaver = api_account(admin, "leaver")
        disabled = anonymous.as_(anonymous.login(leaver))
        leaver_device = age_keygen(root / "leaver-device.txt")
        disabled.ok("POST", "/me/keys", 201, json={"public_key": leaver_device.recipient})
        setup_cli("user", "disable", instance, "leaver")

        source, _ = new_source(server, "hello", files=[("a.txt", b"file", "text/plain")])
        found = admin.latest_source()
        cookie = source.http.cookies[COOKIE]
        world = World(
            root=root,
            instance=instance,
            server=server,
            anonymous=anonymous,
            admin_account=admin_account,
            journalist_account=journalist_account,
            apis={
                "anonymous": anonymous,
                "source": anonymous,
                "disabled": disabled,
                "journalist": journalist,
                "admin": admin,
            },
            headers={"source": {"cookie": f"{COOKIE}={cookie}"}},
            source=source,
            source_id=found["id"],
            reply_key=found["reply_key"],
            device=device,
            leaver_device=leaver_device,
        )
        victim_user = api_account(admin, "bystander")
        world.victim_api = anonymous.as_(anonymous.login(victim_user))
        world.victims = {
            "source": world.fresh_source(),
            "submission": world.newest_submission(),
            "reply": world.fresh_reply(),
            "recipient": world.fresh_recipient(),
            "recipient_key": new_age_recipient(),
            "key": key["id"],
            "target_user": api_account(admin, "target").id,
            "victim_user": victim_user.id,
        }
        yield world
        anonymous.http.close()
        source.http.close()
    finally:
        server.stop()


def api_routes(world: World) -> set[tuple[str, str]]:
    spec = world.anonymous.ok("GET", "/openapi.json")
    routes = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    return routes | {("GET", f"{A}/openapi.json")}


def source_routes(instance: Path) -> set[tuple[str, str]]:
    settings = load_settings(instance)
    services = build_services(settings)
    try:
        interface = SourceInterface(
            services, Templates("sealdrop.web.source", settings.organisation_name)
        )
        return {
            (method, route.path)
            for route in interface.routes()
            for method in route.methods or ()
            if method != "HEAD"  # Starlette adds HEAD to every GET route
        }
    finally:
        services.close()


def request_on(
    client: httpx.Client, caller: str, world: World, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    headers.update(world.headers.get(caller, {}))
    api = world.apis[caller]
    if caller in TOKEN_CALLERS and api.token:
        headers.setdefault("authorization", f"Bearer {api.token}")
    return client.request(method, path, headers=headers, **kwargs)


def concrete(path: str, world: World) -> str:
    """A template path with real ids filled in."""
    return path.format(
        key_id=world.victims["key"],
        source_id=world.source_id,
        submission_id=world.victims["submission"],
        reply_id=world.victims["reply"],
        user_id=world.victims["victim_user"],
        recipient_id=world.victims["recipient"],
        upload_id="0" * 32,  # a made-up upload: nobody's
    )


# -- tests -------------------------------------------------------------------------------------


def test_every_route_has_an_entry_in_the_tables(world: World) -> None:
    """The live OpenAPI document lists exactly the API routes of API_RULES, and the source
    interface's routes() exactly those of SOURCE_RULES: a new route needs a decision here."""
    assert api_routes(world) == set(API_RULES)
    assert source_routes(world.instance) == set(SOURCE_RULES)
    assert not {path for _, path in SOURCE_RULES} & {path for _, path in API_RULES}


def test_api_routes_answer_each_caller_as_the_table_says(world: World) -> None:
    """Anonymous, source and disabled callers get 401 JSON (except the OpenAPI document and the
    login, which answer everyone alike), a journalist gets 403 JSON on admin routes, and the
    allowed callers succeed; refused calls leave their targets untouched."""
    mismatches = []
    login_answers = set()
    for (method, template), rule in API_RULES.items():
        for caller in CALLERS:
            status = expected_api_status(rule.access, caller, rule.status)
            allowed = status == rule.status and rule.access not in (OPEN, LOGIN)
            call = rule.build(world, caller, allowed)
            kwargs = dict(call.kwargs)
            if call.token is not None:
                kwargs.setdefault("headers", {})["authorization"] = f"Bearer {call.token}"
            response = request_on(world.anonymous.http, caller, world, method, call.path, **kwargs)
            cell = f"{caller:10} {method:6} {template}"
            if response.status_code != status:
                mismatches.append(f"{cell}: {response.status_code}, expected {status}")
                continue
            if status == 401:
                assert_api_error(response, 401, "unauthenticated")
            elif status == 403:
                assert_api_error(response, 403, "forbidden")
            if rule.access == LOGIN:
                login_answers.add(response.content)
    assert mismatches == [], "\n".join(mismatches)
    assert len(login_answers) == 1  # a token sent along with a login changes nothing

    # What the refused calls aimed at is all still there.
    admin = world.admin
    victim_source = admin.ok("GET", f"/sources/{world.victims['source']}")
    assert victim_source["starred"] is False
    assert victim_source["assignee"] is None
    assert victim_source["labels"] == []
    assert victim_source["hold"] is False
    assert admin.ok("GET", f"/submissions/{world.victims['submission']}")
    assert admin.get(f"/replies/{world.victims['reply']}/content").status_code == 200
    recipients = {r["id"]: r["public_key"] for r in admin.ok("GET", "/recipients")["recipients"]}
    assert world.victims["recipient"] in recipients
    assert world.victims["recipient_key"] not in recipients.values()
    users = {u["username"]: u for u in admin.ok("GET", "/users")["users"]}
    assert "intruder" not in users
    assert users["bystander"]["disabled"] is False
    assert world.victim_api is not None
    assert world.victim_api.ok("GET", "/me")["username"] == "bystander"  # not reset, not disabled
    assert world.victim_api.ok("GET", "/me/notifications")["channel"] == "off"
    assert admin.ok("GET", "/settings")["accepting_submissions"] is True
    keys = world.apis["journalist"].ok("GET", "/me")["keys"]
    assert world.victims["key"] in [k["id"] for k in keys]


def test_api_routes_do_not_exist_on_the_source_listener(world: World) -> None:
    """Every API route, with real ids and each caller's credentials, is the source interface's
    404 page on the source listener: no JSON, nothing done."""
    client = httpx.Client(base_url=world.server.url, timeout=30.0)
    try:
        for method, template in sorted(API_RULES):
            for caller in CALLERS:
                response = request_on(client, caller, world, method, concrete(template, world))
                cell = f"{caller} {method} {template}"
                assert response.status_code == 404, cell
                assert response.headers["content-type"].startswith("text/html"), cell
                assert "Page not found" in response.text, cell
    finally:
        client.close()
    assert world.admin.ok("GET", f"/sources/{world.victims['source']}")


def test_source_routes_do_not_exist_on_the_api_listener(world: World) -> None:
    """Every source route, with each caller's credentials, is a 404 JSON on the API listener."""
    client = httpx.Client(base_url=world.server.api_url, timeout=30.0)
    try:
        for method, template in sorted(SOURCE_RULES):
            for caller in CALLERS:
                response = request_on(client, caller, world, method, concrete(template, world))
                assert_api_error(response, 404, "not_found")
    finally:
        client.close()


def test_journalist_credentials_open_nothing_on_the_source_listener(world: World) -> None:
    """On the source listener a bearer token counts for nothing: journalists, admins and disabled
    users get exactly what an anonymous visitor gets; only the source's cookie opens its pages."""
    client = httpx.Client(base_url=world.server.url, timeout=30.0)
    mismatches = []
    try:
        for (method, template), (anonymous, own) in SOURCE_RULES.items():
            for caller in CALLERS:
                status = own if caller == "source" else anonymous
                response = request_on(client, caller, world, method, concrete(template, world))
                if response.status_code != status:
                    cell = f"{caller:10} {method:6} {template}"
                    mismatches.append(f"{cell}: {response.status_code}, expected {status}")
    finally:
        client.close()
    assert mismatches == [], "\n".join(mismatches)
    # The source is still logged in and its conversation intact.
    assert world.source.http.get("/conversation").status_code == 200
    assert world.admin.get(f"/replies/{world.victims['reply']}/content").status_code == 200


def test_no_answer_is_a_redirect_built_from_the_host_header(world: World) -> None:
    """A route's path with a trailing slash is not redirected to a URL naming the Host header."""
    evil = {"host": "attacker.example"}
    answers = [
        httpx.get(world.server.url + "/conversation/", headers=evil),
        httpx.get(world.server.api_url + f"{A}/sources/", headers=evil),
    ]
    for response in answers:
        assert "attacker.example" not in response.headers.get("location", "")
        assert response.status_code == 404


def test_the_disabled_caller_is_disabled_for_real(world: World) -> None:
    """The user that `sealdrop user disable` disabled is listed as disabled, and new submissions
    are encrypted to the journalist's key but not to the key the disabled user had registered."""
    assert cli_users(world.instance)["leaver"]["disabled"] is True
    assert world.source.submit("after the leaver left").status_code == 303
    item = world.newest_submission()
    ciphertext = world.admin.get(f"/submissions/{item}/content").content
    assert age_opens(world.device.identity_file, ciphertext)
    assert not age_opens(world.leaver_device.identity_file, ciphertext)
