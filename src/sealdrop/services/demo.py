"""A throwaway journalist identity for the demo instance (never for real use)."""

from __future__ import annotations

from pathlib import Path

from sealdrop.crypto.keys import generate_identity, recipient_of

# Written beside the demo's instance folder (DIR/instance), with its public key in a comment.
IDENTITY_FILE = "journalist-identity.DEMO-ONLY.txt"
_PUBLIC_KEY_LINE = "# public key: "


def new_demo_identity() -> tuple[str, str]:
    """(secret identity string, public recipient string)."""
    identity = generate_identity()
    return str(identity), str(recipient_of(identity))


def demo_identity_text(identity: str, recipient: str) -> str:
    """The demo identity file: age's identity format, with the public key in a comment."""
    return (
        "# DEMO ONLY: a real journalist key never lives on the server.\n"
        f"{_PUBLIC_KEY_LINE}{recipient}\n{identity}\n"
    )


def demo_identity_path(instance_dir: Path) -> Path:
    return instance_dir.parent / IDENTITY_FILE


def demo_recipient(instance_dir: Path) -> str | None:
    """The public key of the demo identity beside this instance, if it is a demo instance.

    Read from the comment `sealdrop demo` writes, so the secret line is never parsed here."""
    try:
        text = demo_identity_path(instance_dir).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith(_PUBLIC_KEY_LINE):
            return line.removeprefix(_PUBLIC_KEY_LINE).strip() or None
    return None
