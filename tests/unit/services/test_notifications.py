"""Where an account's notices go (services/notifications.py) and what they say
(services/notice_text.py): checks before anything is stored, errors that repeat no address or
token, and a text in every language."""

from __future__ import annotations

import string
import typing

import pytest
from support_accounts import AccountsEnv

from sealdrop import wire
from sealdrop.config import load_settings
from sealdrop.errors import InputError, NotFound
from sealdrop.ids import UserId, new_id
from sealdrop.services.notice_text import LANGUAGES, TEXTS, notice
from sealdrop.services.notifications import NotificationService
from sealdrop.web.i18n import LANGUAGES as SOURCE_LANGUAGES

TOKEN = "tk_9f8e7d6c5b4a"


def test_every_language_of_the_source_interface_has_every_notice_text() -> None:
    """The notice catalog, the API's language list and the setting's choices are exactly the
    source interface's languages, and each text is filled in with the organisation only."""
    assert set(LANGUAGES) == set(SOURCE_LANGUAGES)
    assert set(typing.get_args(wire.NoticeLanguage)) == set(SOURCE_LANGUAGES)
    for language, text in TEXTS.items():
        for template in (text.subject, text.activity, text.empty):
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            assert fields == {"organisation"}, (language, template)
        assert len({text.activity, text.empty}) == 2, language
        if language != "en":
            assert text.activity != TEXTS["en"].activity, language  # translated


def test_a_notice_is_the_same_whatever_the_activity_but_for_its_body() -> None:
    """The subject (what a mailbox list or a lock screen shows) does not say whether there is
    activity; the body does."""
    yes, no = notice("fa", "Org", activity=True), notice("fa", "Org", activity=False)
    assert yes.subject == no.subject
    assert yes.body != no.body
    assert "Org" in yes.body


def test_an_account_gets_an_email_target_in_the_instance_language(
    accounts_env: AccountsEnv,
) -> None:
    """An e-mail address is stored and shown back to its account; the language defaults to the
    instance's; turning notices off deletes the address."""
    user = accounts_env.account().user.id
    service = accounts_env.services.notifications
    assert service.get(user).channel == "off"
    view = service.set(user, "email", "test", address="alice@example.org")
    assert (view.channel, view.email, view.language) == ("email", "alice@example.org", "en")
    assert (
        service.set(user, "email", "test", address="a@example.org", language="tr").language == "tr"
    )
    assert service.set(user, "off", "test").channel == "off"
    with accounts_env.db.transaction() as repos:
        assert repos.notifications.get(user) is None


@pytest.mark.parametrize(
    "address",
    ["", "alice", "alice@", "a b@example.org", "alice@example.org\r\nBcc: x@y.org", "x@localhost"],
)
def test_an_address_that_is_not_one_is_refused(accounts_env: AccountsEnv, address: str) -> None:
    """What cannot be one e-mail address (no domain, spaces, a header injected) is refused and
    nothing is stored."""
    user = accounts_env.account().user.id
    with pytest.raises(InputError):
        accounts_env.services.notifications.set(user, "email", "test", address=address)
    assert accounts_env.services.notifications.get(user).channel == "off"


@pytest.mark.parametrize(
    "url", [f"nonsense://host/{TOKEN}", f"http://host/{TOKEN}", f"json://host/\x07{TOKEN}"]
)
def test_an_apprise_url_apprise_cannot_use_is_refused_without_repeating_it(
    accounts_env: AccountsEnv, url: str
) -> None:
    """A URL Apprise cannot parse is an InputError whose message holds no part of the URL (its
    token above all)."""
    user = accounts_env.account().user.id
    with pytest.raises(InputError) as caught:
        accounts_env.services.notifications.set(user, "apprise", "test", address=url)
    assert TOKEN not in str(caught.value)


def test_an_apprise_target_shows_only_its_scheme(accounts_env: AccountsEnv) -> None:
    """An Apprise URL is shown back as its scheme only; the token stays in the database."""
    user = accounts_env.account().user.id
    view = accounts_env.services.notifications.set(
        user, "apprise", "test", address=f"ntfys://ntfy.example.org/{TOKEN}"
    )
    assert (view.channel, view.url_scheme, view.email) == ("apprise", "ntfys", None)
    assert TOKEN not in repr(view)


def test_a_language_that_is_not_offered_and_an_unknown_account_are_refused(
    accounts_env: AccountsEnv,
) -> None:
    """A language outside the catalog is an InputError; an unknown account is NotFound."""
    user = accounts_env.account().user.id
    service = accounts_env.services.notifications
    with pytest.raises(InputError):
        service.set(user, "email", "test", address="a@example.org", language="xx")
    with pytest.raises(NotFound):
        service.set(UserId(new_id()), "email", "test", address="a@example.org")
    with pytest.raises(NotFound):
        service.get(UserId("not-an-id"))


def test_apprise_urls_are_refused_unless_the_operator_allows_them(
    accounts_env: AccountsEnv,
) -> None:
    """With `[notifications] allow_urls` off (the default), setting an Apprise URL is refused and
    nothing is stored: a URL would make the server connect to a host the account chose, which
    learns the server's IP address. E-mail stays possible."""
    user = accounts_env.account().user.id
    settings = load_settings(accounts_env.root, env={})
    assert settings.notify_allow_urls is False
    service = NotificationService(
        accounts_env.db, accounts_env.services.audit, "en", allow_urls=False
    )
    with pytest.raises(InputError, match="allow_urls"):
        service.set(user, "apprise", "test", "json://127.0.0.1:9/notify")
    with accounts_env.db.transaction() as repos:
        assert repos.notifications.get(user) is None
    assert service.set(user, "email", "test", "ann@example.org").channel == "email"
