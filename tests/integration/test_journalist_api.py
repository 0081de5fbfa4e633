"""The journalist API against a real server: what a source sends reaches the journalist's own
device key and nothing else can open it (invariant 2); every call is authenticated and authorised
(invariant 8); admins run the instance; bad input fails closed and changes nothing.

One server serves the whole module (each login costs an Argon2 verification and the server allows
30 logins a minute), so each test makes the sources and accounts it changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from support_api import (
    Account,
    Api,
    age_decrypt,
    age_keygen,
    age_opens,
    api_account,
    assert_api_error,
    blob_files,
    cli_account,
    cli_users,
    code_at,
    encrypt_reply,
    instance_database,
    new_age_recipient,
    new_source,
    start_instance,
    token_hash,
    totp_secret_of,
    x25519_stanzas,
)
from support_http import JournalistKey, Source, setup_cli, staging_files

from sealdrop.ids import UserId
from sealdrop.services.auth import FREE_FAILURES, lock_seconds
from sealdrop.storage.interfaces_accounts import TokenRecord
from sealdrop.testing import ServerProcess
from support_digests import blake3_digest
from support_pages import csrf_token

KiB = 1024
# Small, so that a reply over the limit is cheap to make (SEALDROP_REPLIES_MAX_BYTES).
REPLY_LIMIT = 4 * KiB
OCTETS = {"content-type": "application/octet-stream"}


@dataclass
class Deployment:
    root: Path
    instance: Path
    server: ServerProcess
    admin: Account
    admin_api: Api
    journalist: Account
    api: Api  # the journalist's
    device: JournalistKey  # the journalist's reader device; its private key stays here
    device_key_id: str

    def anonymous(self) -> Api:
        return self.api.as_(None)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """An instance with an admin and a journalist made by `sealdrop user add`; the journalist's
    reader has registered its device key, the only key submissions are encrypted to."""
    root = tmp_path_factory.mktemp("journalist-api")
    instance, server = start_instance(root, replies_max_bytes=str(REPLY_LIMIT))
    try:
        admin = cli_account(instance, "editor", admin=True)
        journalist = cli_account(instance, "reporter")
        anonymous = Api(server)
        admin_api = anonymous.as_(anonymous.login(admin))
        api = anonymous.as_(anonymous.login(journalist))
        device = age_keygen(root / "reporter-device.txt")
        key = api.ok(
            "POST", "/me/keys", 201, json={"public_key": device.recipient, "name": "laptop"}
        )
        yield Deployment(
            root, instance, server, admin, admin_api, journalist, api, device, key["id"]
        )
        anonymous.http.close()
    finally:
        server.stop()


@dataclass
class Conversation:
    source: Source
    codename: str
    id: str
    message: str
    filename: str
    content: bytes


@pytest.fixture(scope="module")
def conversation(deployment: Deployment) -> Iterator[Conversation]:
    """A source that sent a message and a file."""
    message = "The minutes of the board meeting — ünïcödé ✓\r\nSecond line."
    filename = "board minutes (draft) ✓.pdf"
    content = os.urandom(200 * KiB)
    source, codename = new_source(
        deployment.server, message, files=[(filename, content, "application/pdf")]
    )
    found = deployment.api.latest_source()
    yield Conversation(source, codename, found["id"], message, filename, content)
    source.http.close()


def newest_submission(api: Api, source_id: str) -> dict[str, Any]:
    return max(api.submissions(source_id), key=lambda item: item["seq"])


def download(api: Api, item: dict[str, Any], **headers: str) -> httpx.Response:
    kind = "replies" if item["kind"] == "reply" else "submissions"
    return api.get(f"/{kind}/{item['id']}/content", headers=headers)


def audit_entries(api: Api, after_id: int = 0) -> list[dict[str, Any]]:
    entries = api.ok("GET", "/audit", params={"limit": 200})["entries"]
    return [e for e in entries if e["id"] > after_id]


def newest_audit_id(api: Api) -> int:
    entries = api.ok("GET", "/audit", params={"limit": 1})["entries"]
    return int(entries[0]["id"]) if entries else 0


# -- end to end ------------------------------------------------------------------------------


def test_submission_is_encrypted_to_the_journalists_device_key(
    deployment: Deployment, conversation: Conversation
) -> None:
    """The message and the file download as age files that stock `age -d` opens with the device
    key to the exact bytes; the file's name lives only in its encrypted metadata."""
    api = deployment.api
    message, file = api.submissions(conversation.id)
    assert (message["kind"], message["seq"], message["metadata"]) == ("message", 1, None)
    assert (file["kind"], file["seq"]) == ("file", 2)
    assert message["arrival_day"] == file["arrival_day"]
    assert len(message["arrival_day"]) == 10  # a day, nothing finer

    for item in (message, file):
        response = download(api, item)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        ciphertext = response.content
        assert len(ciphertext) == item["size"]
        assert blake3_digest(ciphertext) == item["digest"]
        assert x25519_stanzas(ciphertext) == 1  # the device key: the only recipient
    assert age_decrypt(deployment.device.identity_file, download(api, message).content) == (
        conversation.message.encode()
    )
    assert age_decrypt(deployment.device.identity_file, download(api, file).content) == (
        conversation.content
    )
    metadata = age_decrypt(deployment.device.identity_file, base64.b64decode(file["metadata"]))
    assert json.loads(metadata) == {
        "filename": conversation.filename,
        "content_type": "application/pdf",
        "size": len(conversation.content),
    }
    listing = json.dumps(api.submissions(conversation.id))
    assert "board minutes" not in listing


def test_downloads_have_a_digest_etag_and_honour_one_byte_range(
    deployment: Deployment, conversation: Conversation
) -> None:
    """ETag is the ciphertext's content digest (BLAKE3) and If-None-Match gives 304; bytes=0-99
    and the suffix bytes=-10 give 206 with the right slice and Content-Range; an unsatisfiable
    range gives 416."""
    api = deployment.api
    file = api.submissions(conversation.id)[1]
    full = download(api, file)
    size = len(full.content)
    digest = blake3_digest(full.content)
    assert full.headers["etag"] == f'"{digest}"'
    assert full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == size

    cached = download(api, file, **{"if-none-match": f'"{digest}"'})
    assert cached.status_code == 304
    assert cached.content == b""
    assert download(api, file, **{"if-none-match": '"stale"'}).status_code == 200

    head = download(api, file, range="bytes=0-99")
    assert head.status_code == 206
    assert head.content == full.content[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{size}"
    assert head.headers["content-length"] == "100"

    tail = download(api, file, range="bytes=-10")
    assert tail.status_code == 206
    assert tail.content == full.content[-10:]
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    rest = download(api, file, range=f"bytes={size - 5}-")
    assert (rest.status_code, rest.content) == (206, full.content[-5:])

    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0"):
        refused = download(api, file, range=unsatisfiable)
        assert refused.status_code == 416, unsatisfiable
        assert refused.headers["content-range"] == f"bytes */{size}"


def test_reply_reaches_the_source_and_the_journalist_can_fetch_and_delete_it(
    deployment: Deployment, conversation: Conversation
) -> None:
    """A reply encrypted on the journalist's side (pyrage, to the source's reply key and the
    device key) is stored as sent, read by the source after logging in on the web, downloaded
    by the journalist, and deleted."""
    api = deployment.api
    source = api.source(conversation.id)
    text = "Thank you. <b>Can we talk?</b>\nSecond line ✓"
    ciphertext = encrypt_reply(text, source["reply_key"], deployment.device.recipient)
    created = api.ok(
        "POST", f"/sources/{conversation.id}/replies", 201, content=ciphertext, headers=OCTETS
    )
    assert created["kind"] == "reply"
    assert created["author"] == deployment.journalist.username
    assert created["seen"] is True  # the author has seen their own reply
    assert created["size"] == len(ciphertext)
    assert created["digest"] == blake3_digest(ciphertext)
    assert created["seq"] > max(i["seq"] for i in api.submissions(conversation.id))
    assert [r["id"] for r in api.replies(conversation.id)] == [created["id"]]
    assert api.source(conversation.id)["version"] > source["version"]

    fetched = download(api, created)
    assert fetched.content == ciphertext
    assert age_decrypt(deployment.device.identity_file, fetched.content).decode() == text

    # A new visit: the source logs in with the codename. The same browser, because a login ends
    # the source's other sessions, and later tests submit with this one.
    browser = conversation.source
    assert browser.login(conversation.codename).status_code == 303
    page = browser.http.get("/conversation").text
    assert html.escape(text) in page  # shown as text, never as markup

    assert api.delete(f"/replies/{created['id']}").status_code == 204
    assert_api_error(download(api, created), 404, "not_found")
    assert api.replies(conversation.id) == []
    assert "Can we talk?" not in browser.http.get("/conversation").text


def test_star_and_unstar_change_the_source_and_its_version(
    deployment: Deployment, conversation: Conversation
) -> None:
    """PUT /star sets and clears the flag, bumps the version, and filters ?starred=."""
    api = deployment.api
    before = api.source(conversation.id)
    starred = api.ok("PUT", f"/sources/{conversation.id}/star", json={"starred": True})
    assert starred["starred"] is True
    assert starred["version"] > before["version"]
    only_starred = api.ok("GET", "/sources", params={"starred": "true", "limit": 200})
    assert conversation.id in [s["id"] for s in only_starred["sources"]]
    assert all(s["starred"] for s in only_starred["sources"])

    unstarred = api.ok("PUT", f"/sources/{conversation.id}/star", json={"starred": False})
    assert unstarred["starred"] is False
    assert unstarred["version"] > starred["version"]
    only_starred = api.ok("GET", "/sources", params={"starred": "true", "limit": 200})
    assert conversation.id not in [s["id"] for s in only_starred["sources"]]
    not_starred = api.ok("GET", "/sources", params={"starred": "false", "limit": 200})
    assert conversation.id in [s["id"] for s in not_starred["sources"]]


def test_seen_marks_are_per_journalist_and_drive_the_unread_counts(
    deployment: Deployment,
) -> None:
    """POST /seen marks items for the caller only; unknown and repeated ids are ignored."""
    new_source(deployment.server, "one", files=[("a.txt", b"two", "text/plain")])
    api, admin = deployment.api, deployment.admin_api
    source_id = api.latest_source()["id"]
    message, file = api.submissions(source_id)
    assert api.source(source_id)["unread"] == 2
    assert admin.source(source_id)["unread"] == 2
    assert not message["seen"]

    unknown = "0" * 32
    marked = api.ok("POST", "/seen", json={"ids": [message["id"], message["id"], unknown]})
    assert marked == {"marked": 1}
    assert api.source(source_id)["unread"] == 1
    assert [i["seen"] for i in api.submissions(source_id)] == [True, False]
    assert api.ok("GET", f"/submissions/{message['id']}")["seen"] is True
    assert admin.source(source_id)["unread"] == 2  # another journalist's view is untouched
    assert [i["seen"] for i in admin.submissions(source_id)] == [False, False]

    assert api.ok("POST", "/seen", json={"ids": [file["id"]]}) == {"marked": 1}
    assert api.source(source_id)["unread"] == 0


def test_pages_of_sources_follow_next_without_duplicates_or_gaps(deployment: Deployment) -> None:
    """limit=2 pages, each started at the previous page's `next`, cover every source exactly
    once, oldest change first, and the last page says next=null."""
    for n in range(4):
        new_source(deployment.server, f"source number {n}")
    api = deployment.api
    everyone = api.all_sources()
    assert len(everyone) >= 5

    seen: list[str] = []
    versions: list[int] = []
    cursor: int | None = 0
    pages = 0
    while cursor is not None:
        page = api.ok("GET", "/sources", params={"updated_since": cursor, "limit": 2})
        assert 1 <= len(page["sources"]) <= 2
        seen += [s["id"] for s in page["sources"]]
        versions += [s["version"] for s in page["sources"]]
        if page["next"] is not None:
            assert page["next"] == page["sources"][-1]["version"]
        cursor = page["next"]
        pages += 1
    assert pages == (len(everyone) + 1) // 2
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(s["id"] for s in everyone)
    assert versions == sorted(versions)


def test_updated_since_returns_only_sources_changed_after_a_version(
    deployment: Deployment, conversation: Conversation
) -> None:
    """After syncing up to version v, a new submission brings back exactly its source, with a
    version above v and one more submission."""
    api = deployment.api
    latest = max(s["version"] for s in api.all_sources())
    nothing = api.ok("GET", "/sources", params={"updated_since": latest})
    assert nothing == {"sources": [], "next": None}
    before = api.source(conversation.id)

    assert conversation.source.submit("one more thing").status_code == 303
    changed = api.ok("GET", "/sources", params={"updated_since": latest})
    assert [s["id"] for s in changed["sources"]] == [conversation.id]
    (source,) = changed["sources"]
    assert source["version"] > latest
    assert source["submissions"] == before["submissions"] + 1
    assert changed["next"] is None
    assert api.ok("GET", "/sources", params={"updated_since": source["version"]})["sources"] == []


def test_deleting_a_submission_then_its_source_removes_their_blobs(
    deployment: Deployment,
) -> None:
    """DELETE /submissions/{id} removes that blob; DELETE /sources/{id} removes the source, its
    submissions and replies and every blob of theirs, and its codename opens nothing any more."""
    api, instance = deployment.api, deployment.instance
    before = blob_files(instance)
    browser, codename = new_source(
        deployment.server, "to be deleted", files=[("f.bin", os.urandom(KiB), "x/y")]
    )
    source = api.latest_source()
    reply = encrypt_reply("bye", source["reply_key"], deployment.device.recipient)
    api.ok("POST", f"/sources/{source['id']}/replies", 201, content=reply, headers=OCTETS)
    mine = blob_files(instance) - before
    assert len(mine) == 3  # message, file, reply

    message, file = api.submissions(source["id"])
    assert api.delete(f"/submissions/{message['id']}").status_code == 204
    assert_api_error(api.get(f"/submissions/{message['id']}"), 404, "not_found")
    assert_api_error(download(api, message), 404, "not_found")
    assert [i["id"] for i in api.submissions(source["id"])] == [file["id"]]
    assert len(blob_files(instance) - before) == 2
    assert api.source(source["id"])["version"] > source["version"]

    assert api.delete(f"/sources/{source['id']}").status_code == 204
    assert_api_error(api.get(f"/sources/{source['id']}"), 404, "not_found")
    assert source["id"] not in [s["id"] for s in api.all_sources()]
    assert blob_files(instance) & mine == set()
    assert before <= blob_files(instance)  # nobody else's blobs went
    assert_api_error(api.delete(f"/sources/{source['id']}"), 404, "not_found")
    assert browser.http.get("/conversation").status_code == 403  # its session ended with it
    assert browser.login(codename).status_code == 400  # and the codename is unknown now


def test_a_source_whose_submissions_were_all_deleted_stays_listed(
    deployment: Deployment,
) -> None:
    """Deleting a source's last submission is a change a syncing reader sees: the source comes
    back from updated_since with its new version and stays in the list with its reply."""
    new_source(deployment.server, "the only message")
    api = deployment.api
    source = api.latest_source()
    reply = encrypt_reply("received", source["reply_key"], deployment.device.recipient)
    api.ok("POST", f"/sources/{source['id']}/replies", 201, content=reply, headers=OCTETS)
    synced = max(s["version"] for s in api.all_sources())
    (message,) = api.submissions(source["id"])
    assert api.delete(f"/submissions/{message['id']}").status_code == 204

    kept = api.source(source["id"])  # the source exists, with its reply
    assert (kept["submissions"], len(api.replies(source["id"]))) == (0, 1)
    changed = api.ok("GET", "/sources", params={"updated_since": synced})["sources"]
    assert [s["id"] for s in changed] == [source["id"]]
    assert source["id"] in [s["id"] for s in api.all_sources()]


# -- admin -----------------------------------------------------------------------------------


def test_admin_creates_a_user_and_its_secrets_are_shown_once(deployment: Deployment) -> None:
    """POST /users returns the passphrase and the otpauth URI once; they log the new user in
    (the name in any case) for 8 hours; no listing shows them again; a taken name is a 409."""
    admin = deployment.admin_api
    created = admin.ok("POST", "/users", 201, json={"username": "NewsDesk"})
    assert created["user"]["username"] == "newsdesk"
    assert created["user"]["role"] == "journalist"
    assert created["user"]["disabled"] is False
    assert len(created["passphrase"].split()) == 7
    assert created["totp_uri"].startswith("otpauth://totp/")
    account = Account(
        "newsdesk",
        created["passphrase"],
        totp_secret_of(created["totp_uri"]),
        created["user"]["id"],
    )
    issued = deployment.anonymous().login_response(
        "  NEWSDESK ", account.passphrase, account.fresh_code()
    )
    assert issued.status_code == 200, issued.text
    assert abs(issued.json()["expires_at"] - (time.time() + 8 * 3600)) < 60
    me = admin.as_(issued.json()["token"]).ok("GET", "/me")
    assert (me["id"], me["role"], me["keys"]) == (account.id, "journalist", [])

    users = admin.ok("GET", "/users")["users"]
    assert {"id": account.id, "username": "newsdesk", "role": "journalist", "disabled": False} in (
        users
    )
    assert all(set(u) == {"id", "username", "role", "disabled"} for u in users)
    assert created["passphrase"] not in json.dumps(users)
    assert cli_users(deployment.instance)["newsdesk"]["id"] == account.id
    assert_api_error(admin.post("/users", json={"username": "newsdesk"}), 409, "conflict")


@pytest.mark.slow  # CLI processes, and logins that may wait for a fresh TOTP step
def test_a_username_reaches_the_same_account_through_every_entry_point(
    deployment: Deployment,
) -> None:
    """' Frontdesk ', 'FRONTDESK' and 'frontdesk' are one account for POST /users (a second one
    is a 409 that does not repeat the name), POST /token and the CLI's disable, enable, token
    revoke and reset-2fa: one rule, in one place."""
    admin, anonymous = deployment.admin_api, deployment.anonymous()
    created = admin.ok("POST", "/users", 201, json={"username": " Frontdesk "})
    assert created["user"]["username"] == "frontdesk"
    for spelling in ("frontdesk", "FRONTDESK", " frontDesk\t"):
        again = admin.post("/users", json={"username": spelling})
        assert_api_error(again, 409, "conflict")
        assert "frontdesk" not in again.text.lower()
    account = Account(
        "frontdesk",
        created["passphrase"],
        totp_secret_of(created["totp_uri"]),
        created["user"]["id"],
    )
    tokens = []
    for spelling in (" Frontdesk ", "FRONTDESK"):
        issued = anonymous.login_response(spelling, account.passphrase, account.fresh_code())
        assert issued.status_code == 200, issued.text
        tokens.append(issued.json()["token"])
        assert admin.as_(tokens[-1]).ok("GET", "/me")["id"] == account.id

    # Three logins in all: a fourth would wait up to 30 s for a TOTP step not used yet.
    setup_cli("token", "revoke", deployment.instance, " FrontDesk")
    for token in tokens:
        assert_api_error(admin.as_(token).get("/me"), 401, "unauthenticated")
    setup_cli("user", "disable", deployment.instance, " Frontdesk ")
    assert cli_users(deployment.instance)["frontdesk"]["disabled"] is True
    setup_cli("user", "enable", deployment.instance, "FRONTDESK")
    assert cli_users(deployment.instance)["frontdesk"]["disabled"] is False
    out = setup_cli("user", "reset-2fa", deployment.instance, "FRONTDESK ")
    account.reenrol(out)
    assert anonymous.login(account)  # enabled again, and with the new secret


def test_disabling_a_user_revokes_their_token_and_their_key_at_once(
    deployment: Deployment, conversation: Conversation
) -> None:
    """A disabled user's token is refused on the next call and new submissions are no longer
    encrypted to their device key; enabled again, they log in anew and receive again. The last
    enabled admin cannot be disabled."""
    admin = deployment.admin_api
    stringer = api_account(admin, "stringer")
    api = admin.as_(deployment.anonymous().login(stringer))
    device = age_keygen(deployment.root / "stringer-device.txt")
    api.ok("POST", "/me/keys", 201, json={"public_key": device.recipient, "name": "phone"})

    def submit_and_fetch() -> bytes:
        assert conversation.source.submit("for whoever may read").status_code == 303
        item = newest_submission(deployment.api, conversation.id)
        return download(deployment.api, item).content

    both = submit_and_fetch()
    assert age_opens(device.identity_file, both)
    assert age_opens(deployment.device.identity_file, both)

    disabled = admin.ok("POST", f"/users/{stringer.id}/disable")
    assert disabled["disabled"] is True
    assert_api_error(api.get("/me"), 401, "unauthenticated")
    after = submit_and_fetch()
    assert x25519_stanzas(after) == x25519_stanzas(both) - 1
    assert not age_opens(device.identity_file, after)
    assert age_opens(deployment.device.identity_file, after)
    assert cli_users(deployment.instance)["stringer"]["disabled"] is True

    last_admin = admin.post(f"/users/{deployment.admin.id}/disable")
    assert_api_error(last_admin, 409, "conflict")  # someone must be able to administer
    assert admin.ok("GET", "/me")["disabled"] is False

    enabled = admin.ok("POST", f"/users/{stringer.id}/enable")
    assert enabled["disabled"] is False
    assert_api_error(api.get("/me"), 401, "unauthenticated")  # the old token stays revoked
    again = admin.as_(deployment.anonymous().login(stringer))
    assert again.ok("GET", "/me")["keys"][0]["public_key"] == device.recipient
    assert age_opens(device.identity_file, submit_and_fetch())


def test_reset_2fa_makes_the_old_authenticator_useless(deployment: Deployment) -> None:
    """After reset-2fa (API or CLI) the old TOTP secret no longer logs in, the user's tokens
    are revoked, and the new secret (from the returned URI) works."""
    admin, anonymous = deployment.admin_api, deployment.anonymous()
    courier = api_account(admin, "courier")
    api = admin.as_(anonymous.login(courier))
    enrolment = admin.ok("POST", f"/users/{courier.id}/reset-2fa")
    assert set(enrolment) == {"totp_uri"}
    assert_api_error(api.get("/me"), 401, "unauthenticated")

    old_code = courier.unused_code()
    refused = anonymous.login_response(courier.username, courier.passphrase, old_code)
    assert_api_error(refused, 401, "unauthenticated")
    courier.reenrol(enrolment["totp_uri"])
    assert anonymous.login(courier)

    # The operator's way, for a lost phone: `sealdrop user reset-2fa` prints a new enrolment.
    out = setup_cli("user", "reset-2fa", deployment.instance, "courier")
    api_secret = courier.totp_secret
    refused = anonymous.login_response(courier.username, courier.passphrase, courier.unused_code())
    assert_api_error(refused, 401, "unauthenticated")
    courier.reenrol(out)
    assert courier.totp_secret != api_secret
    assert anonymous.login(courier)


def test_organisation_recipients_are_added_listed_and_removed(
    deployment: Deployment, conversation: Conversation
) -> None:
    """An organisation key receives every new submission from when it is added until it is
    removed; bad and duplicate keys are refused (the 409 does not repeat the key: API messages
    never repeat request data); removing twice is a 404."""
    admin, api = deployment.admin_api, deployment.api
    archive = age_keygen(deployment.root / "offline-archive.txt")
    assert admin.ok("GET", "/recipients") == {"recipients": []}
    added = admin.ok(
        "POST", "/recipients", 201, json={"public_key": archive.recipient, "name": "  Offline  "}
    )
    assert (added["public_key"], added["name"]) == (archive.recipient, "Offline")
    assert admin.ok("GET", "/recipients") == {"recipients": [added]}
    duplicate = admin.post("/recipients", json={"public_key": archive.recipient})
    assert_api_error(duplicate, 409, "conflict")
    assert archive.recipient not in duplicate.text
    bad = admin.post("/recipients", json={"public_key": "age1" + "q" * 58})
    assert_api_error(bad, 400, "invalid_key")
    # A journalist's device key that is also an organisation key would be a second way in.
    assert_api_error(api.post("/me/keys", json={"public_key": archive.recipient}), 409, "conflict")

    assert conversation.source.submit("to the archive too").status_code == 303
    item = newest_submission(api, conversation.id)
    assert age_opens(archive.identity_file, download(api, item).content)

    assert admin.delete(f"/recipients/{added['id']}").status_code == 204
    assert admin.ok("GET", "/recipients") == {"recipients": []}
    assert_api_error(admin.delete(f"/recipients/{added['id']}"), 404, "not_found")
    assert conversation.source.submit("not to the archive").status_code == 303
    item = newest_submission(api, conversation.id)
    assert not age_opens(archive.identity_file, download(api, item).content)


def test_settings_switch_files_and_intake_off_for_the_very_next_source_request(
    deployment: Deployment, conversation: Conversation
) -> None:
    """files_enabled=false removes the file input and refuses a file with the "Messages only"
    page; lower size and length limits apply at once; accepting_submissions=false shows that
    nothing is accepted and refuses a post."""
    admin, api, source = deployment.admin_api, deployment.api, conversation.source
    defaults = admin.ok("GET", "/settings")
    assert defaults["files_enabled"] is True
    assert defaults["accepting_submissions"] is True
    count = api.source(conversation.id)["submissions"]
    try:
        changed = admin.ok("PATCH", "/settings", json={"files_enabled": False})
        assert changed == {**defaults, "files_enabled": False}
        page = source.http.get("/conversation").text
        assert 'type="file"' not in page
        assert "<textarea" in page
        refused = source.submit("with a file", files=[("a.txt", b"content", "text/plain")])
        assert refused.status_code == 400
        assert "Messages only" in refused.text
        assert api.source(conversation.id)["submissions"] == count
        assert source.submit("a message is still fine").status_code == 303
        count += 1

        admin.ok(
            "PATCH",
            "/settings",
            json={"files_enabled": True, "max_upload_bytes": 2 * KiB, "max_message_chars": 10},
        )
        page = source.http.get("/conversation").text
        assert 'maxlength="10"' in page
        too_big = source.submit(files=[("b.bin", os.urandom(4 * KiB), "x/y")])
        assert too_big.status_code == 413
        too_long = source.submit("eleven char")
        assert (too_long.status_code, "Message too long" in too_long.text) == (400, True)
        assert api.source(conversation.id)["submissions"] == count
        admin.ok(
            "PATCH",
            "/settings",
            json={
                "max_upload_bytes": defaults["max_upload_bytes"],
                "max_message_chars": defaults["max_message_chars"],
                "accepting_submissions": False,
            },
        )
        page = source.http.get("/conversation").text
        assert "not accepting submissions" in page
        assert "<textarea" not in page
        refused = source.submit("anyone there?", token=csrf_token(page))
        assert refused.status_code == 503
        assert "Not accepting submissions right now" in refused.text
        assert api.source(conversation.id)["submissions"] == count
    finally:
        restored = admin.ok("PATCH", "/settings", json=defaults)
    assert restored == defaults
    assert 'type="file"' in source.http.get("/conversation").text


def test_audit_log_names_users_actions_sources_and_days_only(
    deployment: Deployment, conversation: Conversation
) -> None:
    """Every journalist and admin action is in the audit log, newest first, with the username,
    the source's pseudonym where one is concerned and the UTC day; no address, no time."""
    admin, api = deployment.admin_api, deployment.api
    start = newest_audit_id(admin)
    pseudonym = api.source(conversation.id)["pseudonym"]
    api.ok("PUT", f"/sources/{conversation.id}/star", json={"starred": True})
    api.ok("PUT", f"/sources/{conversation.id}/star", json={"starred": False})
    added = admin.ok("POST", "/recipients", 201, json={"public_key": new_age_recipient()})
    admin.ok("DELETE", f"/recipients/{added['id']}", 204)
    admin.ok("PATCH", "/settings", json={"files_enabled": True})
    auditor = api_account(admin, "auditor")
    admin.ok("POST", f"/users/{auditor.id}/disable")
    admin.ok("POST", f"/users/{auditor.id}/enable")
    reply = encrypt_reply("noted", api.source(conversation.id)["reply_key"])
    url = f"/sources/{conversation.id}/replies"
    created = api.ok("POST", url, 201, content=reply, headers=OCTETS)
    api.ok("DELETE", f"/replies/{created['id']}", 204)
    assert conversation.source.submit("to be deleted").status_code == 303
    api.ok("DELETE", f"/submissions/{newest_submission(api, conversation.id)['id']}", 204)

    entries = audit_entries(admin, start)
    assert [(e["username"], e["action"], e["source"]) for e in entries] == [
        ("reporter", "submission.delete", pseudonym),
        ("reporter", "reply.delete", pseudonym),
        ("reporter", "reply.create", pseudonym),
        ("editor", "user.enable", None),
        ("editor", "user.disable", None),
        ("editor", "user.create.journalist", None),
        ("editor", "settings.files_enabled", None),
        ("editor", "recipient.remove", None),
        ("editor", "recipient.add", None),
        ("reporter", "source.unstar", pseudonym),
        ("reporter", "source.star", pseudonym),
    ]
    everything = admin.ok("GET", "/audit", params={"limit": 200})
    assert everything["next"] is None
    today = dt.datetime.now(dt.UTC).date()
    actions = set()
    for entry in everything["entries"]:
        assert set(entry) == {"id", "day", "username", "action", "source"}
        assert dt.date.fromisoformat(entry["day"]) in (today, today - dt.timedelta(days=1))
        actions.add((entry["username"], entry["action"]))
    assert {("editor", "login"), ("reporter", "login")} <= actions
    raw = json.dumps(everything)
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", raw)  # no IPv4 address
    assert "127.0.0.1" not in raw
    assert not re.search(r"\d{2}:\d{2}", raw)  # no time of day

    # Paging backwards with `before` = `next` walks the same entries.
    walked: list[int] = []
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": 3}
        if before is not None:
            params["before"] = before
        page = admin.ok("GET", "/audit", params=params)
        walked += [e["id"] for e in page["entries"]]
        before = page["next"]
        if before is None:
            break
    assert walked == [e["id"] for e in everything["entries"]]


def test_registering_and_removing_a_device_key_is_audited(deployment: Deployment) -> None:
    """Adding a device key and removing it each leave an audit entry naming the journalist."""
    start = newest_audit_id(deployment.admin_api)
    api = deployment.api
    key = api.ok("POST", "/me/keys", 201, json={"public_key": new_age_recipient()})
    api.ok("DELETE", f"/me/keys/{key['id']}", 204)
    entries = audit_entries(deployment.admin_api, start)
    assert [e["username"] for e in entries] == ["reporter", "reporter"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer not-a-token",
        "Bearer " + "x" * 500,
        "Basic ZWRpdG9yOnBhc3N3b3Jk",
        "bearer",
        "Token abc",
    ],
    ids=["missing", "scheme-only", "unknown", "overlong", "basic", "lowercase", "other"],
)
def test_requests_without_a_valid_token_get_401_json(
    deployment: Deployment, authorization: str | None
) -> None:
    """A missing or malformed bearer token: 401 JSON "unauthenticated" with
    WWW-Authenticate: Bearer, and nothing done."""
    headers = {} if authorization is None else {"authorization": authorization}
    anonymous = deployment.anonymous()
    assert_api_error(anonymous.get("/me", headers=headers), 401, "unauthenticated")
    assert_api_error(anonymous.get("/sources", headers=headers), 401, "unauthenticated")
    settings = anonymous.patch("/settings", json={"accepting_submissions": False}, headers=headers)
    assert_api_error(settings, 401, "unauthenticated")
    assert deployment.admin_api.ok("GET", "/settings")["accepting_submissions"] is True


def test_tokens_and_passphrases_are_stored_only_as_hashes(deployment: Deployment) -> None:
    """No file of the instance holds a bearer token or a passphrase; the token's SHA-256 is
    what the database keys it by."""
    account = api_account(deployment.admin_api, "hashed")
    token = deployment.anonymous().login(account)
    needles = [token.encode(), account.passphrase.encode()]
    for path in deployment.instance.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [n for n in needles if n in data], path
    database = instance_database(deployment.instance)
    try:
        with database.transaction() as repos:
            record = repos.tokens.get(token_hash(token))
    finally:
        database.close()
    assert record is not None
    assert record.user_id == account.id


def test_an_expired_token_is_refused_and_forgotten(deployment: Deployment) -> None:
    """A token row whose expires_at has passed is refused (and deleted); the same row with a
    future expiry would work, so the expiry is what refuses it."""
    now = int(time.time())
    expired, valid = "expired-" + os.urandom(16).hex(), "valid-" + os.urandom(16).hex()
    user = UserId(deployment.journalist.id)
    database = instance_database(deployment.instance)
    try:
        with database.transaction() as repos:
            repos.tokens.add(TokenRecord(token_hash(expired), user, now - 9 * 3600, now - 1))
            repos.tokens.add(TokenRecord(token_hash(valid), user, now, now + 3600))
        api = deployment.api
        assert_api_error(api.as_(expired).get("/me"), 401, "unauthenticated")
        assert api.as_(valid).ok("GET", "/me")["username"] == "reporter"
        with database.transaction() as repos:
            assert repos.tokens.get(token_hash(expired)) is None
            assert repos.tokens.get(token_hash(valid)) is not None
    finally:
        database.close()


def test_logout_and_cli_revocation_end_tokens_at_once(deployment: Deployment) -> None:
    """POST /logout revokes the token it is called with (204, then 401); `sealdrop token revoke`
    revokes all of a user's tokens and no one else's."""
    anonymous = deployment.anonymous()
    revoked = api_account(deployment.admin_api, "revoked")
    first = anonymous.as_(anonymous.login(revoked))
    second = anonymous.as_(anonymous.login(revoked))
    assert first.post("/logout").status_code == 204
    assert_api_error(first.get("/me"), 401, "unauthenticated")
    assert_api_error(first.post("/logout"), 401, "unauthenticated")
    assert second.ok("GET", "/me")["username"] == "revoked"

    setup_cli("token", "revoke", deployment.instance, "revoked")
    assert_api_error(second.get("/me"), 401, "unauthenticated")
    assert deployment.api.ok("GET", "/me")["username"] == "reporter"


def test_a_journalist_gets_403_on_admin_routes_and_changes_nothing(
    deployment: Deployment,
) -> None:
    """A journalist's valid token on admin routes: 403 JSON "forbidden", nothing changed."""
    api, admin = deployment.api, deployment.admin_api
    settings = admin.ok("GET", "/settings")
    users = admin.ok("GET", "/users")
    start = newest_audit_id(admin)
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/users", {"username": "intruder", "role": "admin"}),
        ("POST", f"/users/{deployment.admin.id}/disable", None),
        ("POST", f"/users/{deployment.journalist.id}/reset-2fa", None),
        ("GET", "/recipients", None),
        ("POST", "/recipients", {"public_key": new_age_recipient()}),
        ("GET", "/settings", None),
        ("PATCH", "/settings", {"accepting_submissions": False}),
        ("GET", "/audit", None),
    ]:
        response = api.request(method, path, json=body)
        assert_api_error(response, 403, "forbidden")
    assert admin.ok("GET", "/settings") == settings
    assert admin.ok("GET", "/users") == users
    assert admin.ok("GET", "/recipients") == {"recipients": []}
    assert newest_audit_id(admin) == start


def test_ids_of_another_type_or_of_deleted_items_are_404(
    deployment: Deployment, conversation: Conversation
) -> None:
    """A reply id where a submission id belongs, a submission id where a source or reply id
    belongs, made-up ids, deleted items and sources that never sent anything: all 404."""
    api = deployment.api
    source = api.source(conversation.id)
    submission = api.submissions(conversation.id)[0]
    reply_bytes = encrypt_reply("x", source["reply_key"], deployment.device.recipient)
    reply = api.ok(
        "POST", f"/sources/{conversation.id}/replies", 201, content=reply_bytes, headers=OCTETS
    )
    pending = Source(deployment.server.url)
    pending.start()  # never sends anything
    database = instance_database(deployment.instance)
    try:
        with database.engine.connect() as conn:
            query = text("SELECT id FROM sources WHERE pending_since IS NOT NULL")
            pending_id = conn.execute(query).scalars().first()
    finally:
        database.close()
    assert pending_id is not None
    made_up = "f" * 32
    wrong = [
        ("GET", f"/submissions/{reply['id']}"),
        ("GET", f"/submissions/{reply['id']}/content"),
        ("DELETE", f"/submissions/{reply['id']}"),
        ("GET", f"/submissions/{conversation.id}"),
        ("GET", f"/sources/{submission['id']}"),
        ("GET", f"/sources/{submission['id']}/submissions"),
        ("GET", f"/sources/{reply['id']}/replies"),
        ("PUT", f"/sources/{submission['id']}/star"),
        ("DELETE", f"/sources/{reply['id']}"),
        ("GET", f"/replies/{submission['id']}/content"),
        ("DELETE", f"/replies/{submission['id']}"),
        ("GET", f"/sources/{made_up}"),
        ("GET", f"/submissions/{made_up}/content"),
        ("GET", f"/sources/{pending_id}"),
        ("GET", f"/sources/{pending_id}/submissions"),
        ("PUT", f"/sources/{pending_id}/star"),
        ("POST", f"/sources/{pending_id}/replies"),
        ("POST", f"/sources/{made_up}/replies"),
        ("DELETE", f"/me/keys/{deployment.device_key_id}x"),
        ("DELETE", f"/replies/{made_up}"),
    ]
    for method, path in wrong:
        kwargs: dict[str, Any] = {}
        if path.endswith("/star"):
            kwargs["json"] = {"starred": True}
        elif path.endswith("/replies") and method == "POST":
            kwargs = {"content": reply_bytes, "headers": OCTETS}
        assert_api_error(api.request(method, path, **kwargs), 404, "not_found")
    admin = deployment.admin_api
    for method, path in [
        ("POST", f"/users/{submission['id']}/disable"),
        ("POST", f"/users/{made_up}/reset-2fa"),
        ("DELETE", f"/recipients/{deployment.device_key_id}"),  # a device key, not an org key
    ]:
        assert_api_error(admin.request(method, path), 404, "not_found")

    # What was refused was not done: the submission and the reply are still there.
    assert api.ok("GET", f"/submissions/{submission['id']}")["id"] == submission["id"]
    assert api.delete(f"/replies/{reply['id']}").status_code == 204
    assert_api_error(api.get(f"/replies/{reply['id']}/content"), 404, "not_found")
    assert_api_error(api.delete(f"/replies/{reply['id']}"), 404, "not_found")


def test_a_journalist_cannot_remove_another_journalists_device_key(
    deployment: Deployment,
) -> None:
    """DELETE /me/keys/{id} with someone else's key id is a 404 and their key stays."""
    assert_api_error(
        deployment.admin_api.delete(f"/me/keys/{deployment.device_key_id}"), 404, "not_found"
    )
    keys = deployment.api.ok("GET", "/me")["keys"]
    assert [k["id"] for k in keys] == [deployment.device_key_id]
    duplicate = deployment.api.post("/me/keys", json={"public_key": deployment.device.recipient})
    assert_api_error(duplicate, 409, "conflict")


def test_bad_json_bodies_are_refused_and_change_nothing(deployment: Deployment) -> None:
    """Malformed JSON, wrong types (no coercion), extra fields, out-of-range values and bodies
    over 64 KiB: 400 or 413 JSON that does not echo the input, and no change at all."""
    admin, api = deployment.admin_api, deployment.api
    settings = admin.ok("GET", "/settings")
    keys = api.ok("GET", "/me")["keys"]
    start = newest_audit_id(admin)
    canary = "canary-" + os.urandom(8).hex()
    json_type = {"content-type": "application/json"}
    big = json.dumps({"files_enabled": False, "padding": "a" * 65 * KiB}).encode()

    def chunked() -> Iterator[bytes]:
        for i in range(0, len(big), 4 * KiB):
            yield big[i : i + 4 * KiB]

    bad: list[tuple[int, str, httpx.Response]] = [
        (400, "invalid_request", admin.patch("/settings", content=b"{oops", headers=json_type)),
        (400, "invalid_request", admin.patch("/settings", content=b"", headers=json_type)),
        (400, "invalid_request", admin.patch("/settings", json=[1, 2])),
        (400, "invalid_request", admin.patch("/settings", json={"files_enabled": canary})),
        (400, "invalid_request", admin.patch("/settings", json={"files_enabled": "false"})),
        (400, "invalid_request", admin.patch("/settings", json={"files_enabled": 0})),
        (400, "invalid_request", admin.patch("/settings", json={"max_upload_bytes": "2048"})),
        (400, "invalid_request", admin.patch("/settings", json={"max_upload_bytes": 10})),
        (400, "invalid_request", admin.patch("/settings", json={"max_message_chars": 2.5})),
        (
            400,
            "invalid_request",
            admin.patch("/settings", json={"files_enabled": False, "colour": "red"}),
        ),
        (413, "payload_too_large", admin.patch("/settings", content=big, headers=json_type)),
        (
            413,
            "payload_too_large",
            admin.patch("/settings", content=chunked(), headers=json_type),
        ),
        (400, "invalid_request", api.post("/me/keys", json={"public_key": canary})),
        (400, "invalid_request", api.post("/me/keys", json={"public_key": 12345678901})),
        (
            400,
            "invalid_request",
            api.post("/me/keys", json={"public_key": new_age_recipient(), "extra": 1}),
        ),
        (400, "invalid_key", api.post("/me/keys", json={"public_key": "age1" + "q" * 58})),
        (400, "invalid_request", api.post("/seen", json={"ids": ["a"] * 1001})),
        (400, "invalid_request", api.post("/seen", json={"ids": "abc"})),
        (400, "invalid_request", api.put(f"/sources/{'0' * 32}/star", json={"starred": "yes"})),
        (400, "invalid_request", api.get("/sources", params={"limit": 0})),
        (400, "invalid_request", api.get("/sources", params={"limit": 201})),
        (400, "invalid_request", api.get("/sources", params={"updated_since": -1})),
        (400, "invalid_request", api.get("/sources", params={"updated_since": "abc"})),
        (400, "invalid_request", admin.get("/audit", params={"before": 0})),
        (400, "invalid_request", admin.post("/users", json={"username": "../x"})),
        (400, "invalid_request", admin.post("/users", json={"username": "x", "role": "root"})),
        (
            400,
            "invalid_request",
            admin.post("/users", json={"username": "x", "passphrase": "chosen by me"}),
        ),
        (413, "payload_too_large", admin.post("/users", content=big, headers=json_type)),
        (
            400,
            "invalid_request",
            deployment.anonymous().post("/token", json={"username": "editor", "totp": "123456"}),
        ),
        (
            400,
            "invalid_request",
            deployment.anonymous().post(
                "/token", json={"username": "editor", "passphrase": "x", "totp": "12345a"}
            ),
        ),
    ]
    for status, code, response in bad:
        assert_api_error(response, status, code)
        assert canary not in response.text
    assert admin.ok("GET", "/settings") == settings
    assert api.ok("GET", "/me")["keys"] == keys
    assert "x" not in [u["username"] for u in admin.ok("GET", "/users")["users"]]
    assert newest_audit_id(admin) == start


def test_an_unknown_fields_name_is_not_echoed(deployment: Deployment) -> None:
    """A body with an unknown field is refused with a message that does not repeat its name."""
    canary = "canary-" + os.urandom(8).hex()
    response = deployment.admin_api.patch("/settings", json={"files_enabled": True, canary: 1})
    assert_api_error(response, 400, "invalid_request")
    assert canary not in response.text


def test_replies_that_are_not_age_files_or_too_large_are_refused_and_not_stored(
    deployment: Deployment, conversation: Conversation
) -> None:
    """A reply that is not an age file, is empty, or is over [replies] max_bytes: 400/413 JSON,
    no row, no blob, no staging file. A reply of exactly max_bytes is accepted."""
    api, instance = deployment.api, deployment.instance
    source = api.source(conversation.id)
    url = f"/sources/{conversation.id}/replies"
    blobs = blob_files(instance)
    replies = api.replies(conversation.id)

    def age_reply(size: int) -> bytes:
        # Encrypt until the ciphertext has exactly this size: rage adds a random "grease"
        # stanza to the header, so its length varies by a hundred bytes or so.
        length = size
        for _ in range(5000):
            ciphertext = encrypt_reply("r" * length, source["reply_key"])
            if len(ciphertext) == size:
                return ciphertext
            length = max(1, length + size - len(ciphertext))
        raise AssertionError(f"no age file of {size} bytes")

    for body in (b"", b"hello, this is plaintext", b"age-encryption.org/v2\n" + b"x" * 100):
        assert_api_error(api.post(url, content=body, headers=OCTETS), 400, "invalid_reply")
    slightly = api.post(url, content=age_reply(REPLY_LIMIT + 1), headers=OCTETS)
    assert slightly.status_code in (400, 413), slightly.text
    assert slightly.json()["error"]["code"] in ("invalid_reply", "payload_too_large")
    far = api.post(url, content=age_reply(REPLY_LIMIT + 2 * KiB), headers=OCTETS)
    assert_api_error(far, 413, "payload_too_large")
    assert api.replies(conversation.id) == replies
    assert blob_files(instance) == blobs
    assert staging_files(instance) == []

    exact = api.ok("POST", url, 201, content=age_reply(REPLY_LIMIT), headers=OCTETS)
    assert exact["size"] == REPLY_LIMIT
    assert api.delete(f"/replies/{exact['id']}").status_code == 204


def test_a_totp_code_works_once(deployment: Deployment) -> None:
    """The code of a successful login, replayed, is refused with the common 401; so is the code
    of an earlier step that is still within the clock-skew window."""
    anonymous = deployment.anonymous()
    account = api_account(deployment.admin_api, "once")
    # Skip one step, so that the step before the one used is still inside the server's window.
    account.last_step = account.next_step() + 1
    code = code_at(account.totp_secret, account.last_step)
    assert anonymous.login_response(account.username, account.passphrase, code).status_code == 200
    replay = anonymous.login_response(account.username, account.passphrase, code)
    assert_api_error(replay, 401, "unauthenticated")
    # The step before it would be in time, but codes only move forward.
    older = code_at(account.totp_secret, account.last_step - 1)
    assert_api_error(
        anonymous.login_response(account.username, account.passphrase, older),
        401,
        "unauthenticated",
    )


def test_concurrent_logins_with_one_code_yield_one_token(deployment: Deployment) -> None:
    """Three logins racing with the same intercepted code: exactly one gets a token."""
    account = api_account(deployment.admin_api, "racer")
    code = account.fresh_code()
    barrier = threading.Barrier(3)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=deployment.server.api_url + "/api/v1") as client:
            barrier.wait()
            body = {"username": account.username, "passphrase": account.passphrase, "totp": code}
            return client.post("/token", json=body).status_code

    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(pool.map(attempt, range(3)))
    assert statuses == [200, 401, 401]


def test_every_login_failure_gets_the_same_answer(deployment: Deployment) -> None:
    """Wrong passphrase, wrong TOTP code, unknown user and disabled user: the same status,
    headers that matter and body, so a failure says nothing about which factor was wrong."""
    admin, anonymous = deployment.admin_api, deployment.anonymous()
    account = api_account(admin, "samebody")
    dormant = api_account(admin, "dormant")
    admin.ok("POST", f"/users/{dormant.id}/disable")
    wrong_code = f"{(int(account.unused_code()) + 1) % 1_000_000:06d}"
    failures = [
        anonymous.login_response(account.username, account.passphrase + "x", account.unused_code()),
        anonymous.login_response(account.username, account.passphrase, wrong_code),
        anonymous.login_response("nobody-" + os.urandom(4).hex(), account.passphrase, "123456"),
        anonymous.login_response(dormant.username, dormant.passphrase, dormant.unused_code()),
    ]
    first = failures[0]
    assert_api_error(first, 401, "unauthenticated")
    for response in failures:
        assert response.status_code == first.status_code
        assert response.content == first.content
        assert response.headers["www-authenticate"] == first.headers["www-authenticate"]
    assert "token" not in first.text
    assert anonymous.login(account)  # two failures do not lock anyone


def test_repeated_failures_lock_the_account_even_against_the_right_credentials(
    deployment: Deployment,
) -> None:
    """After FREE_FAILURES + 1 wrong passphrases the account is locked for lock_seconds: the
    right passphrase and a fresh code get the same 401, and the lock is recorded."""
    account = api_account(deployment.admin_api, "guessed")
    anonymous = deployment.anonymous()
    failures = FREE_FAILURES + 1
    answers = [
        anonymous.login_response(account.username, f"guess {n}", account.unused_code())
        for n in range(failures)
    ]
    for answer in answers:
        assert_api_error(answer, 401, "unauthenticated")
    right = anonymous.login_response(account.username, account.passphrase, account.fresh_code())
    assert_api_error(right, 401, "unauthenticated")
    assert right.content == answers[0].content

    database = instance_database(deployment.instance)
    try:
        with database.transaction() as repos:
            user = repos.users.get(UserId(account.id))
    finally:
        database.close()
    assert user is not None
    assert user.failed_logins == failures  # the refused right login did not count or reset
    assert user.locked_until is not None
    assert lock_seconds(failures) > 0
    remaining = user.locked_until - time.time()
    assert 0 < remaining <= lock_seconds(failures)
    assert deployment.api.ok("GET", "/me")["username"] == "reporter"  # others are unaffected


def test_reply_keys_list_organisation_and_active_journalist_keys(deployment: Deployment) -> None:
    """GET /keys gives every key a reply must also be encrypted to: the organisation recipients
    and the device keys of active accounts (a disabled account's keys are left out)."""
    keys = deployment.api.ok("GET", "/keys")["keys"]
    assert deployment.device.recipient in keys
    org = age_keygen(deployment.root / "org-offline.txt")
    added = deployment.admin_api.ok(
        "POST", "/recipients", 201, json={"public_key": org.recipient, "name": "offline"}
    )
    try:
        keys = deployment.api.ok("GET", "/keys")["keys"]
        assert org.recipient in keys
        assert len(keys) == len(set(keys))
    finally:
        deployment.admin_api.ok("DELETE", f"/recipients/{added['id']}", 204)
