"""The one exception tree of Sealdrop.

Errors carry data, never HTTP status codes: the web edge maps them to responses in a single table
(``sealdrop.web.errors``), the CLI maps them to exit messages.

    SealdropError
    ├── ConfigError                 instance missing, bad TOML, unknown key, bad value
    │   └── MixedRecipientKinds     hybrid (post-quantum) and X25519 recipients for one file
    ├── CryptoError
    │   ├── InvalidKeyError         an age recipient/identity string that does not parse
    │   ├── DecryptionError         wrong key, or ciphertext altered or truncated
    │   │   ├── NoIdentityMatches   none of the identities opens any recipient stanza
    │   │   ├── MalformedHeader     the age header breaks the format (or a stanza its type's rules)
    │   │   ├── HeaderMacMismatch   a file key was found but the header MAC does not verify
    │   │   └── DamagedPayload      a payload chunk fails, or the STREAM ends wrongly
    │   └── ExcessiveWork           a passphrase file's scrypt cost above what age agrees to run
    ├── StorageError
    │   ├── BlobNotFound
    │   ├── StorageFull             the disk (or quota) ran out while writing
    │   ├── DatabaseUnavailable     the DB cannot be reached or stays locked
    │   └── SchemaTooNew(database, code)  the DB is at a migration this code does not know
    ├── InputError                  the client sent something we refuse; nothing was stored
    │   ├── InvalidCodename
    │   ├── EmptySubmission
    │   ├── MessageTooLong(limit)
    │   ├── UploadTooLarge(limit)
    │   ├── UploadQuotaExceeded(limit, retry_after)  one source's uploads in 24 h
    │   ├── MalformedUpload
    │   ├── TooManyItems(limit)     more parts in one upload than it may hold
    │   ├── DuplicateMessage        a second message field in one upload
    │   ├── FilesNotAccepted        a file sent while the instance accepts messages only
    │   ├── CsrfTokenInvalid        a form without the token of the session that served it
    │   ├── InvalidReply            a reply that is not an age file, or too large
    │   ├── InvalidAssignee         an assignee that is not an enabled account
    │   ├── InvalidLabels           triage labels that break the label rules
    │   └── WrongKeyKind            a classic age1… key offered to a post-quantum instance
    ├── NotFound                    no such item for the asker (or not theirs: same answer)
    ├── AuthenticationFailed        journalist login or token refused (never says which factor)
    ├── PermissionDenied            authenticated, but the role does not allow this
    ├── Conflict                    the change contradicts existing state (duplicate name, …)
    ├── TooManyRequests(retry_after)  a rate or concurrency limit was hit; try again later
    ├── NotAcceptingSubmissions     no recipients configured (or intake switched off)
    ├── SessionRequired             no session, or it expired, or it does not open
    ├── ClientDisconnected          the client went away mid-request
    ├── TorError                    the managed tor cannot start, or its files are not usable
    ├── DeliveryFailed              a notice to a journalist was not delivered (retried later)
    │   └── NotDeliverable          … and cannot be as configured (not retried in that slot)
    ├── BackupError                 a backup file that is not one, or a restore that fails its check
    └── ReaderError                 the journalist's local app (`sealdrop reader`) failed
        ├── IdentityFileError       the identity file is missing, unreadable or damaged
        ├── IdentityExists          an identity file is already there; never overwritten
        ├── WeakPassphrase(min_length)  a new identity passphrase that is too short
        ├── WrongPassphrase         the identity file does not open with this passphrase
        ├── IdentityBusy            this computer timed itself too slow for the file's work factor
        ├── ExportError             a decrypted file could not be exported
        ├── NotInitialised          the data folder has no reader set up (`reader init`)
        ├── NotCached               an item's verified ciphertext is not in the local cache
        ├── NotHere                 no such source or item in the local copy
        └── RemoteError             the conversation with the server went wrong
            ├── ServerUnreachable   the server (or the proxy) cannot be reached, or broke off
            ├── TokenExpired        no token, or the server refused it: log in again
            ├── LoginRefused        username, passphrase or TOTP code refused
            ├── Corrupted(expected, actual)  downloaded ciphertext with another SHA-256
            ├── ProtocolViolation   an answer that is not what the API promises
            ├── NotAnApi            the URL answers, but not as the journalist API
            └── ApiError(status, code, message)  any other error answer of the API
                └── RemoteNotFound  404: the item or source is gone
"""

from __future__ import annotations


class SealdropError(Exception):
    """Root of every error Sealdrop raises on purpose."""


class ConfigError(SealdropError):
    """The instance or its configuration is missing or invalid."""


class MixedRecipientKinds(ConfigError):
    """Post-quantum hybrid (``age1pq1…``) and classic X25519 (``age1…``) recipients together.

    The age format's rule: a file encrypted to both kinds is only as strong as the classic one, so
    a "post-quantum" file that an X25519 key also opens is not post-quantum at all. Refused, never
    silently narrowed to one kind.
    """


class CryptoError(SealdropError):
    """A cryptographic operation failed."""


class InvalidKeyError(CryptoError):
    """A key string (age recipient or identity) does not parse."""


class TorError(SealdropError):
    """Sealdrop's own tor could not be started or controlled, or its files are not usable."""


class DeliveryFailed(SealdropError):
    """A notice to a journalist was not delivered. Its message never holds the address, the
    URL or the relay's answer (which may quote the address)."""


class NotDeliverable(DeliveryFailed):
    """A notice cannot go out as the server is configured (no mail relay, URLs turned off, a
    relay login without its password): retrying before the operator changes that is pointless."""


class BackupError(SealdropError):
    """A backup file holds something a Sealdrop backup never does, or the instance restored from
    it fails its check (a row without its blob, a blob that is not an age file, an unknown
    migration)."""


class DecryptionError(CryptoError):
    """A ciphertext could not be decrypted: wrong key, or altered or truncated data."""


class NoIdentityMatches(DecryptionError):
    """None of the identities given opens any recipient stanza of the file."""


class MalformedHeader(DecryptionError):
    """The age header is not well-formed (or a stanza breaks the rules of its recipient type)."""


class HeaderMacMismatch(DecryptionError):
    """A file key was unwrapped, but the header's MAC does not verify under it."""


class DamagedPayload(DecryptionError):
    """A payload chunk does not authenticate, or the STREAM is truncated or extended.

    Chunks before the damaged one may already have been written: discard all of the output.
    """


class ExcessiveWork(CryptoError):
    """age refused to open a passphrase-encrypted file because its scrypt work factor is above
    the limit age derives from timing this machine (``crypto/passphrase.py``): the passphrase was
    not tried, so it says nothing about whether it is right."""


class StorageError(SealdropError):
    """Persistent storage failed."""


class BlobNotFound(StorageError):
    """No blob is stored under the given key."""


class StorageFull(StorageError):
    """The disk or quota ran out while writing."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, or stayed locked for too long."""


class SchemaTooNew(StorageError):
    """The database is at a migration this code does not know: a newer Sealdrop migrated it.
    Nothing may run on it (old code would misread or damage the newer tables)."""

    def __init__(self, database: str, code: str | None) -> None:
        self.database, self.code = database, code
        super().__init__(
            f"the database is at migration {database}, newer than this version of Sealdrop "
            f"knows (its newest is {code}): upgrade Sealdrop to the version that made it, or "
            "restore the backup taken before that upgrade; nothing was changed"
        )


class InputError(SealdropError):
    """The client sent input that is refused. Nothing was stored."""


class InvalidCodename(InputError):
    """The text given as a codename is not a well-formed codename."""


class EmptySubmission(InputError):
    """A submission with neither a message nor a file."""


class MessageTooLong(InputError):
    """A message longer than the configured limit (in characters)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"message longer than {limit} characters")
        self.limit = limit


class UploadTooLarge(InputError):
    """A request body larger than the configured limit (in bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upload larger than {limit} bytes")
        self.limit = limit


class UploadQuotaExceeded(InputError):
    """One source has uploaded ``limit`` bytes within 24 hours; more after ``retry_after`` s."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"upload quota of {limit} bytes a day reached")
        self.limit = limit
        self.retry_after = retry_after


class MalformedUpload(InputError):
    """A request body that is not the multipart form we expect."""


class TooManyItems(InputError):
    """An upload with more than ``limit`` parts (the message and the files together)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} items in one upload")
        self.limit = limit


class DuplicateMessage(InputError):
    """An upload with more than one message field (the form has one)."""


class FilesNotAccepted(InputError):
    """A file was sent while the instance accepts messages only."""


class CsrfTokenInvalid(InputError):
    """A form was posted without the anti-forgery token of the session that served it."""


class InvalidReply(InputError):
    """A reply that is not a well-formed age file, or is over the size limit."""


class InvalidAssignee(InputError):
    """A source assigned to a name that is not an enabled account (unknown or disabled)."""


class InvalidLabels(InputError):
    """Triage labels that break the rules: empty or too long, an invisible character, a label
    repeated (ignoring case), too many on one source."""


class WrongKeyKind(InputError):
    """A key of the other kind than the instance's (``crypto.post_quantum``): encrypting to it
    alongside the instance's keys would mix classic and hybrid recipients in one file, which
    leaves the classic key as a door a quantum computer opens."""


class NotFound(SealdropError):
    """No such item for the asker. Also raised for items that exist but belong to someone else,
    so that the answer never confirms another source's item exists."""


class AuthenticationFailed(SealdropError):
    """A journalist login or bearer token was refused. The message never says which factor."""


class PermissionDenied(SealdropError):
    """The caller is authenticated but their role does not allow the action."""


class Conflict(SealdropError):
    """The change contradicts existing state (a duplicate username, the last admin, …)."""


class TooManyRequests(SealdropError):
    """A rate or concurrency limit was reached; the client may retry after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after} s")
        self.retry_after = retry_after


class NotAcceptingSubmissions(SealdropError):
    """Submissions cannot be accepted now (no recipient to encrypt to)."""


class SessionRequired(SealdropError):
    """The request needs a live source session and has none (absent, expired or forged)."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("session expired" if expired else "no session")
        self.expired = expired


class ClientDisconnected(SealdropError):
    """The client closed the connection before the request was complete."""


class ReaderError(SealdropError):
    """The journalist's local app failed; nothing it guards was changed on disk."""


class IdentityFileError(ReaderError):
    """The journalist's identity file is missing, unreadable or damaged."""


class IdentityExists(ReaderError):
    """An identity file already exists at that path; it is never overwritten (it may be the only
    key that opens years of submissions)."""


class WeakPassphrase(ReaderError):
    """A passphrase for a new identity file that is shorter than ``min_length`` characters."""

    def __init__(self, min_length: int) -> None:
        super().__init__(f"the passphrase must have at least {min_length} characters")
        self.min_length = min_length


class WrongPassphrase(ReaderError):
    """The identity file does not open with the passphrase given (or its header is damaged)."""


class IdentityBusy(ReaderError):
    """The identity file was not opened because this computer timed itself as too slow for the
    file's passphrase work factor (usually: it is busy); the passphrase was not tried."""


class ExportError(ReaderError):
    """A decrypted file could not be exported (destination unusable, mat2 missing, …)."""


class NotInitialised(ReaderError):
    """The data folder has no configuration: ``sealdrop reader init`` has not been run."""


class NotCached(ReaderError):
    """The item's ciphertext is not in the local cache (not synced yet, or corrupted)."""


class NotHere(ReaderError):
    """No such source or item in the reader's local copy (not synced yet, or deleted)."""


class RemoteError(ReaderError):
    """The reader's conversation with the server went wrong."""


class ServerUnreachable(RemoteError):
    """The server (or the proxy in front of it) could not be reached, or the connection broke."""


class TokenExpired(RemoteError):
    """No token, or the server refused it (expired or revoked): log in again."""


class LoginRefused(RemoteError):
    """The server refused the username, passphrase or TOTP code (it never says which)."""


class Corrupted(RemoteError):
    """Downloaded ciphertext whose content digest is not the one the server announced."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"ciphertext digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class ProtocolViolation(RemoteError):
    """The server answered something that is not what the API promises."""


class NotAnApi(RemoteError):
    """The URL answers, but not as a Sealdrop journalist API (say, the source interface)."""


class ApiError(RemoteError):
    """Any other error answer of the API: its status and stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class RemoteNotFound(ApiError):
    """404: the item or source does not exist (any more)."""
