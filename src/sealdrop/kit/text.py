"""The kit's English text and the facts it states (translated in ``translations/<code>/kit.po``).

Every fact about the Tor Project here is listed with its source in docs/reach-kit.md, so that it
can be re-checked; change the date below only after re-checking them all against those pages.
"""

from __future__ import annotations

# The date printed on every page as "written on": when the Tor Project facts below were written
# or last compared with the Tor Project's own pages (docs/reach-kit.md lists them). The pages do
# not claim a check: the first version was written without access to those pages.
FACTS_CHECKED_ON = "2026-12-05"

# Addresses the pages show as plain links. Nothing is ever loaded from them (no src, no CSS, no
# font): a reader who clicks goes there, nothing else does. The tests allow exactly these.
TOR_DOWNLOAD = "https://www.torproject.org/download/"
TOR_MIRROR_EFF = "https://tor.eff.org/download/"
TOR_MIRROR_GITHUB = "https://github.com/torproject/torbrowser-releases/releases"
GETTOR_EMAIL = "gettor@torproject.org"
GETTOR_TELEGRAM = "@GetTor_Bot"
BRIDGES_WEB = "https://bridges.torproject.org/"
BRIDGES_EMAIL = "bridges@torproject.org"
BRIDGES_TELEGRAM = "@GetBridgesBot"
TELEGRAM_BASE = "https://t.me/"
LINKS = frozenset(
    {
        TOR_DOWNLOAD,
        TOR_MIRROR_EFF,
        TOR_MIRROR_GITHUB,
        BRIDGES_WEB,
        "mailto:" + GETTOR_EMAIL,
        "mailto:" + BRIDGES_EMAIL,
        TELEGRAM_BASE + GETTOR_TELEGRAM[1:],
        TELEGRAM_BASE + BRIDGES_TELEGRAM[1:],
    }
)


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction (``babel-kit.cfg``); it is translated where it is shown."""
    return message


# Short sentences: most readers are frightened and read in a second language. Placeholders are
# filled with links or addresses that are never translated.
TITLE = N_("How to reach %(org)s safely")
LEAD = N_(
    "Use this page to send us documents or messages without telling us who you are. "
    "Read all of it before you start."
)
ADDRESS_HEADING = N_("The address")
ADDRESS = N_("Open this address in Tor Browser. It does not open in other browsers.")
QR = N_("The same address as a QR code, for the camera of a phone that has Tor Browser:")
CHECK_HEADING = N_("Check the address")
CHECK = N_(
    "A fake address can look almost the same. Compare all 56 characters before “.onion”, not "
    "only the first and last ones, with the address on our own website opened over https://. "
    "If one character differs, do not use it."
)
VPN_HEADING = N_("Without Tor")
VPN = N_(
    "If you cannot use Tor, you can open %(url)s through a VPN. Tor protects you better: the VPN "
    "company can see that you visit us, and your network can see that you use a VPN."
)
GET_HEADING = N_("Get Tor Browser")
GET = N_("Download Tor Browser only from the Tor Project: %(url)s")
MIRRORS = N_("If that site is blocked, use an official mirror: %(mirror1)s or %(mirror2)s")
GETTOR = N_(
    "Or use GetTor: send an email to %(email)s, or a message to %(telegram)s on Telegram. "
    "It answers with links to download Tor Browser."
)
BRIDGES_HEADING = N_("If Tor is blocked: bridges")
BRIDGES = N_(
    "If Tor Browser cannot connect, use a bridge. Snowflake and obfs4 bridges are built into "
    "Tor Browser: choose one in its connection settings. Snowflake works in many countries "
    "where Tor is blocked, but it can be slow: be patient."
)
ASK_BRIDGES = N_(
    "If those are blocked too, ask for other bridges (obfs4 or WebTunnel): on %(web)s, by email "
    "to %(email)s from a Gmail or Riseup address, or from %(telegram)s on Telegram."
)
DONT_HEADING = N_("What not to do")
DONT_DEVICE = N_(
    "Do not use a computer or phone from your employer, or your employer's network (Wi-Fi, "
    "VPN): they may record what you do."
)
DONT_BROWSER = N_("Do not open the address in an ordinary browser, and do not search for it.")
DONT_TELL = N_("Do not tell anyone that you contact us.")
CODENAME = N_(
    "When you first send something, you receive a codename of seven English words. Keep it "
    "secret and safe: it is the only way back to your conversation with us."
)
FACTS = N_("Written on %(date)s. Links and bridges change: check the Tor Project's own pages.")
LANGUAGES_LABEL = N_("Languages")
