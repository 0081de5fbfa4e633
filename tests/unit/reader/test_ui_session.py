"""Where the reader's "log in again" form sends the browser afterwards: only a page of the
interface itself, never another site (an open redirect)."""

from __future__ import annotations

import pytest

from sealdrop.reader.ui_session import local_path


@pytest.mark.parametrize(
    "wanted", ["/", "/sources/0123abcd", "/sources/0123abcd#reply", "/admin", "/items/ab/preview"]
)
def test_a_page_of_the_interface_is_where_the_login_goes_back(wanted: str) -> None:
    """The interface's own paths are kept."""
    assert local_path(wanted) == wanted


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",  # a browser drops the tab: //evil.example/
        "/\n/evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        "",
        "sources/x",
    ],
)
def test_anything_else_goes_back_to_the_inbox(hostile: str) -> None:
    """Protocol-relative, backslash, whitespace-smuggled and absolute addresses become /."""
    assert local_path(hostile) == "/"
