"""Previews without export: an image re-encoded in a separate process, a text file shown escaped.

A file from a source is hostile until shown otherwise, and image decoders are where such files
attack (overflows, decompression bombs). So an image is never decoded in the reader's process,
and never reaches the browser as the source sent it:

- it is decoded in a child process (``python -m sealdrop.reader.preview``) that first limits
  itself (``setrlimit``: address space, CPU time, no file writes, no core dump), with Pillow's
  ``MAX_IMAGE_PIXELS`` lowered and its decompression-bomb warning made an error, and is killed
  after ``TIMEOUT`` seconds; a crash or a limit hit there costs the preview, not the reader;
- the pixels are copied into a new image, scaled down and saved as PNG: no EXIF (GPS, camera,
  dates), no XMP, no ICC profile, no text chunks, nothing but pixels reaches the page.

A plain text file is decoded as UTF-8 (errors replaced) and shown like a message: escaped by the
template, invisible characters made visible by ``display.shown_text``. Everything else is only
exported (through mat2).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

from sealdrop.errors import ReaderError
from sealdrop.reader.display import shown_text

__all__ = ["PreviewRefused", "image_png", "preview_kind", "text_preview"]

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "MPO"}  # MPO: JPEGs from some phone cameras
TEXT_TYPES = {"text/plain"}
# Pillow warns past MAX_IMAGE_PIXELS (made an error here) and refuses past twice as many.
MAX_PIXELS = 50_000_000
MAX_INPUT = 64 * 1024 * 1024
MAX_SIDE = 2400  # the preview is scaled down to this; the export keeps the full image
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the decoding process
CPU_SECONDS = 10
TIMEOUT = 20.0
TEXT_LIMIT = 1024 * 1024  # characters shown; the export has the rest


class PreviewRefused(ReaderError):
    """This file is not previewed (the reason says why); export it instead."""


def preview_kind(content_type: str, name: str) -> str | None:
    """``image``, ``text``, or None (export only), from the type the source's browser sent and
    the name's extension (both untrusted: the image decoder checks the content again)."""
    lowered = name.lower()
    if content_type in IMAGE_TYPES or lowered.endswith((".jpg", ".jpeg", ".png", ".gif", ".webp")):
        return "image"
    if content_type in TEXT_TYPES or lowered.endswith(".txt"):
        return "text"
    return None


def text_preview(data: bytes) -> tuple[str, bool]:
    """The text to show and whether it was cut at ``TEXT_LIMIT`` characters."""
    text = data.decode("utf-8", errors="replace")
    return shown_text(text[:TEXT_LIMIT]), len(text) > TEXT_LIMIT


def image_png(data: bytes, timeout: float = TIMEOUT) -> bytes:
    """``data`` decoded in a limited child process and re-encoded as a PNG without metadata;
    PreviewRefused if it cannot be (not an image, too large, too slow, a crash)."""
    if len(data) > MAX_INPUT:
        raise PreviewRefused("too large to preview: export it instead")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sealdrop.reader.preview"],
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PreviewRefused("the image took too long to decode: export it instead") from None
    if done.returncode != 0:
        reason = done.stderr.decode("ascii", errors="replace").strip().splitlines()
        last = reason[-1] if reason else ""
        if done.returncode > 0 and last.startswith("refused: "):
            raise PreviewRefused(last.removeprefix("refused: ") + ": export it instead")
        raise PreviewRefused("the image decoder stopped (a resource limit): export it instead")
    return done.stdout


# -- the child process -----------------------------------------------------------------------


def _limit_myself() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # writes nothing but its stdout pipe
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file with the plaintext


def _reencode(data: bytes) -> bytes:
    import warnings

    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    with Image.open(io.BytesIO(data)) as image:
        if image.format not in _IMAGE_FORMATS:
            raise ValueError("not a JPEG, PNG, GIF or WebP image")
        image.seek(0)  # the first frame of an animation
        upright = ImageOps.exif_transpose(image)  # as the camera held it; the EXIF goes below
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
        mode = "RGBA" if "A" in upright.getbands() or "transparency" in upright.info else "RGB"
        pixels = upright.convert(mode)
        # A new image from the pixels alone: no info dict, so no EXIF, XMP, ICC or text chunk.
        clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG")
    return out.getvalue()


def main() -> None:
    _limit_myself()
    from PIL import Image, UnidentifiedImageError

    data = sys.stdin.buffer.read(MAX_INPUT + 1)
    try:
        png = _reencode(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        sys.stderr.write(f"refused: more than {MAX_PIXELS:,} pixels\n")
        sys.exit(2)
    except UnidentifiedImageError:
        sys.stderr.write("refused: not an image that can be previewed\n")
        sys.exit(2)
    except MemoryError:
        sys.stderr.write("refused: too large to decode within the memory limit\n")
        sys.exit(2)
    except (ValueError, OSError, SyntaxError) as exc:
        # Pillow's words for a broken file; ours for a wrong format. Never the content.
        sys.stderr.write(f"refused: {type(exc).__name__}: the image is damaged or unsupported\n")
        sys.exit(2)
    sys.stdout.buffer.write(png)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
