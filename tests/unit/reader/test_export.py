"""sealdrop.reader.export: decrypted files written under safe names, metadata stripped by mat2."""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from pathlib import Path

import piexif
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader, PdfWriter

from sealdrop.errors import ExportError
from sealdrop.reader import export as export_module
from sealdrop.reader.export import MAX_NAME_LENGTH, export, safe_name

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10))} | {
    f"LPT{i}" for i in range(10)
}


@pytest.fixture(scope="module")
def mat2_bin() -> str:
    """The Debian mat2 CLI, which export drives."""
    path = shutil.which("mat2")
    if path is None:
        pytest.skip("the Debian `mat2` package is not installed")
    return path


@pytest.fixture(scope="module")
def gps_jpeg() -> bytes:
    """A small JPEG with EXIF camera and GPS tags."""
    gps = {
        piexif.GPSIFD.GPSLatitudeRef: b"N",
        piexif.GPSIFD.GPSLatitude: ((52, 1), (31, 1), (0, 1)),
        piexif.GPSIFD.GPSLongitudeRef: b"E",
        piexif.GPSIFD.GPSLongitude: ((13, 1), (24, 1), (0, 1)),
    }
    zeroth = {piexif.ImageIFD.Make: b"AcmeCam", piexif.ImageIFD.Artist: b"Jane Leaker"}
    exif = piexif.dump({"0th": zeroth, "GPS": gps})
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert piexif.load(data)["GPS"], "the fixture itself must carry GPS tags"
    return data


@pytest.fixture(scope="module")
def authored_pdf() -> bytes:
    """A one-page PDF whose document info names an author."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Author": "Jane Leaker", "/Title": "Internal memo"})
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    metadata = PdfReader(io.BytesIO(data)).metadata
    assert metadata is not None
    assert str(metadata["/Author"]) == "Jane Leaker"
    return data


def _listing(folder: Path) -> list[str]:
    # Hidden entries included: a left-over scratch folder would show here.
    return sorted(p.name for p in folder.iterdir())


def test_jpeg_loses_its_exif_and_gps(mat2_bin: str, tmp_path: Path, gps_jpeg: bytes) -> None:
    """A JPEG with GPS tags is exported without any EXIF, and `removed` reports the GPS data."""
    result = export(gps_jpeg, "holiday.jpg", tmp_path)
    assert result.cleaned
    assert result.warning is None
    assert result.path == tmp_path / "holiday.jpg"
    assert result.original is None
    assert _listing(tmp_path) == ["holiday.jpg"]
    assert result.path.stat().st_mode & 0o777 == 0o600
    assert any("GPS" in item for item in result.removed), result.removed
    assert any("Jane Leaker" in item for item in result.removed), result.removed

    data = result.path.read_bytes()
    assert b"Jane Leaker" not in data
    assert b"AcmeCam" not in data
    with Image.open(result.path) as image:
        assert image.format == "JPEG"
        assert "exif" not in image.info
        assert len(image.getexif()) == 0
    try:
        exif = piexif.load(data)
    except Exception:  # piexif raises when there is no EXIF segment at all  # noqa: S110
        pass
    else:
        assert not exif["GPS"]
        assert not exif["0th"]


def test_pdf_loses_its_author(mat2_bin: str, tmp_path: Path, authored_pdf: bytes) -> None:
    """A PDF with an author field is exported without it, and `removed` reports the author."""
    result = export(authored_pdf, "memo.pdf", tmp_path)
    assert result.cleaned
    assert any("Jane Leaker" in item for item in result.removed), result.removed
    reader = PdfReader(result.path)
    assert len(reader.pages) == 1
    metadata: Mapping[str, object] = reader.metadata or {}
    assert "/Author" not in metadata
    assert b"Jane Leaker" not in result.path.read_bytes()


def test_keep_original_keeps_the_unstripped_file(
    mat2_bin: str, tmp_path: Path, gps_jpeg: bytes
) -> None:
    """With keep_original the untouched bytes are kept as NAME.original.EXT, mode 0600."""
    result = export(gps_jpeg, "holiday.jpg", tmp_path, keep_original=True)
    assert result.original == tmp_path / "holiday.original.jpg"
    assert result.original.read_bytes() == gps_jpeg
    assert result.original.stat().st_mode & 0o777 == 0o600
    assert _listing(tmp_path) == ["holiday.jpg", "holiday.original.jpg"]


def test_collisions_never_overwrite(mat2_bin: str, tmp_path: Path, gps_jpeg: bytes) -> None:
    """Exporting onto taken names adds " (2)", " (3)"…; existing files keep their bytes."""
    (tmp_path / "holiday.jpg").write_bytes(b"the journalist's own file")
    (tmp_path / "holiday.original.jpg").write_bytes(b"another own file")
    first = export(gps_jpeg, "holiday.jpg", tmp_path, keep_original=True)
    second = export(gps_jpeg, "holiday.jpg", tmp_path)
    assert first.path.name == "holiday (2).jpg"
    assert first.original is not None
    assert first.original.name == "holiday.original (2).jpg"
    assert second.path.name == "holiday (3).jpg"
    assert (tmp_path / "holiday.jpg").read_bytes() == b"the journalist's own file"
    assert (tmp_path / "holiday.original.jpg").read_bytes() == b"another own file"
    assert len(_listing(tmp_path)) == 5


def test_cleaned_name_of_mat2_never_clobbers(
    mat2_bin: str, tmp_path: Path, gps_jpeg: bytes
) -> None:
    """A file already named like mat2's output (NAME.cleaned.EXT) in the folder is left alone."""
    (tmp_path / "holiday.cleaned.jpg").write_bytes(b"mine")
    export(gps_jpeg, "holiday.jpg", tmp_path)
    assert (tmp_path / "holiday.cleaned.jpg").read_bytes() == b"mine"
    assert _listing(tmp_path) == ["holiday.cleaned.jpg", "holiday.jpg"]


def test_unsupported_format_is_kept_with_a_warning(mat2_bin: str, tmp_path: Path) -> None:
    """A format mat2 does not know is exported as is, uncleaned, with a warning saying so."""
    result = export(b"opaque bytes", "data.xyz", tmp_path)
    assert not result.cleaned
    assert result.warning is not None
    assert "not support" in result.warning
    assert result.removed == []
    assert result.path.read_bytes() == b"opaque bytes"
    assert result.path.stat().st_mode & 0o777 == 0o600
    assert _listing(tmp_path) == ["data.xyz"]


def test_damaged_file_is_kept_with_a_warning(mat2_bin: str, tmp_path: Path) -> None:
    """A file mat2 fails on (not the JPEG its name claims) is exported as is, with a warning."""
    result = export(b"not a jpeg at all", "photo.jpg", tmp_path)
    assert not result.cleaned
    assert result.warning is not None
    assert "could not clean" in result.warning
    assert result.path.read_bytes() == b"not a jpeg at all"
    assert _listing(tmp_path) == ["photo.jpg"]


def test_stream_input_is_exported(mat2_bin: str, tmp_path: Path, authored_pdf: bytes) -> None:
    """A binary stream works like bytes."""
    result = export(io.BytesIO(authored_pdf), "memo.pdf", tmp_path)
    assert result.cleaned
    assert "/Author" not in (PdfReader(result.path).metadata or {})


def test_without_stripping_the_bytes_are_exported_unchanged(
    tmp_path: Path, gps_jpeg: bytes
) -> None:
    """strip_metadata=False writes the exact bytes (mode 0600) and never runs mat2."""
    result = export(gps_jpeg, "holiday.jpg", tmp_path, strip_metadata=False)
    assert result.path.read_bytes() == gps_jpeg
    assert not result.cleaned
    assert result.removed == []
    assert result.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        ("../../.bashrc", "bashrc"),
        ("<script>x</script>.pdf", "script_.pdf"),
        ("C:\\evil\\con.txt", "_con.txt"),
        ("\x00", "submission"),
        ("", "submission"),
        ("..", "submission"),
        ("/etc/passwd", "passwd"),
        ('a:b?c*|d".txt', "a_b_c__d_.txt"),
        ("NUL.tar.gz", "_NUL.tar.gz"),
        ("com1", "_com1"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("line\nbreak\r.txt", "linebreak.txt"),
        ("trailing dots... ", "trailing dots"),
        ("Mémo final.PDF", "Mémo final.PDF"),
    ],
)
def test_safe_name(submitted: str, expected: str) -> None:
    """Untrusted names become safe, non-empty, single-component names."""
    assert safe_name(submitted) == expected


def test_safe_name_keeps_the_extension_when_truncating() -> None:
    """Long names are cut to 120 characters, extension kept."""
    name = safe_name("x" * 500 + ".jpeg")
    assert len(name) == MAX_NAME_LENGTH
    assert name.endswith("x.jpeg")


@given(st.text(max_size=300))
def test_safe_name_is_always_safe(submitted: str) -> None:
    """Whatever is submitted, the name is one safe, non-empty path component of ≤ 120 chars."""
    name = safe_name(submitted)
    assert name
    assert len(name) <= MAX_NAME_LENGTH
    assert not name.startswith((".", " "))
    assert not any(c in name for c in '<>:"|?*/\\\x00')
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in name)
    assert name.split(".")[0].strip().upper() not in _WINDOWS_RESERVED


@pytest.mark.parametrize(
    "submitted",
    ["../../.bashrc", "<script>x</script>.pdf", "C:\\evil\\con.txt", "\x00", ""],
)
def test_hostile_names_export_inside_the_folder(tmp_path: Path, submitted: str) -> None:
    """Files with hostile names land directly inside the chosen folder, under their safe name."""
    dest = tmp_path / "exports"
    dest.mkdir()
    result = export(b"content", submitted, dest, strip_metadata=False)
    assert result.path.parent == dest
    assert result.path.resolve().parent == dest.resolve()
    assert result.path.name == safe_name(submitted)
    assert _listing(dest) == [safe_name(submitted)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]


def test_missing_mat2_fails_closed(
    tmp_path: Path, gps_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without mat2, a stripped export is refused (ExportError) and nothing is written."""
    monkeypatch.setattr(export_module, "MAT2", "mat2-is-not-installed-here")
    with pytest.raises(ExportError, match="mat2"):
        export(gps_jpeg, "holiday.jpg", tmp_path)
    assert _listing(tmp_path) == []


def test_missing_destination_is_an_export_error(tmp_path: Path) -> None:
    """A destination folder that does not exist raises ExportError."""
    with pytest.raises(ExportError, match="does not exist"):
        export(b"x", "a.txt", tmp_path / "nope", strip_metadata=False)
