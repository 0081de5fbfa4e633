"""The journalist API's wire format: request and response bodies (they are also its OpenAPI
schema), shared by the server (``web.api``) and its client, the reader, which validates every
answer with them.

A leaf: it imports only pydantic and the standard library (an import-linter contract keeps it so),
so the reader can use it while it talks to the server only over HTTP.

Some response fields carry checks that the OpenAPI document does not spell out (validators add
no JSON schema): ids and digests the reader turns into file names must have their exact form (a
hostile server must not name ``../../.bashrc``), counters are never negative, and a file's
metadata is valid base64. The server's own answers always pass them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# An age recipient: X25519 ("age1" and 58 characters of the bech32 alphabet) or hybrid
# post-quantum mlkem768x25519 ("age1pq1" and 1,952: a 1,216-byte key and the checksum).
AGE_RECIPIENT = r"^age1(?:[ac-hj-np-z02-9]{58}|pq1[ac-hj-np-z02-9]{1952})$"
AGE_RECIPIENT_MAX = 1959
_ID = re.compile(r"[0-9a-f]{32}")
# A content digest, "ALGORITHM:HEX" (the form of sealdrop.digests.FORM, which this leaf does not
# import; tests/unit/test_digests.py holds the two together), or "" for an item stored before
# digests were kept (instances older than migration 0003).
_DIGEST = re.compile(r"(?:(?:blake3|sha256):[0-9a-f]{64})?")


def _id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError("malformed id")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError("malformed digest")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("negative")
    return value


def _base64(value: str | None) -> str | None:
    if value is not None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("malformed base64") from None
    return value


# Validators only, not ``pattern``/``ge``: the published OpenAPI document stays as it was.
Id = Annotated[str, AfterValidator(_id)]
Digest = Annotated[str, AfterValidator(_digest)]
Count = Annotated[int, AfterValidator(_not_negative)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable code, e.g. not_found")
    message: str = Field(description="A human explanation")


class ErrorBody(BaseModel):
    error: ErrorDetail


# Usernames: only a bound on the size here. What makes a name (spaces around it dropped, lower
# case, 1-64 of a-z 0-9 . _ -) is one rule in services.accounts, shared with the CLI, so that
# " Alice " and "ALICE" reach the same account through every entry point.
USERNAME_FIELD_MAX = 128


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=USERNAME_FIELD_MAX)
    passphrase: str = Field(min_length=1, max_length=1024)
    totp: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class TokenResponse(BaseModel):
    token: str
    expires_at: int = Field(description="Unix time after which the token is refused")


class DeviceKey(BaseModel):
    id: str
    public_key: str
    name: str


class NewDeviceKey(Strict):
    public_key: str = Field(min_length=10, max_length=AGE_RECIPIENT_MAX, pattern=AGE_RECIPIENT)
    name: str = Field(default="", max_length=200)


class User(BaseModel):
    id: str
    username: str
    role: Literal["admin", "journalist"]
    disabled: bool


class Me(User):
    keys: list[DeviceKey]


class NewUser(Strict):
    username: str = Field(
        min_length=1,
        max_length=USERNAME_FIELD_MAX,
        description="1-64 characters of a-z, 0-9, '.', '_', '-' (starting with a letter or"
        " digit) once surrounding spaces are dropped and letters lower-cased",
    )
    role: Literal["admin", "journalist"] = "journalist"


class CreatedUser(BaseModel):
    user: User
    passphrase: str = Field(description="Shown once; give it to the journalist in person")
    totp_uri: str = Field(description="otpauth:// URI for an authenticator app; shown once")


class Enrolment(BaseModel):
    totp_uri: str


class Source(BaseModel):
    id: Id
    pseudonym: str
    reply_key: str = Field(description="age recipient to encrypt replies to")
    starred: bool
    version: Count = Field(description="Change counter; use as updated_since to sync changes")
    created_day: dt.date | None
    submissions: Count
    unread: Count = Field(description="Submissions the caller has not marked seen")
    # Defaults: an answer of a server older than triage still reads as "nobody, no labels".
    assignee: str | None = Field(
        default=None, description="Username of the account the source is assigned to, or null"
    )
    labels: list[str] = Field(
        default_factory=list, description='Triage labels, sorted ignoring case ("spam" hides it)'
    )
    # Default: an answer of a server older than retention reads as "not on hold".
    hold: bool = Field(
        default=False, description="On hold: exempt from the retention rules (see operator.md)"
    )


class SourcePage(BaseModel):
    sources: list[Source]
    next: int | None = Field(description="updated_since for the next page; null at the end")


class Item(BaseModel):
    id: Id
    source_id: Id
    seq: Count = Field(description="Order within the conversation")
    kind: Literal["message", "file", "reply"]
    arrival_day: dt.date | None
    size: Count = Field(description="Ciphertext bytes")
    digest: Digest = Field(
        description='The ciphertext\'s content digest, also its ETag: "blake3:" and 64 hex digits, '
        'or "sha256:" and 64 for items stored before BLAKE3; "" if never computed'
    )
    seen: bool
    metadata: Annotated[str | None, AfterValidator(_base64)] = Field(
        default=None, description="Files: base64 of an age file holding name, type and size"
    )
    author: str | None = Field(default=None, description="Replies: the journalist who sent it")

    def metadata_bytes(self) -> bytes | None:
        """The metadata age file (files only), decoded."""
        return base64.b64decode(self.metadata, validate=True) if self.metadata else None


class Items(BaseModel):
    items: list[Item]


class StarRequest(Strict):
    starred: bool


class HoldRequest(Strict):
    hold: bool


class AssigneeRequest(Strict):
    username: str | None = Field(
        max_length=USERNAME_FIELD_MAX, description="An enabled account's username, or null"
    )


# Only bounds here; the label rules (1-32 characters once normalised, no invisible characters,
# unique ignoring case, at most 20) are checked by services.triage and refused with 422.
class LabelsRequest(Strict):
    labels: list[Annotated[str, Field(max_length=200)]] = Field(
        max_length=100, description="The source's whole new set of labels"
    )


class Journalist(BaseModel):
    username: str


class Journalists(BaseModel):
    journalists: list[Journalist]


class SeenRequest(Strict):
    ids: list[str] = Field(max_length=1000)


class SeenResponse(BaseModel):
    marked: int


class Recipient(BaseModel):
    id: str
    public_key: str
    name: str


class NewRecipient(Strict):
    public_key: str = Field(min_length=10, max_length=AGE_RECIPIENT_MAX, pattern=AGE_RECIPIENT)
    name: str = Field(default="", max_length=200)


class Recipients(BaseModel):
    recipients: list[Recipient]


class ReplyKeys(BaseModel):
    keys: list[str] = Field(
        description=(
            "age recipients a reply must also be encrypted to, besides the source's reply_key: "
            "the organisation recipients and every active journalist's device keys"
        )
    )
    post_quantum: bool = Field(
        default=False,
        description=(
            "whether the instance is post-quantum (crypto.post_quantum): every key above is then "
            "a hybrid age1pq1… key, and a reader registers and encrypts to that kind only"
        ),
    )


class InstanceSettings(BaseModel):
    accepting_submissions: bool
    files_enabled: bool
    max_upload_bytes: int
    max_message_chars: int


class SettingsChange(Strict):
    accepting_submissions: bool | None = None
    files_enabled: bool | None = None
    max_upload_bytes: int | None = Field(default=None, ge=1024, le=1 << 40)
    max_message_chars: int | None = Field(default=None, ge=1, le=10_000_000)


class AuditEntry(BaseModel):
    id: int
    day: dt.date
    username: str
    action: str
    source: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next: int | None


class Users(BaseModel):
    users: list[User]


# Notices of new activity (services/notifications.py). The languages are those of the source
# interface; a test checks that the lists agree.
NoticeLanguage = Literal[
    "en",
    "ar",
    "es",
    "fa",
    "ru",
    "tr",
    "zh_Hans",
    "zh_Hant",
    "ug",
    "bo",
    "uk",
    "be",
    "vi",
    "my",
    "km",
    "ko",
    "fr",
    "de",
    "pt_BR",
    "hi",
    "ur",
    "id",
    "ps",
    "am",
]
NOTICE_LANGUAGES: tuple[str, ...] = get_args(NoticeLanguage)


class Notifications(BaseModel):
    channel: Literal["email", "apprise", "off"]
    email: str | None = Field(description="The address, when notices go by e-mail")
    url_scheme: str | None = Field(
        description="Of an Apprise URL only its scheme (e.g. ntfys): the rest may hold a token"
    )
    language: str


class NotificationChange(Strict):
    channel: Literal["email", "apprise", "off"]
    email: str | None = Field(default=None, max_length=254, description="With channel email")
    url: str | None = Field(default=None, max_length=2000, description="With channel apprise")
    language: NoticeLanguage | None = Field(
        default=None, description="Of the notices; omitted: unchanged (new: the instance's)"
    )
