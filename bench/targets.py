"""The benchmarks' targets, stated once: the table that ``bench/run`` prints checks measures
against these, and bench/README.md's table of targets is written from them
(``bench/run --write-targets``)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- targets: written by `bench/run --write-targets` from bench/targets.py -->"
END = "<!-- end of targets -->"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "≥": operator.ge,
    "≤": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """``measure op limit unit``: a ``≥`` target passes at measured / limit ≥ 1, a ``≤`` one at
    ≤ 1, a ``<`` one below 1."""

    benchmark: str
    measure: str
    op: str
    limit: float
    unit: str
    origin: str  # where the number comes from

    def check(self, value: float | None, limit: float | None = None) -> tuple[float | None, bool]:
        """(measured / limit, passed); ``limit`` replaces the stated one when the instance's
        settings decide it (the KDF pool's memory)."""
        bound = self.limit if limit is None else limit
        if value is None:
            return None, False
        return round(value / bound, 3), _COMPARE[self.op](value, bound)

    def shown(self, limit: float | None = None) -> str:
        """The target column of the printed table."""
        bound = self.limit if limit is None else limit
        return f"{self.op} {bound:g}{self.unit}"


UPLOAD_VS_DISK = Target(
    "1 upload",
    "Sealdrop / disk write+fsync ceiling",
    "≥",
    0.80,
    "",
    "issue 7",
)
UPLOAD_VS_ONIONSHARE = Target(
    "1 upload",
    "Sealdrop / OnionShare 2.7 receive",
    "≥",
    3,
    "",
    "issue 7 (not met on 2 cores: see below)",
)
UPLOAD_RSS = Target("1 upload", "server RSS growth during an upload", "<", 64, " MiB", "issue 7")
UPLOAD_CPU = Target(
    "1 upload",
    "server CPU-seconds per GiB uploaded (the server process)",
    "≤",
    1.5,
    " s",
    "issue 17 (met since session 12's BLAKE3 digests: see Results)",
)
PAGE_BYTES = Target(
    "2 page weight",
    "bytes on the wire, every source page",
    "≤",
    16 * 1024,
    " B",
    "issue 7 (16 KB)",
)
PAGE_REQUESTS = Target(
    "2 page weight",
    "requests per page (favicon apart)",
    "≤",
    1,
    "",
    "issue 7",
)
SESSIONS_P99 = Target(
    "3 sessions",
    "p99 of the pages, 200 paced sessions",
    "<",
    50,
    " ms",
    "issue 7",
)
FLOOD_RSS = Target(
    "4 login flood",
    "server RSS growth over the warm server",
    "≤",
    2 * 64 + 8,  # at the default kdf.max_concurrent, 2; each run uses the instance's
    " MiB",
    "kdf.max_concurrent × 64 MiB (+ 8 MiB for the requests); follows the instance's setting",
)
FLOOD_P99 = Target(
    "4 login flood",
    "p99 of the other pages during the flood",
    "<",
    50,
    " ms",
    "issue 17 (86 ms when it was filed; as 3)",
)
API_P95 = Target(
    "5 API",
    "p95 per page listing 10,000 sources",
    "≤",
    200,
    " ms",
    "issue 7 (200 ms per page)",
)

PQ_RATIO = Target(
    "7 hybrid vs X25519",
    "upload MB/s, hybrid / X25519 recipients",
    "≥",
    0.80,
    "",
    "issue 18",
)

TARGETS = (
    UPLOAD_VS_DISK,
    UPLOAD_VS_ONIONSHARE,
    UPLOAD_RSS,
    UPLOAD_CPU,
    PAGE_BYTES,
    PAGE_REQUESTS,
    SESSIONS_P99,
    FLOOD_RSS,
    FLOOD_P99,
    API_P95,
    PQ_RATIO,
)


def markdown() -> str:
    """The targets as bench/README.md shows them."""
    lines = ["| benchmark | measure | target | from |", "|---|---|---|---|"]
    for t in TARGETS:
        lines.append(f"| {t.benchmark} | {t.measure} | {t.shown()} | {t.origin} |")
    return "\n".join(lines)


def readme_block(text: str) -> re.Match[str] | None:
    return re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.DOTALL)


def readme_is_current() -> bool:
    found = readme_block(README.read_text(encoding="utf-8"))
    return found is not None and found.group(1) == markdown() + "\n"


def write_readme() -> None:
    """Replace the table between the markers of bench/README.md."""
    text = README.read_text(encoding="utf-8")
    found = readme_block(text)
    if found is None:
        raise SystemExit(f"{README}: no {BEGIN!r} … {END!r} block")
    table = markdown() + "\n"
    README.write_text(text[: found.start(1)] + table + text[found.end(1) :], encoding="utf-8")
