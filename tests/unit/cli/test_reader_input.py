"""sealdrop.cli.reader_input: how the reader's commands ask for secrets."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import pytest
import typer

from sealdrop.cli import reader_input


@pytest.mark.parametrize(
    ("ask", "option"),
    [
        (lambda: reader_input.ask_identity_passphrase(None), "--identity-passphrase-file"),
        (
            lambda: reader_input.ask_identity_passphrase(None, new=True),
            "--identity-passphrase-file",
        ),
        (lambda: reader_input.credentials(None, "123456"), "--passphrase-file"),
    ],
    ids=["identity", "new-identity", "account"],
)
def test_without_a_terminal_a_secret_is_refused_not_read_in_the_clear(
    monkeypatch: pytest.MonkeyPatch, ask: Callable[[], object], option: str
) -> None:
    """With stdin not a terminal (a pipe, a script), asking for a passphrase is refused with the
    option that reads it from a file: no GetPassWarning, and nothing is read from stdin (getpass
    would read it there with echo on)."""
    stdin = io.StringIO("secret typed into a pipe\n")
    monkeypatch.setattr("sys.stdin", stdin)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a GetPassWarning would fail here
        with pytest.raises(typer.BadParameter) as refused:
            ask()
    assert refused.value.param_hint == option
    assert "no terminal" in str(refused.value)
    assert stdin.tell() == 0  # not a byte of the pipe was read
