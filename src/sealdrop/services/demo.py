"""A throwaway journalist identity for the demo instance (never for real use)."""

from __future__ import annotations

from sealdrop.crypto.keys import generate_identity, recipient_of


def new_demo_identity() -> tuple[str, str]:
    """(secret identity string, public recipient string)."""
    identity = generate_identity()
    return str(identity), str(recipient_of(identity))
