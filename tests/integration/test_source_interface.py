"""The complete source interface over HTTP against a real server: the codename round trip,
sessions, replies, CSRF, throttling, languages and the promises about what is never kept."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from support_api import instance_database
from support_http import (
    BOTH_BACKENDS,
    JournalistKey,
    Source,
    add_reply,
    setup_cli,
    start_server,
    stored,
    stored_since,
)

from sealdrop.testing import ServerProcess
from support_pages import csrf_token


def _main(page: httpx.Response) -> str:
    match = re.search(r"<main[^>]*>(.*)</main>", page.text, re.S)
    assert match, page.text
    return match.group(1)


def test_full_flow_start_confirm_submit_logout_login_reply_delete(
    shared_server: ServerProcess, shared_source: Source, shared_journalist_key: JournalistKey
) -> None:
    """start → confirm → submit → log out → log in → read a reply → delete it → log out."""
    server, source, journalist_key = shared_server, shared_source, shared_journalist_key
    instance_dir = server.instance
    before = stored(instance_dir)
    codename = source.start()
    assert source.submit("first message").status_code == 303
    page = source.http.get("/conversation")
    assert "1 item received on" in page.text
    assert "first message" not in page.text  # what was sent is never shown back
    assert source.logout().status_code == 200

    (item,) = stored_since(instance_dir, before)
    reply_text = "Thank you. <b>Can you tell us more?</b>\nSecond line."
    add_reply(instance_dir, item["source"], reply_text, journalist_key.recipient)

    again = Source(server.url)
    # Case and extra spaces do not matter.
    login = again.login("  " + codename.upper().replace(" ", "   ") + " ")
    assert login.status_code == 303
    assert login.headers["location"] == "/conversation"
    page = again.http.get("/conversation")
    assert "Can you tell us more?" in page.text
    assert "<b>" not in _main(page)  # shown as escaped text
    assert "&lt;b&gt;Can you tell us more?&lt;/b&gt;" in page.text
    reply_id = re.search(r'action="/replies/([0-9a-f]{32})/delete"', page.text).group(1)  # type: ignore[union-attr]
    deleted = again.http.post(
        f"/replies/{reply_id}/delete", data={"csrf_token": again.csrf_token()}
    )
    assert deleted.status_code == 303
    assert "Can you tell us more?" not in again.http.get("/conversation").text
    assert again.logout().status_code == 200


def test_confirmation_requires_the_real_codename(shared_server: ServerProcess) -> None:
    """A new source must type its codename back before it can submit; a wrong one is refused
    with a clear message and the source stays on the confirmation page."""
    source = Source(shared_server.url)
    codename = source.start(confirm=False)
    assert source.http.get("/conversation").headers["location"] == "/confirm"
    page = source.http.get("/confirm")
    token = csrf_token(page.text)
    wrong = " ".join(
        [*codename.split()[:-1], "zoom" if codename.split()[-1] != "zoom" else "abacus"]
    )
    refused = source.http.post("/confirm", data={"csrf_token": token, "codename": wrong})
    assert refused.status_code == 400
    assert "not the codename shown" in refused.text
    ok = source.http.post("/confirm", data={"csrf_token": token, "codename": codename})
    assert ok.status_code == 303
    assert source.http.get("/conversation").status_code == 200


@pytest.mark.parametrize(
    "garbage",
    [
        "x" * 10_000,
        "\x00\x01\x02 control \x7f",
        "абв 文字 كلمة word word word word",
        "   ",
        "",
        "correct horse battery staple",
    ],
    ids=["10k", "control", "mixed-scripts", "blank", "empty", "four-words"],
)
def test_garbled_codenames_get_the_same_clear_page(
    shared_server: ServerProcess, garbage: str
) -> None:
    """Any wrong codename, however malformed, gets the same 400 login page, never a 500, and
    the input is neither echoed nor logged."""
    server = shared_server
    source = Source(server.url)
    response = source.login(garbage)
    assert response.status_code == 400
    assert "That codename was not recognised" in response.text
    if garbage.strip():
        assert garbage not in response.text
        assert garbage not in server.log()
    assert "set-cookie" not in response.headers or "sealdrop_session" not in response.headers.get(
        "set-cookie", ""
    )


def test_codename_never_leaves_the_request(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """The codename appears in the /start page only: never in a cookie, a URL, a header, the
    log, the database or any file of the instance (invariant 4)."""
    server, source, instance_dir = shared_server, shared_source, shared_server.instance
    codename = source.start()
    source.submit("hello")
    source.logout()
    Source(server.url).login(codename)
    needle = codename.encode()
    for path in instance_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    assert codename not in server.log()
    for cookie in source.http.cookies.jar:
        assert codename.replace(" ", "") not in (cookie.value or "").replace(" ", "")


def test_logout_and_old_cookie_replay_show_nothing(
    shared_server: ServerProcess, shared_source: Source, shared_journalist_key: JournalistKey
) -> None:
    """After logout, replaying the old cookie opens nothing; another source's reply can be
    neither seen nor deleted (same answer as a made-up id)."""
    server, source, journalist_key = shared_server, shared_source, shared_journalist_key
    instance_dir = server.instance
    before = stored(instance_dir)
    source.start()
    source.submit("from A")
    (a_item,) = stored_since(instance_dir, before)
    other = Source(server.url)
    other.start()
    other.submit("from B")
    (b_item,) = stored_since(instance_dir, [*before, a_item])
    b_source = b_item["source"]
    assert b_source != a_item["source"]
    b_reply = add_reply(instance_dir, b_source, "secret for B", journalist_key.recipient)

    page = source.http.get("/conversation")
    assert "secret for B" not in page.text
    token = source.csrf_token()
    for reply_id in (b_reply, "0" * 32, "../../etc"):
        attempt = source.http.post(f"/replies/{reply_id}/delete", data={"csrf_token": token})
        assert attempt.status_code == 404
    assert "secret for B" in other.http.get("/conversation").text

    old_cookie = source.http.cookies.get("sealdrop_session")
    assert old_cookie is not None
    assert source.logout().status_code == 200
    replay = httpx.get(server.url + "/conversation", cookies={"sealdrop_session": old_cookie})
    assert replay.status_code == 403
    assert "Not logged in" in replay.text


@BOTH_BACKENDS
def test_a_login_ends_the_sources_other_sessions_and_deletion_ends_all(
    server: ServerProcess, instance_dir: Path, backend: str
) -> None:
    """Logging in with the codename on a second device makes the first device's cookie open
    nothing (403 "Not logged in"), while another source stays logged in; deleting the source
    then ends the second device's session too: sessions name no source, so no foreign key
    cascades, yet none outlives its source."""
    first, second, bystander = Source(server.url), Source(server.url), Source(server.url)
    try:
        codename = first.start()
        assert first.submit("from the first device").status_code == 303
        bystander.start()
        assert first.http.get("/conversation").status_code == 200

        assert second.login(codename).status_code == 303
        assert second.http.get("/conversation").status_code == 200
        stale = first.http.get("/conversation")
        assert stale.status_code == 403
        assert "Not logged in" in stale.text
        assert bystander.http.get("/conversation").status_code == 200

        (item,) = stored(instance_dir)
        db = instance_database(instance_dir)
        try:
            with db.transaction() as repos:
                assert repos.sources.delete(item["source"]) is True
        finally:
            db.close()
        gone = second.http.get("/conversation")
        assert gone.status_code == 403
        assert "Not logged in" in gone.text
        assert bystander.http.get("/conversation").status_code == 200
    finally:
        for browser in (first, second, bystander):
            browser.http.close()


def test_cookie_from_another_instance_is_treated_as_logged_out(
    shared_source: Source, tmp_path: Path, server_tmp: Path
) -> None:
    """A valid session cookie of one instance opens nothing on another."""
    source = shared_source
    source.start()
    cookie = source.http.cookies.get("sealdrop_session")
    assert cookie is not None
    other_dir = tmp_path / "other"
    setup_cli("init", other_dir)
    other = start_server(other_dir, server_tmp)
    try:
        response = httpx.get(other.url + "/conversation", cookies={"sealdrop_session": cookie})
        assert response.status_code == 403
    finally:
        other.stop()


def test_forms_without_their_token_change_nothing(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """Start and login without the form token, logout and reply deletion without the session
    token: 400, nothing created, the session still alive."""
    source, instance_dir = shared_source, shared_server.instance

    def sources() -> int:
        with closing(sqlite3.connect(instance_dir / "sealdrop.db")) as db:
            return int(db.execute("select count(*) from sources").fetchone()[0])

    before = sources()
    assert source.http.post("/start", data={}).status_code == 400
    assert source.http.post("/login", data={"codename": "a b c"}).status_code == 400
    source.start()
    assert source.http.post("/logout", data={}).status_code == 400
    assert source.http.post("/logout", data={"csrf_token": "0" * 64}).status_code == 400
    assert source.http.get("/conversation").status_code == 200
    assert sources() == before + 1  # the one start with its token


def test_login_throttling_without_ip_addresses(
    instance_dir: Path, journalist_key: JournalistKey, server_tmp: Path
) -> None:
    """One browser guessing codenames is stopped after the allowed failures (429 with
    Retry-After); a different browser can still log in until the global budget runs out. The log
    has a line for the first refusal at once and a count of the others when the server stops."""
    setup_cli("recipients", "add", instance_dir, journalist_key.recipient)
    proc = start_server(
        instance_dir, server_tmp, logins_failures_per_visitor="2", logins_per_minute="5"
    )
    try:
        guesser = Source(proc.url)
        assert guesser.login("wrong").status_code == 400
        assert guesser.login("wrong").status_code == 400
        blocked = guesser.login("wrong")
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        # The blocked attempt spent nothing; three more browsers use up the budget of 5.
        for _ in range(3):
            assert Source(proc.url).login("still wrong").status_code == 400
        assert Source(proc.url).login("again").status_code == 429  # global budget spent
        assert proc.log().count("request refused: TooManyRequests") == 1
    finally:
        proc.stop()
    assert "INFO sealdrop.web: request refused: TooManyRequests, 1 more within 60 s" in proc.log()


@pytest.mark.parametrize(
    ("accept", "lang", "rtl"),
    [
        ("fa-IR,fa;q=0.9", "fa", True),
        ("ar", "ar", True),
        ("zh-TW", "zh-Hant", False),
        ("zh-CN,zh;q=0.8", "zh-Hans", False),
        ("ru", "ru", False),
        ("ja, es;q=0.5", "es", False),  # Japanese is not offered: the next choice
        ("de-AT, es;q=0.5", "de", False),
        ("ps-AF", "ps", True),
        ("en-US,en;q=0.5", "en", False),
    ],
)
def test_language_from_accept_language(
    shared_server: ServerProcess, accept: str, lang: str, rtl: bool
) -> None:
    """Accept-Language picks the catalog; Persian and Arabic pages are right to left."""
    page = httpx.get(shared_server.url + "/", headers={"accept-language": accept})
    assert f'<html lang="{lang}" dir="{"rtl" if rtl else "ltr"}">' in page.text


def test_language_picker_works_without_javascript(shared_server: ServerProcess) -> None:
    """A plain link ?lang=fa sets the language for the following pages (a cookie) and returns
    to the same page; it never redirects off the site."""
    with httpx.Client(base_url=shared_server.url) as client:
        response = client.get("/login?lang=fa")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        page = client.get("/login")
        assert 'lang="fa" dir="rtl"' in page.text
        evil = client.get("//evil.example/?lang=fa")
        assert evil.headers.get("location") in (None, "/")


def test_every_page_is_small_and_self_contained(shared_source: Source) -> None:
    """Each page, its inlined stylesheet included, weighs at most 16 KB, loads nothing from
    another origin and has no script."""
    source = shared_source
    pages = [source.http.get("/"), source.http.get("/login")]
    codename_page = source.http.post("/start", data={"form_token": source.form_token()})
    pages.append(codename_page)
    pages.append(source.http.get("/confirm"))
    for page in pages:
        assert page.status_code == 200
        assert len(page.content) <= 16 * 1024, (page.url, len(page.content))
        assert "<script" not in page.text
        assert not re.search(r'(src|href)="(https?:)?//', page.text)


def test_language_links_on_answers_to_posts_lead_to_a_page_that_exists(
    shared_source: Source,
) -> None:
    """After a form post (log out), the language links lead to a GET page, never to a POST-only
    address (which would answer 405); on a GET page they come back to that page."""
    source = shared_source
    source.start()
    logged_out = source.logout()
    links = re.findall(r'href="([^"]*)\?lang=fa"', logged_out.text)
    assert links == ["/"]
    login = source.http.get("/login")
    assert re.findall(r'href="([^"]*)\?lang=fa"', login.text) == ["/login"]
