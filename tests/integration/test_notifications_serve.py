"""Notices to journalists from a real `sealdrop serve` with a short schedule, to a real SMTP
server on loopback (aiosmtpd: STARTTLS, AUTH) and a real HTTP receiver for an Apprise json://
URL: submissions lead to one notice per enabled account at the next scheduled time, carrying
nothing about them, a failed delivery is retried, and the server's log names no address."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

from sqlalchemy import text
from support_http import JournalistKey, Source, cli_in_process, setup_cli, start_server

from sealdrop.config import load_settings
from sealdrop.storage.database import SqlDatabase
from support_notices import JsonReceiver, SmtpServer
from support_wait import wait_for

INTERVAL = 5  # seconds between scheduled times
MESSAGE = "a source's canary text 93be"


def just_after_a_scheduled_time() -> None:
    """Sleep until a scheduled time has just passed, so that what follows (a few submissions)
    falls between two of them."""
    time.sleep(INTERVAL - time.time() % INTERVAL + 0.2)


def test_serve_sends_one_notice_per_enabled_account_at_the_scheduled_time(
    tmp_path: Path, journalist_key: JournalistKey
) -> None:
    """Three submissions between two scheduled times: at the next one, one e-mail (STARTTLS,
    AUTH) to the account with an address and one json:// notice (after one refused delivery,
    retried) to the account with a URL; none to a disabled account or one turned off; nothing
    more at the following times. No notice holds the pseudonym, the codename, the message or
    a time other than the scheduled one; the log holds neither address nor URL."""
    with SmtpServer(tmp_path) as smtp, JsonReceiver(failures=1) as hook:
        instance = tmp_path / "instance"
        setup_cli("init", instance, "--org-name", "Example Gazette")
        setup_cli("recipients", "add", instance, journalist_key.recipient)
        for name in ("alice", "bob", "carol", "dave"):
            setup_cli("user", "add", instance, name)
        setup_cli("user", "notify", instance, "alice", "--email", "alice@example.org")
        # URLs need the operator's allow_urls (the server below gets it too).
        allowed = cli_in_process(
            "user",
            "notify",
            instance,
            "bob",
            "--url",
            hook.url,
            env={"SEALDROP_NOTIFICATIONS_ALLOW_URLS": "true"},
        )
        assert allowed.returncode == 0, allowed.stderr
        setup_cli("user", "notify", instance, "carol", "--email", "carol@example.org")
        setup_cli("user", "disable", instance, "carol")
        setup_cli("user", "notify", instance, "dave", "--email", "dave@example.org")
        setup_cli("user", "notify", instance, "dave", "--off")
        server_tmp = tmp_path / "server-tmp"
        server_tmp.mkdir()
        server = start_server(
            instance, server_tmp, **smtp.server_settings(INTERVAL), notifications_allow_urls="true"
        )
        try:
            source = Source(server.url)
            codename = source.start()
            just_after_a_scheduled_time()
            started = time.time()
            for n in range(3):
                assert source.submit(f"{MESSAGE} {n}").status_code == 303
            assert time.time() - started < INTERVAL - 1, "submissions straddled a time"
            assert smtp.messages == []
            assert hook.bodies == []

            assert wait_for(lambda: len(smtp.messages) >= 1 and len(hook.bodies) >= 1, 3 * INTERVAL)
            time.sleep(2 * INTERVAL)  # the following times: nothing new, nothing sent
            [mail] = smtp.messages
            [body] = hook.bodies
            assert mail.recipients == ["alice@example.org"]
            assert mail.tls
            assert hook.attempts == 2  # refused once, retried
            sent_at = email.utils.parsedate_to_datetime(mail.message["Date"]).timestamp()
            assert sent_at % INTERVAL == 0
            assert started < sent_at <= started + INTERVAL

            settings = load_settings(instance, env={})
            database = SqlDatabase(settings.database_url)
            with database.engine.connect() as conn:
                [pseudonym] = conn.execute(text("SELECT pseudonym FROM sources")).scalars()
            database.close()
            for sent in (mail.raw.decode("utf-8", "replace"), str(body)):
                assert "Example Gazette" in sent
                for secret in (pseudonym, codename, MESSAGE, "canary"):
                    assert secret not in sent
        finally:
            server.stop()
        log = server.log()
        assert "failed" in log  # the refused delivery was logged …
        for secret in ("alice@example.org", "bob", "127.0.0.1:" + str(hook.port), "secret-token"):
            assert secret not in log  # … without the address, the name or the URL
