"""The journalist's age identity, kept in a passphrase-encrypted identity file.

The file is a standard age file (scrypt recipient) whose plaintext is exactly what ``age-keygen``
writes, so the journalist never depends on Sealdrop to reach their key: ``age -d FILE`` prints it
after asking for the passphrase, and ``age -d -i FILE blob.age`` uses it directly (age accepts
passphrase-encrypted identity files). The private key is generated here and never leaves this
machine (invariant 2); only the ``age1…`` public key goes to the server. Because the public key is
inside the ciphertext, a copy is kept in a sidecar ``.pub`` file, readable without the passphrase.

The identity is X25519 (``AGE-SECRET-KEY-1…``) or, for a post-quantum instance, hybrid
ML-KEM-768 + X25519 (``AGE-SECRET-KEY-PQ-1…``, public ``age1pq1…``); files of either kind load,
so identity files made before post-quantum keys existed keep working. Stock age ≥ 1.3 reads a
hybrid identity file; Debian's age 1.1.1 does not know the key type.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from sealdrop.crypto.envelope import check_age_structure
from sealdrop.crypto.keys import (
    Identity,
    generate_identity,
    parse_identity,
    parse_recipient,
    recipient_of,
)
from sealdrop.crypto.passphrase import decrypt_with_passphrase, encrypt_with_passphrase
from sealdrop.errors import (
    DecryptionError,
    ExcessiveWork,
    IdentityBusy,
    IdentityExists,
    IdentityFileError,
    InvalidKeyError,
    ReaderError,
    WeakPassphrase,
    WrongPassphrase,
)
from sealdrop.reader.private_files import write_private

__all__ = [
    "MIN_PASSPHRASE_LENGTH",
    "create_identity",
    "identity_file_text",
    "load_identity",
    "public_key",
    "public_key_path",
]

# Offline guessing against a stolen identity file costs one scrypt (~1 s) per guess; 12 characters
# is the floor below which that stops being enough.
MIN_PASSPHRASE_LENGTH = 12
# A real identity file is a few hundred bytes; refuse to slurp anything much bigger.
_MAX_IDENTITY_FILE = 64 * 1024
_PUBLIC_KEY_COMMENT = "# public key: "


def public_key_path(path: Path) -> Path:
    """The sidecar holding the public key of the identity file ``path`` (``identity.pub``)."""
    return path.with_suffix(".pub")


def identity_file_text(identity: Identity, created: datetime) -> str:
    """The identity in the text format ``age-keygen`` writes (and ``age -i`` reads)."""
    return (
        f"# created: {created.isoformat(timespec='seconds')}\n"
        f"{_PUBLIC_KEY_COMMENT}{recipient_of(identity)}\n"
        f"{identity}\n"
    )


def create_identity(path: Path, passphrase: str, post_quantum: bool = False) -> str:
    """Generate a new age identity (hybrid with ``post_quantum``), store it at ``path`` under
    ``passphrase``; return its public key (``age1…`` or ``age1pq1…``).

    ``path`` (mode 0600) is written atomically and never overwritten: IdentityExists if something
    is already there. The sidecar ``public_key_path(path)`` (mode 0644) is written first, so that
    the identity file appearing is the commit point; on failure nothing new is left behind.
    """
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise WeakPassphrase(MIN_PASSPHRASE_LENGTH)
    pub_path = public_key_path(path)
    if pub_path == path:
        raise ReaderError("the identity file must not end in .pub (that name is its public key)")
    if path.exists() or path.is_symlink():
        raise IdentityExists(f"an identity file already exists at {path}")
    identity = generate_identity(post_quantum=post_quantum)
    public = str(recipient_of(identity))
    # The secret key exists in clear only in this process's memory: it is encrypted before any
    # byte reaches the disk (no plaintext temp file that could survive a crash or be undeleted).
    text = identity_file_text(identity, datetime.now().astimezone())
    ciphertext = encrypt_with_passphrase(text.encode("ascii"), passphrase)
    write_private(pub_path, f"{public}\n".encode("ascii"), mode=0o644)
    try:
        write_private(path, ciphertext, replace=False)
    except FileExistsError:
        with contextlib.suppress(OSError):
            pub_path.unlink()
        raise IdentityExists(f"an identity file already exists at {path}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            pub_path.unlink()
        raise
    return public


def load_identity(path: Path, passphrase: str) -> Identity:
    """The identity stored at ``path``; WrongPassphrase if ``passphrase`` does not open it.

    Read-only: nothing on disk changes, whatever happens. IdentityFileError if the file is
    missing, not an age passphrase file, or does not hold exactly one age identity (X25519 or
    hybrid).
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_IDENTITY_FILE + 1)
    except FileNotFoundError:
        raise IdentityFileError(f"no identity file at {path}") from None
    except OSError as exc:
        raise IdentityFileError(f"cannot read the identity file {path}: {exc.strerror}") from None
    if len(data) > _MAX_IDENTITY_FILE:
        raise IdentityFileError(f"{path} is too large to be an identity file")
    problem = check_age_structure(data)
    if problem is not None:
        raise IdentityFileError(f"{path} is not an encrypted identity file ({problem})")
    if b"\n-> scrypt " not in data.split(b"\n--- ", 1)[0]:
        raise IdentityFileError(f"{path} is an age file, but not passphrase-encrypted")
    try:
        plaintext = decrypt_with_passphrase(data, passphrase)
    except ExcessiveWork as exc:
        # The passphrase was not tried: saying it is wrong would send the journalist hunting for
        # a typo in a right one.
        raise IdentityBusy(
            f"the identity file was not opened, and the passphrase not tried: {exc}; try again "
            "when the computer is less busy"
        ) from None
    except DecryptionError:
        # age cannot tell a wrong passphrase from a damaged header: both fail the same check.
        raise WrongPassphrase(
            "the passphrase does not open the identity file (or the file is damaged)"
        ) from None
    identity = _parse_identity_text(plaintext, path)
    _check_sidecar(path, identity)
    return identity


def public_key(path: Path) -> str:
    """The public key (``age1…`` or ``age1pq1…``) of the identity file ``path``, read from its
    sidecar (no passphrase needed). IdentityFileError if the sidecar is missing or malformed."""
    pub_path = public_key_path(path)
    try:
        text = pub_path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise IdentityFileError(f"no public key file at {pub_path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityFileError(f"cannot read the public key file {pub_path}: {exc}") from None
    try:
        return str(parse_recipient(text))
    except InvalidKeyError:
        raise IdentityFileError(f"{pub_path} does not hold an age public key") from None


def _parse_identity_text(plaintext: bytes, path: Path) -> Identity:
    # Messages never quote the plaintext: it is a private key, even when mangled.
    try:
        text = plaintext.decode("ascii")
    except UnicodeDecodeError:
        raise IdentityFileError(f"{path} does not hold an age identity") from None
    keys = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(keys) != 1:
        raise IdentityFileError(f"{path} must hold exactly one age identity, not {len(keys)}")
    try:
        identity = parse_identity(keys[0])
    except InvalidKeyError:
        raise IdentityFileError(f"{path} does not hold a valid age identity") from None
    return identity


def _check_sidecar(path: Path, identity: Identity) -> None:
    # The sidecar is what gets registered with the server: if someone swapped it, submissions
    # would be encrypted to their key. Refuse loudly rather than keep working with a forged one.
    pub_path = public_key_path(path)
    if not pub_path.exists():
        return
    if public_key(path) != str(recipient_of(identity)):
        raise IdentityFileError(f"{pub_path} does not match the identity in {path}")
