"""Every setting of sealdrop.toml, declared once: its name (``section.key``, which also gives its
environment variable SEALDROP_<SECTION>_<KEY>), default, kind of value, meaning, and the attribute
of Settings that the code reads.

Loading (``load_settings``), the commented sealdrop.toml that ``sealdrop init`` writes and the
table of docs/configuration.md (``python -m sealdrop.config docs/configuration.md``) all come
from this one declaration. The order of the fields is the order of both documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from stem.descriptor.hidden_service import HiddenServiceDescriptorV3

from sealdrop.config.setting import (
    Secret,
    Setting,
    boolean,
    byte_size,
    days_or_off,
    declaration,
    declared,
    hours_to_seconds,
    https_url,
    in_instance,
    minutes_to_seconds,
    one_of,
    optional_in_instance,
    port,
    positive_int,
    setting,
    smtp_url,
    text,
)
from sealdrop.errors import ConfigError
from sealdrop.storage.blobs import parse_s3_url
from sealdrop.storage.database import sqlite_url_for
from sealdrop.wire import NOTICE_LANGUAGES

DATABASE_FILE = "sealdrop.db"


def _sqlite_file_unless_set(url: str, instance_dir: Path) -> str:
    return url or sqlite_url_for(instance_dir / DATABASE_FILE)


def _one_line_name(name: str, instance_dir: Path) -> str:
    # Shown in every page's header and title: one line, of a length the layout can take.
    return " ".join(name.split())[:100]


def blob_store_url(label: str, value: object) -> str:
    """Empty (the filesystem) or s3://BUCKET/PREFIX."""
    url = text(label, value)
    if url:
        parse_s3_url(url)
    return url


def http_url_or_empty(label: str, value: object) -> str:
    url = text(label, value)
    if url and not url.startswith(("https://", "http://")):
        raise ConfigError(f"{label} must be empty or an http(s):// URL")
    return url


def _without_trailing_slash(url: str, instance_dir: Path) -> str:
    return url.rstrip("/")


def _onion_address(label: str, value: object) -> str:
    """Empty, or a v3 onion address (its checksum checked: a typo would publish this worker's
    introduction points under no reachable front)."""
    address = text(label, value).strip().lower().removesuffix(".onion")
    if not address:
        return ""
    try:
        HiddenServiceDescriptorV3.identity_key_from_address(address)
    except ValueError:
        raise ConfigError(f"{label} must be a v3 onion address (or empty)") from None
    return f"{address}.onion"


def _none_if_empty(value: str, instance_dir: Path) -> str | None:
    return value or None


@declaration
class Settings:
    """An instance's settings, loaded once at the edge (``load_settings``) and never changed."""

    instance_dir: Path
    database_url: str = setting(
        "database.url",
        "",
        text,
        help="SQLAlchemy URL. Empty: SQLite file sealdrop.db in the instance. PostgreSQL: "
        "postgresql+psycopg://user:password@host/db",
        doc="SQLAlchemy URL of the database. Empty: the SQLite file `sealdrop.db` in the instance "
        "folder. PostgreSQL: `postgresql+psycopg://user:password@host/db` (any `postgresql` URL is "
        "accepted; the psycopg driver is always used). Only SQLite and PostgreSQL are supported.",
        finish=_sqlite_file_unless_set,
    )
    blob_dir: Path = setting(
        "storage.blob_dir",
        "store",
        text,
        help="Folder of the filesystem blob store (ciphertext only), relative to the instance.",
        doc="Folder of the filesystem blob store (ciphertext only), relative to the instance "
        "folder (an absolute path is used as is). It holds `blobs/` and `staging/`, which are on "
        "the same filesystem so that the final rename is atomic.",
        finish=in_instance,
    )
    blobs: str = setting(
        "storage.blobs",
        "",
        blob_store_url,
        help="Where blobs live: empty for the filesystem (storage.blob_dir), or "
        '"s3://BUCKET/PREFIX" for S3-compatible object storage (see [s3]).',
        doc="Where the ciphertext blobs live. Empty: the filesystem, `storage.blob_dir`. "
        '`"s3://BUCKET/PREFIX"`: S3-compatible object storage (the `[s3]` settings say where and '
        "who; the secret key goes in `secrets.toml`), which several `serve` workers can share "
        "(see [operator.md](operator.md#blobs-on-s3-compatible-object-storage)). Resumable "
        "uploads in progress are kept under the same prefix.",
    )
    s3_endpoint_url: str = setting(
        "s3.endpoint_url",
        "",
        http_url_or_empty,
        help="URL of the S3-compatible server (e.g. https://s3.example.org). Empty: AWS S3.",
        doc="URL of the S3-compatible server, `https://…` (or `http://` on loopback or a "
        "private network). Empty: Amazon S3 in `s3.region`.",
    )
    s3_region: str = setting(
        "s3.region",
        "",
        text,
        help="The S3 region (e.g. us-east-1). Empty: the client's default.",
        doc="The S3 region the bucket is in (e.g. `us-east-1`); many S3-compatible servers "
        "accept any. Empty: the client library's default.",
    )
    s3_access_key_id: str = setting(
        "s3.access_key_id",
        "",
        text,
        help="The S3 access key id; its secret goes in secrets.toml (s3_secret_access_key).",
        doc='The S3 access key id. Its secret is `s3_secret_access_key = "…"` in '
        "`secrets.toml`, or the environment variable `SEALDROP_S3_SECRET_ACCESS_KEY`, never in "
        "`sealdrop.toml`. Empty (with no secret): the client library's own credential chain "
        "(instance role, `~/.aws`).",
    )
    s3_sweep_after_seconds: int = setting(
        "s3.sweep_after_hours",
        24,
        positive_int,
        help="Unfinished multipart uploads and objects without a row are removed once this old.",
        doc="How old, in hours, an unfinished multipart upload or an object that no row names "
        "must be before a starting worker removes it. Several workers share the store, so a "
        "younger one may be an upload another worker is still receiving or about to record: "
        "keep this above the longest upload (a slow 4 GiB upload over Tor can take hours).",
        finish=hours_to_seconds,
    )
    organisation_name: str = setting(
        "source.organisation_name",
        "Sealdrop",
        text,
        help="The organisation's name, shown on every page of the source interface.",
        doc="The organisation's name, shown in the header and the title of every source page and "
        "in the landing text. Whitespace is collapsed; at most 100 characters are used. `sealdrop "
        "init --org-name NAME` sets it when the instance is made.",
        finish=_one_line_name,
    )
    source_host: str = setting(
        "source.host",
        "127.0.0.1",
        text,
        help="Address the source interface listens on.",
        doc="Address the source interface listens on. Sealdrop serves plain HTTP: keep a loopback "
        "address. `sealdrop serve --host` overrides it.",
    )
    source_port: int = setting(
        "source.port",
        8080,
        port,
        help="TCP port of the source interface.",
        doc="TCP port of the source interface, 1–65535. `sealdrop serve --port` overrides it.",
    )
    public_url: str = setting(
        "source.public_url",
        "",
        https_url,
        help="The https:// address sources use when a TLS reverse proxy serves this listener to "
        "the clearnet (VPN users). When set, responses on it carry HSTS, and Onion-Location once "
        "the source onion address is known.",
        doc="The `https://` address at which a TLS reverse proxy serves the source listener to the "
        "clearnet, for sources who use a VPN rather than Tor (see "
        "[operator.md](operator.md#clearnet-through-a-tls-reverse-proxy)). When set, every "
        "response on the TCP source listener carries `Strict-Transport-Security` and, once the "
        "managed tor has created the source onion, `Onion-Location` pointing at the same page on "
        "the onion. Must start with `https://`; a trailing `/` is dropped. The onion listener "
        "never sends either header.",
        finish=_without_trailing_slash,
    )
    api_host: str = setting(
        "api.host",
        "127.0.0.1",
        text,
        help="Address the journalist API listens on.",
        doc="Address the journalist API listens on (a listener of its own, under `/api/v1`: it "
        "serves no source page, and the source listener serves no API route). It serves plain "
        "HTTP, passphrases and tokens included: keep a loopback address; journalists reach the API "
        "through its onion service (with tor) or, without tor, an SSH tunnel or a VPN; never "
        "expose it publicly (see [operator.md](operator.md#the-journalist-api-listener)). "
        "`sealdrop serve --api-host` overrides it.",
    )
    api_port: int = setting(
        "api.port",
        8081,
        port,
        help="TCP port of the journalist API (never the source interface's port).",
        doc="TCP port of the journalist API, 1–65535. A configuration in which `source.host` and "
        '`source.port` equal `api.host` and `api.port` is refused ("[source] and [api] must not '
        'listen on the same address and port"). `sealdrop serve --api-port` overrides it; `serve` '
        'refuses options that put both listeners on the same address and port too ("the source '
        'interface and the API need different ports").',
    )
    tor_enabled: Literal["auto", "yes", "no"] = setting(
        "tor.enabled",
        "auto",
        one_of("auto", "yes", "no"),
        help="'auto': run the onion services with Sealdrop's own tor when tor is installed; 'yes': "
        "refuse to start without tor; 'no': never start tor (127.0.0.1 only).",
        doc='`"auto"`: `sealdrop serve` runs its own tor (the source onion service and the '
        "journalist API onion service) when the tor program is installed, and otherwise serves on "
        'its TCP listeners only, saying how to install tor. `"yes"`: refuse to start without tor. '
        '`"no"`: never start tor.',
    )
    tor_binary: str = setting(
        "tor.binary",
        "tor",
        text,
        help="The tor program to run (a name on PATH or an absolute path).",
        doc="The tor program: a name looked up on `PATH` or an absolute path. Tor 0.4.8 or newer "
        "is needed (proof-of-work defense).",
    )
    tor_extra_torrc: Path | None = setting(
        "tor.extra_torrc",
        "",
        text,
        help="A file of extra torrc lines for the managed tor (e.g. bridges, or a private test "
        "network); relative to the instance. Empty: none.",
        doc="A file of extra torrc lines that the managed tor includes (with `%include`) after "
        "Sealdrop's general lines and before its two onion services (for example `UseBridges` and "
        "`Bridge` lines when the server itself sits behind a censoring network, or a private test "
        "network's `DirAuthority` lines). Relative paths are relative to the instance folder. "
        "Sealdrop's own onion-service lines cannot be overridden by it; do not put "
        "`HiddenService…` lines in it.",
        finish=optional_in_instance,
    )
    tor_onionbalance_front: str | None = setting(
        "tor.onionbalance_front",
        "",
        _onion_address,
        help="The Onionbalance front address (xyz.onion) this worker's source onion serves "
        "behind (see `sealdrop balance`); empty: none.",
        doc="The address of the Onionbalance front that publishes this worker's introduction "
        "points (`sealdrop balance` makes it and prints it; see "
        "[operator.md](operator.md#one-onion-address-over-several-hosts-onionbalance)). Set the "
        "same value on every worker host: the managed tor then runs the source onion with "
        "`HiddenServiceOnionbalanceInstance 1` and names the front in its `ob_config`, so that it "
        "serves sources who asked for the front address; the clearnet `Onion-Location` header "
        "and the reach kit give the front address. Empty: no front.",
        finish=_none_if_empty,
    )
    circuit_requests_per_minute: int = setting(
        "circuits.requests_per_minute",
        120,
        positive_int,
        help="Requests one Tor circuit may make to the source onion per minute (steady rate); "
        "beyond it that circuit alone gets 429 pages. One Tor Browser tab set = one circuit.",
        doc="Steady request rate one Tor circuit may make to the source onion service. Tor tells "
        "Sealdrop which circuit each connection came over (`HiddenServiceExportCircuitID "
        'haproxy`); a circuit that goes faster gets "Too many attempts" pages (429) while every '
        "other circuit is served as usual. The circuit id is kept only in memory, in a table of at "
        "most 10,000 circuits, and never logged or written anywhere.",
    )
    circuit_burst: int = setting(
        "circuits.burst",
        60,
        positive_int,
        help="Requests one Tor circuit may make in a burst before the rate applies.",
        doc="Requests one circuit may make at once before `circuits.requests_per_minute` applies "
        "(a token bucket, full when the circuit is first seen).",
    )
    head_timeout_seconds: int = setting(
        "connections.head_timeout_seconds",
        30,
        positive_int,
        help="Seconds a client has to send a request's complete headers, counted from connecting "
        "or from the end of the previous response; slower connections are closed.",
        doc="Seconds a client has to send the complete head of a request (request line and "
        "headers), counted from when it connected, and on a kept-alive connection from the end of "
        "the previous response. A connection that sends nothing, or sends its head slowly "
        "(slowloris), is closed at that moment without a response. Time the server spends working "
        "on a request does not count. Applies to every listener (source and API, TCP and onion; on "
        "the source onion the window includes tor's PROXY line).",
    )
    body_timeout_seconds: int = setting(
        "connections.body_timeout_seconds",
        60,
        positive_int,
        help="While a request body arrives, every this many seconds must bring body_min_bytes "
        "bytes, or the connection is closed (a stalled or trickling upload).",
        doc="While a request body (an upload, a form) arrives, each period of this many seconds "
        "must bring at least `connections.body_min_bytes` bytes, or the connection is closed; the "
        "app sees a disconnect and an upload stores nothing. Periods in which the server itself "
        "was not reading (it was busy, all upload slots were taken, or it had not yet answered "
        "`Expect: 100-continue`) do not count.",
    )
    body_min_bytes: int = setting(
        "connections.body_min_bytes",
        1024,
        byte_size,
        help="Bytes of body each body_timeout_seconds must bring.",
        doc="Bytes of request body each `connections.body_timeout_seconds` must bring (1,024 per "
        "60 s by default, about 17 bytes a second: far below any working Tor circuit). `1` turns "
        "the check into a plain idle timeout.",
    )
    max_connections: int = setting(
        "connections.max_per_listener",
        512,
        positive_int,
        help="Open connections one listener accepts; a request on any further connection gets a "
        "short 503 page.",
        doc="Open connections each listener accepts. A request on a connection beyond it is "
        'answered with a short plain-text 503 ("This site is busy", `Retry-After: 60`) and the '
        "connection is closed. `serve` raises its open-file limit (the soft `RLIMIT_NOFILE`, up to "
        "the hard one) to 4 × this + 1,024, so that the caps are reached before the process runs "
        "out of file descriptors.",
    )
    max_upload_bytes: int = setting(
        "limits.max_upload_bytes",
        2 * 1024**3,
        byte_size,
        help="Largest request body a source may send (all files of one submission), in bytes.",
        doc="Largest request body a source may send in one submission, in bytes: all files, the "
        "message and the form encoding together. A larger declared `Content-Length` is refused "
        "before anything is read; a body that grows past the limit is cut off while streaming. "
        'Either way nothing is stored and the source gets a "Too large" page (413). The form shows '
        "this limit. An admin can change it at run time (see [Run-time "
        "settings](#run-time-settings)).",
    )
    max_message_chars: int = setting(
        "limits.max_message_chars",
        100_000,
        positive_int,
        help="Longest message a source may send, in characters.",
        doc="Longest message a source may send, in characters (Unicode code points, after UTF-8 "
        'decoding). Longer messages are refused whole ("Message too long", 400). Also set as the '
        "text box's `maxlength`. An admin can change it at run time (see [Run-time "
        "settings](#run-time-settings)).",
    )
    max_form_bytes: int = setting(
        "limits.max_form_bytes",
        64 * 1024,
        byte_size,
        help="Largest body of any request other than an upload (forms, pages), in bytes.",
        doc="Largest body of any source request other than an upload (`POST /submit`): the start, "
        "confirm, login, logout and delete-reply forms are a few hundred bytes, page requests have "
        "none. A larger declared `Content-Length` is refused before anything is read; a body sent "
        'in chunks is cut off once it passes the limit. Either way the answer is the "Too large" '
        "page (413) and nothing is changed.",
    )
    source_daily_upload_bytes: int = setting(
        "limits.source_daily_upload_bytes",
        10 * 1024**3,
        byte_size,
        help="Most one source may upload in 24 hours, all submissions together, in bytes.",
        doc="The most one source (one codename) may upload in 24 hours, all its submissions "
        "together (the bytes of the message and files it stored). Before its body is read, an "
        "upload sets aside its `Content-Length` (or, without one, the upload limit) out of what is "
        "left after the source's stored uploads and its uploads still in progress, and gives back "
        "what it did not store when it ends; so uploads running at once share the allowance. An "
        'upload that would pass it is refused with "Daily limit reached" (429, with `Retry-After` '
        "until the oldest counted upload is 24 hours old) and stores nothing. Counts are kept in "
        "memory only (a restart forgets them), for at most 100,000 sources. On PostgreSQL they "
        "are kept in the database, shared by every worker, per UTC day (the allowance is renewed "
        "at midnight UTC instead of 24 hours after each upload).",
    )
    arrival_granularity: Literal["day", "none"] = setting(
        "privacy.arrival_granularity",
        "day",
        one_of("day", "none"),
        help="How precisely arrival is recorded: 'day' (the UTC date) or 'none' (not at all).",
        doc='How precisely arrival is recorded: `"day"` stores the UTC date on each source '
        "(`created_day`), each submission and each reply (`arrival_day`), and sources see the day "
        'of each reply and of what they sent; `"none"` stores none of these dates. Any other value '
        "is refused. Changing it affects only what is stored from then on. It does not affect "
        "session times or a new source's `pending_since` (see `sources.pending_purge_hours`), "
        "which are kept in seconds either way, for a limited time.",
    )
    post_quantum: bool = setting(
        "crypto.post_quantum",
        False,
        boolean,
        help="Encrypt to hybrid post-quantum keys (age1pq1…, ML-KEM-768 + X25519) instead of "
        "X25519 keys (age1…). An instance is one or the other; never both in one file.",
        doc="`true`: the instance is post-quantum. Submissions and replies are encrypted to hybrid "
        "`mlkem768x25519` keys (`age1pq1…`) only, new classic `age1…` keys are refused, and each "
        "source gets a hybrid reply key (at their next login, for sources made before). `false` "
        "(the default): X25519 keys (`age1…`) only; hybrid keys may be registered ahead of a "
        "switch and wait, unused, until this is `true`. A file is never encrypted to both kinds "
        "(the classic key would be the weak door). `serve` refuses to start as post-quantum while "
        "the organisation or an enabled account that has keys has no hybrid key. See "
        "[operator.md](operator.md#switching-to-post-quantum-keys).",
    )
    kdf_max_concurrent: int = setting(
        "kdf.max_concurrent",
        2,
        positive_int,
        help="Codename derivations (Argon2id, 64 MiB each) running at once; memory = this x 64 "
        "MiB.",
        doc="How many codename derivations (Argon2id, 64 MiB each) run at once. Memory for them is "
        "this × 64 MiB; further new codenames, and logins and confirmations up to "
        "`logins.max_in_flight`, wait their turn. It does not change the derivation itself. "
        "With `serve --workers N` it is divided between the workers; N may not exceed it.",
    )
    login_max_in_flight: int = setting(
        "logins.max_in_flight",
        8,
        positive_int,
        help="Codename logins waiting for or running the KDF at once; more are refused (429).",
        doc='Codename checks (logins and the confirmation after "start") waiting for or running '
        'the KDF at once. One more is refused at once with "Too many attempts" (429) instead of '
        "queueing, so a flood cannot pile up threads or memory. With `serve --workers N` it is "
        "divided between the workers (at least 1 each).",
    )
    logins_per_minute: int = setting(
        "logins.per_minute",
        60,
        positive_int,
        help="Codename logins accepted per minute, for all visitors together.",
        doc="Codename checks accepted per minute for all visitors together (a token bucket that is "
        "full at start, so up to this many can come at once): a bound on how many codenames the "
        "whole world can try. Onion traffic all arrives from 127.0.0.1, so no limit is per "
        "address. The budget is shared, so a flood of wrong codenames can hold up every source's "
        "login until it stops. Kept in memory (a restart refills it); on PostgreSQL, in the "
        "database, shared by every worker of the instance.",
    )
    login_failures_per_visitor: int = setting(
        "logins.failures_per_visitor",
        10,
        positive_int,
        help="Wrong codenames one browser may try in 10 minutes before it must wait.",
        doc="Wrong codenames one browser (one pre-session cookie) may try within 10 minutes of its "
        "first wrong one; then it gets 429 until the 10 minutes have passed. A successful login "
        'clears the count. The confirmation step after "start" counts per session instead. A '
        "visitor who drops cookies still meets the global limits. Kept in memory; a restart clears "
        "it.",
    )
    pending_purge_seconds: int = setting(
        "sources.pending_purge_hours",
        24,
        positive_int,
        help="Sources that never sent anything are deleted this many hours after they began.",
        doc="A source that has not sent anything this many hours after it was created is deleted "
        "by the server's housekeeping, which runs every minute while `serve` runs (with its "
        "sessions and any replies); its codename stops working. The creation time "
        "(`pending_since`, seconds) is kept only until the first submission. Sources created "
        "before database migration `0002` are never deleted this way.",
        finish=hours_to_seconds,
    )
    max_reply_bytes: int = setting(
        "replies.max_bytes",
        1024**2,
        byte_size,
        help="Largest reply ciphertext accepted, in bytes.",
        doc="Largest reply ciphertext the server stores, in bytes; a larger reply is refused "
        "whole. Journalists upload replies through the API (`POST /api/v1/sources/{id}/replies`): "
        "a body more than 1 KiB over this limit is refused with `413` without being read to the "
        "end, one just over it with `400 invalid_reply`. A reply is held in memory, whole, while "
        "it is uploaded, and decrypted in memory, whole, each time its source's conversation page "
        "is shown.",
    )
    session_requests_per_minute: int = setting(
        "sessions.requests_per_minute",
        60,
        positive_int,
        help="Requests one source session may make per minute (steady rate); beyond it, 429.",
        doc="Steady request rate of one source session (a logged-in source). A session that goes "
        'faster gets "Too many attempts" pages (429, `Retry-After`) while every other session is '
        "served: a script replaying one session's cookie, over any number of Tor circuits, is "
        "slowed. A person reading and sending uses a few requests a minute. Kept in memory, keyed "
        "by the hash of the session id the server already stores.",
    )
    session_request_burst: int = setting(
        "sessions.request_burst",
        30,
        positive_int,
        help="Requests one source session may make at once before the rate applies.",
        doc="Requests one session may make at once before `sessions.requests_per_minute` applies "
        "(a token bucket, full when the session is first seen).",
    )
    session_idle_seconds: int = setting(
        "sessions.idle_timeout_minutes",
        60,
        positive_int,
        help="A source session ends after this long without a request.",
        doc="A source session ends after this many minutes without a request. The time of the last "
        "request is written at most once a minute (so that pages which only read take no write "
        "lock), so a session may end up to a minute earlier than this after its last request, "
        "never later.",
        finish=minutes_to_seconds,
    )
    session_absolute_seconds: int = setting(
        "sessions.absolute_timeout_minutes",
        240,
        positive_int,
        help="A source session ends this long after it began.",
        doc="A source session ends this many minutes after it began, however active.",
        finish=minutes_to_seconds,
    )
    notify_interval_seconds: int = setting(
        "notifications.interval_seconds",
        86400,
        positive_int,
        help="Seconds between scheduled notices to journalists (at most one per account per "
        "interval, sent at multiples of it since 00:00 UTC).",
        doc="Notices to journalists (see [operator.md](operator.md#notifications)) go out only at "
        "fixed times: the multiples of this many seconds since 1970-01-01 00:00 UTC (with the "
        "default, every day at 00:00 UTC; 3600 would be every hour on the hour), never when a "
        "submission arrives. Each enabled account gets at most one notice per interval, and only "
        "if something arrived since its last one (unless `notifications.send_when_empty`). The "
        "interval is how precisely a notice dates activity: keep it at a day or more.",
    )
    notify_when_empty: bool = setting(
        "notifications.send_when_empty",
        False,
        boolean,
        help="Also send a 'no new activity' notice at every scheduled time.",
        doc="`true`: every enabled account gets a notice at every scheduled time, saying that "
        "there is no new activity when nothing arrived, so that someone who sees only when mail "
        "arrives (not what it says) learns nothing from which days have one. The text differs, "
        "so whoever can read the notices (the mail provider) still can tell them apart.",
    )
    notify_allow_urls: bool = setting(
        "notifications.allow_urls",
        False,
        boolean,
        help="Let accounts send their notices to Apprise URLs (ntfy, Matrix, webhooks...). The "
        "server then connects to the host a URL names, which learns the server's IP address.",
        doc="`true`: accounts may send their notices to an Apprise URL (ntfy, Matrix, Signal REST, "
        "a webhook…) instead of e-mail. Off by default because the server then connects, "
        "directly and not over Tor, to whatever host a URL names, and any account could name a "
        "host of its own and so learn the server's IP address. Turn it on only if every account "
        "holder may know where the server is. When off, `user notify --url` and the API refuse "
        "URLs, and URLs stored earlier get nothing.",
    )
    notify_language: str = setting(
        "notifications.language",
        "en",
        one_of(*NOTICE_LANGUAGES),
        help="Language of notices for accounts that did not choose one: "
        + ", ".join(NOTICE_LANGUAGES)
        + ".",
        doc="The language of the notices of an account whose own was not given (`sealdrop user "
        "notify --lang`): one of the source interface's languages, "
        + ", ".join(f"`{code}`" for code in NOTICE_LANGUAGES)
        + ".",
    )
    smtp_url: str = setting(
        "notifications.smtp_url",
        "",
        smtp_url,
        help="The mail relay for e-mail notices: smtp://[user@]host[:port] (STARTTLS, port 587) "
        "or smtps://[user@]host[:port] (TLS, port 465); password in secrets.toml. Empty: none.",
        doc="The mail relay that e-mail notices go through: `smtp://[user@]host[:port]` (port 587 "
        "by default; the connection must upgrade with STARTTLS, or nothing is sent) or "
        "`smtps://[user@]host[:port]` (TLS from the start, port 465 by default). The relay's "
        "certificate is verified (see `notifications.ca_file`). With a user, the password is "
        '`smtp_password = "…"` in `secrets.toml`, or the environment variable '
        "`SEALDROP_NOTIFICATIONS_SMTP_PASSWORD`; a password in the URL is refused. Empty: no "
        "e-mail notices (Apprise URLs still work).",
    )
    notify_from: str = setting(
        "notifications.from",
        "",
        text,
        help="The From address of e-mail notices (e.g. sealdrop@example.org).",
        doc="The `From` address of e-mail notices, e.g. `sealdrop@example.org`. Needed when "
        "`notifications.smtp_url` is set. It is the one address every journalist's mailbox "
        "shows the notices coming from.",
    )
    smtp_ca_file: Path | None = setting(
        "notifications.ca_file",
        "",
        text,
        help="A PEM file of the certificate authorities the mail relay's certificate is checked "
        "against (a self-hosted relay); relative to the instance. Empty: the system's.",
        doc="A PEM file of the certificate authorities that the mail relay's certificate is "
        "checked against instead of the system's (a self-hosted relay with its own CA). Relative "
        "paths are relative to the instance folder. The host name is checked either way.",
        finish=optional_in_instance,
    )
    metrics_enabled: bool = setting(
        "metrics.enabled",
        False,
        boolean,
        help="Serve metrics in the Prometheus text format on a listener of their own.",
        doc="`true`: `sealdrop serve` also serves metrics in the Prometheus text format at "
        "`/metrics` (and `/healthz`) on a listener of its own, `metrics.host`:`metrics.port` (see "
        "[operator.md](operator.md#monitoring)). Off by default. The metrics hold totals and peaks "
        "for the whole instance, nothing per source.",
    )
    metrics_host: str = setting(
        "metrics.host",
        "127.0.0.1",
        text,
        help="Address the metrics listener listens on (keep a loopback address).",
        doc="Address the metrics listener listens on. It serves plain HTTP without "
        "authentication: keep a loopback address (a Prometheus on the same host, or an SSH "
        "tunnel); never an address the Internet reaches. No onion service serves it.",
    )
    metrics_port: int = setting(
        "metrics.port",
        8082,
        port,
        help="TCP port of the metrics listener.",
        doc="TCP port of the metrics listener, 1–65535; it must differ from the source and API "
        "listeners' ports.",
    )
    metrics_refresh_seconds: int = setting(
        "metrics.refresh_seconds",
        900,
        positive_int,
        help="Seconds between updates of the published metrics (at multiples of it since 00:00 "
        "UTC); keep it at 15 minutes or more.",
        doc="The metrics are taken at start and then only at the multiples of this many seconds "
        "since 1970-01-01 00:00 UTC (with the default, every quarter hour); a scrape in between "
        "gets the same values. This is what keeps frequent scrapes from dating single "
        "submissions: a counter moves once per interval, by everything of the interval. Keep it "
        "at 900 or more on a real instance; alert rules should allow for it (`for:` longer than "
        "the interval).",
    )
    retention_submissions_days: int = setting(
        "retention.submissions_days",
        0,
        days_or_off,
        help="Delete a submission this many days after its arrival day (plus a random 0 to "
        "jitter_days). 0: keep forever. Needs privacy.arrival_granularity = 'day'.",
        doc="A submission is deleted (its blob, its row, journalists' seen marks of it) this many "
        "days after its arrival day, on a day drawn within `retention.jitter_days` after that (see "
        "[operator.md](operator.md#retention)). `0`: never. Sources on hold are exempt. Needs "
        '`privacy.arrival_granularity = "day"`: a configuration that sets a retention rule with '
        '`"none"` is refused at load, as nothing would date the items; items stored without a '
        "day (while the granularity was `none`) are never deleted by a rule.",
    )
    retention_replies_days: int = setting(
        "retention.replies_days",
        0,
        days_or_off,
        help="Delete a reply this many days after its arrival day (plus jitter). 0: keep forever.",
        doc="Like `retention.submissions_days`, for journalists' replies. `0`: never.",
    )
    retention_idle_source_days: int = setting(
        "retention.idle_source_days",
        0,
        days_or_off,
        help="Delete a source with everything it sent and every reply this many days (plus "
        "jitter) after its last activity: its newest stored submission, or its creation day. "
        "0: never.",
        doc="A source is deleted with its submissions, its replies and everything derived from "
        "them this many days, plus the jitter, after its last activity of its own that the server "
        "stores: the arrival day of its newest stored submission, or else the day it was created. "
        "Logins and reading replies are not recorded (invariant 6), so they do not count; when "
        "`retention.submissions_days` is shorter, a source is idle at the latest once its "
        "submissions have expired. `0`: never. Sources on hold are exempt.",
    )
    retention_jitter_days: int = setting(
        "retention.jitter_days",
        7,
        days_or_off,
        help="Each item expires on a day drawn from 0 to this many days after its due day, so "
        "that what is left on a disk does not date it more finely than the rules.",
        doc="Each item (submission, reply, idle source) is deleted on a day drawn between its due "
        "day and this many days later, so that which items remain on a seized disk does not tell "
        "the day it was seized more finely than the rules. The draw is a keyed hash of the item's "
        "id (the key derived from `secrets.toml`): nothing more is stored per item, and "
        "`sealdrop housekeeping --dry-run` and the real run agree. `0`: exactly on the due day.",
    )
    kdf_salt: Secret = field(repr=False)  # from secrets.toml, not a setting
    # From secrets.toml or SEALDROP_NOTIFICATIONS_SMTP_PASSWORD, not a setting; None: none.
    smtp_password: Secret | None = field(default=None, repr=False)
    # From secrets.toml or SEALDROP_S3_SECRET_ACCESS_KEY, not a setting; None: none.
    s3_secret_access_key: Secret | None = field(default=None, repr=False)


# Every setting by name ("section.key"), in declaration order.
SETTINGS: Mapping[str, Setting] = MappingProxyType(dict(declared(Settings)))
