"""Previews without export (reader/preview.py): images decoded in a limited child process and
re-encoded as PNG without metadata; text shown with invisible characters made visible."""

from __future__ import annotations

import io
import struct
import time

import piexif
import pytest
from PIL import Image

from sealdrop.reader.preview import (
    MAX_PIXELS,
    PreviewRefused,
    image_png,
    preview_kind,
    text_preview,
)
from support_images import png_claiming

GPS = struct.pack(">6L", 52, 1, 31, 1, 1234, 100)  # the latitude's bytes in the EXIF block
CAMERA = b"PreviewTestCam"


def jpeg_with_metadata() -> bytes:
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: CAMERA, piexif.ImageIFD.Orientation: 6},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((52, 1), (31, 1), (1234, 100)),
            },
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 120, 200)).save(out, "JPEG", exif=exif, comment=b"hello")
    data = out.getvalue()
    assert GPS in data
    assert CAMERA in data
    return data


def test_image_preview_is_a_png_without_exif_gps_or_comment() -> None:
    """A JPEG with GPS, camera and comment comes back as a PNG holding none of them, upright
    (the EXIF orientation applied before the EXIF is dropped)."""
    png = image_png(jpeg_with_metadata())
    assert png.startswith(b"\x89PNG")
    assert GPS not in png
    assert CAMERA not in png
    assert b"hello" not in png
    assert b"eXIf" not in png
    assert b"Exif" not in png
    with Image.open(io.BytesIO(png)) as shown:
        assert shown.format == "PNG"
        assert not shown.getexif()
        assert set(shown.info) <= {"dpi", "gamma"}, shown.info
        assert shown.size == (20, 40)  # orientation 6: turned a quarter


def test_decompression_bomb_is_refused_in_the_child() -> None:
    """A file claiming far more pixels than MAX_IMAGE_PIXELS is refused with that reason, fast,
    and this process is unharmed (it never decodes anything)."""
    started = time.monotonic()
    with pytest.raises(PreviewRefused, match="pixels"):
        image_png(png_claiming(60_000, 60_000))
    assert time.monotonic() - started < 15
    # Between the limit and twice the limit Pillow only warns: here that is a refusal too.
    side = int((MAX_PIXELS * 1.5) ** 0.5)
    with pytest.raises(PreviewRefused, match="pixels"):
        image_png(png_claiming(side, side))


def test_a_decoder_that_takes_too_long_is_stopped() -> None:
    """Past the timeout the child is killed and the preview refused."""
    with pytest.raises(PreviewRefused, match="too long"):
        image_png(jpeg_with_metadata(), timeout=0.01)


def test_what_is_not_an_image_is_refused() -> None:
    """Bytes that are no image (a PDF named .jpg, say) get a reason, never a crash."""
    with pytest.raises(PreviewRefused, match="export it instead"):
        image_png(b"%PDF-1.7\n" + b"x" * 100)


def test_text_preview_makes_bidi_controls_visible() -> None:
    """A right-to-left override in a text file is shown as a code, as in messages."""
    shown, cut = text_preview("invoice\u202etxt.exe\nline two".encode())
    assert shown == "invoice<U+202E>txt.exe\nline two"
    assert not cut


def test_only_images_and_plain_text_are_previewed() -> None:
    """Images and plain text get a preview; anything else (a PDF, an office file) is exported."""
    assert preview_kind("image/jpeg", "a.bin") == "image"
    assert preview_kind("", "photo.PNG") == "image"
    assert preview_kind("text/plain", "notes") == "text"
    assert preview_kind("application/pdf", "report.pdf") is None
    assert preview_kind("text/html", "page.html") is None
