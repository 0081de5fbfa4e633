"""Export a decrypted file into a folder the journalist chooses, stripped of metadata by mat2.

The reader never opens or renders a submitted file: the only program that parses it is Debian's
``mat2`` (run as a subprocess, without a shell, sandboxed by bubblewrap when available), which
removes EXIF/GPS tags, PDF and Office metadata, audio tags and so on. What mat2 found is returned so
the journalist sees what was removed. The submitted file name is untrusted input: ``safe_name``
turns it into one that cannot escape the folder or misbehave on Windows, macOS or Linux.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sealdrop.errors import ExportError
from sealdrop.reader.display import is_invisible

__all__ = ["MAT2", "ExportResult", "export", "safe_name"]

MAT2 = "mat2"
MAX_NAME_LENGTH = 120
_FALLBACK_NAME = "submission"
_CHUNK = 64 * 1024
# Reserved device names on Windows, with or without an extension ("con.txt" is the console too).
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in [*range(10), "¹", "²", "³"]}
    | {f"LPT{i}" for i in [*range(10), "¹", "²", "³"]}
)
# Unsafe on at least one of Windows, macOS, Linux; "/" and "\\" never survive the split anyway.
_UNSAFE = re.compile(r'[<>:"|?*/\\]')
_MAX_EXTENSION = 16


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what happened to its metadata.

    ``removed``: mat2's descriptions of the metadata it found (and removed), e.g.
    ``"GPSLatitude: 52 deg 31' 0.00\\" N"``; ``cleaned``: mat2 stripped the file; ``original``: the
    unstripped copy, kept only when asked; ``warning``: why the file was exported unstripped.
    """

    path: Path
    removed: list[str] = field(default_factory=list)
    original: Path | None = None
    cleaned: bool = False
    warning: str | None = None


def safe_name(original: str) -> str:
    """A file name derived from the untrusted ``original`` that is safe in any folder on any OS.

    Keeps only the last path component (``/`` or ``\\``), drops invisible characters, strips leading
    dots and spaces (no hidden files, no ``..``), replaces ``<>:"|?*``, avoids Windows device names
    (``CON``, ``NUL``, ``COM1``…), keeps at most 120 characters with the extension, and is never
    empty.
    """
    name = unicodedata.normalize("NFC", original)
    name = re.split(r"[/\\]", name)[-1]
    # The characters the reader never shows as they are (display.is_invisible): controls (C0,
    # DEL, C1, NUL), format characters such as the right-to-left override that makes
    # "photo\u202egnp.exe" display as "photoexe.png", and the line and paragraph separators.
    name = "".join(ch for ch in name if not is_invisible(ch))
    name = _UNSAFE.sub("_", name)
    # Windows silently drops trailing dots and spaces, which can turn "x.exe." into "x.exe".
    name = name.lstrip(". ").rstrip(". ")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > _MAX_EXTENSION or " " in ext:
        stem, ext = name, ""
    if stem.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    suffix = f".{ext}" if ext else ""
    stem = stem[: MAX_NAME_LENGTH - len(suffix)].rstrip(". ")
    if not stem:
        stem = _FALLBACK_NAME
    return f"{stem}{suffix}"


def export(
    plaintext: bytes | BinaryIO,
    original_name: str,
    dest_dir: Path,
    *,
    strip_metadata: bool = True,
    keep_original: bool = False,
    timeout: float = 300.0,
) -> ExportResult:
    """Write ``plaintext`` into ``dest_dir`` under a safe, unique name (mode 0600), via mat2.

    Never overwrites: a taken name becomes "name (2).ext", "name (3).ext"… mat2 works on a copy in
    a private scratch folder inside ``dest_dir`` (same file system, so the final step is a rename
    and nothing of the journalist's can be clobbered by mat2's own "NAME.cleaned.EXT" output). If
    mat2 cannot clean the file (format not supported, damaged file, timeout) the file is exported
    unstripped and ``warning`` says why. With ``keep_original`` the unstripped file is kept as
    "NAME.original.EXT"; otherwise it is deleted. ExportError if ``dest_dir`` is unusable or mat2
    is not installed; then nothing is left in ``dest_dir``.
    """
    if not dest_dir.is_dir():
        raise ExportError(f"the export folder {dest_dir} does not exist")
    mat2 = shutil.which(MAT2) if strip_metadata else None
    if strip_metadata and mat2 is None:
        # Fail closed: exporting unstripped when stripping was asked for could expose a source.
        raise ExportError("mat2 is not installed (Debian: apt-get install mat2)")
    name = safe_name(original_name)
    try:
        scratch = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".sealdrop-export-"))
    except OSError as exc:
        raise ExportError(f"cannot write in {dest_dir}: {exc.strerror}") from None
    try:
        # A neutral name with the real extension: mat2 picks its parser by extension, and the
        # untrusted name never reaches a command line.
        ext = Path(name).suffix
        work = scratch / f"file{ext}"
        _write_private(work, plaintext)
        if mat2 is None:
            return ExportResult(path=_place(work, dest_dir, name))
        removed, cleaned_file, warning = _run_mat2(mat2, work, timeout)
        if cleaned_file is None:
            return ExportResult(path=_place(work, dest_dir, name), warning=warning)
        os.chmod(cleaned_file, 0o600)
        path = _place(cleaned_file, dest_dir, name)
        original: Path | None = None
        if keep_original:
            original = _place(work, dest_dir, _with_infix(name, "original"))
        return ExportResult(path=path, removed=removed, original=original, cleaned=True)
    except OSError as exc:
        raise ExportError(f"cannot export into {dest_dir}: {exc.strerror}") from None
    finally:
        # The unstripped copy (unless kept) goes with the scratch folder. A plain unlink: on
        # journaled, copy-on-write and flash storage overwriting first would not reliably help.
        shutil.rmtree(scratch, ignore_errors=True)


def _write_private(path: Path, plaintext: bytes | BinaryIO) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        if isinstance(plaintext, bytes | bytearray | memoryview):
            handle.write(plaintext)
        else:
            shutil.copyfileobj(plaintext, handle, _CHUNK)
        handle.flush()
        os.fsync(handle.fileno())


def _run_mat2(mat2: str, work: Path, timeout: float) -> tuple[list[str], Path | None, str | None]:
    """(metadata found, the cleaned file or None, a warning if it could not be cleaned)."""
    try:
        shown = subprocess.run(
            [mat2, "--show", "--", work.name],
            cwd=work.parent,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        cleaning = subprocess.run(
            [mat2, "--", work.name],
            cwd=work.parent,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], None, f"mat2 did not finish within {timeout:g} s; exported with metadata"
    # mat2 writes NAME.cleaned.EXT next to its input (libmat2: splitext + ".cleaned").
    cleaned = work.with_name(f"{work.stem}.cleaned{work.suffix}")
    if cleaning.returncode != 0 or not cleaned.is_file():
        output = (cleaning.stdout + cleaning.stderr).strip()
        if "is not supported" in output:
            reason = "mat2 does not support this file format"
        else:
            reason = "mat2 could not clean this file (damaged, or not what its extension says)"
        return [], None, f"{reason}; exported with its metadata"
    return _parse_show(shown.stdout), cleaned, None


def _parse_show(output: str) -> list[str]:
    # Format: "[+] Metadata for file.jpg:" then one "    Key: value" line per item (archives and
    # Office files nest members' metadata further indented); "No metadata found" otherwise.
    found = []
    for line in output.splitlines():
        text = line.strip()
        if not text or text.startswith(("[+]", "[-]", "No metadata found")):
            continue
        found.append(text)
    return found


def _with_infix(name: str, infix: str) -> str:
    path = Path(name)
    return f"{path.stem}.{infix}{path.suffix}" if path.suffix else f"{name}.{infix}"


def _place(src: Path, dest_dir: Path, name: str) -> Path:
    """Rename ``src`` into ``dest_dir`` as ``name``, or "stem (2).ext"… if taken; never clobbers.

    The name is claimed first with O_EXCL (atomic, works on every file system, even FAT on a USB
    stick) and then replaced by the finished file, so a concurrent writer can never be overwritten.
    """
    path = Path(name)
    stem, suffix = (path.stem, path.suffix) if path.suffix else (name, "")
    for n in range(1, 10_000):
        candidate = dest_dir / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        try:
            src.replace(candidate)
        except BaseException:
            with contextlib.suppress(OSError):
                candidate.unlink()
            raise
        return candidate
    raise ExportError(f"too many files named like {name!r} in {dest_dir}")
