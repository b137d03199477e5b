"""Decoding untrusted bytes: every mode becomes upright RGB, every bad input one clear `ImageError`."""

from __future__ import annotations

import functools
import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from moodring.emotion.image import ImageError, decode_image, read_image_file
from PIL import Image

from tests.paths import ROOT

ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
LIMITS = {"max_bytes": 20 * 2**20, "max_pixels": 40_000_000, "max_side": 1024}


def encoded(image: Image.Image, format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int, rows_to_compress: int | None = None) -> bytes:
    """A valid grayscale PNG of zeros: tiny on disk, `width * height` bytes once decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(rows_to_compress or height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def corrupted_idat_png() -> bytes:
    """A 256x256 noise PNG whose IDAT has 8 KB of random bytes in its middle, CRC made valid again:
    only the zlib stream is broken, as with a damaged download."""
    rng = np.random.default_rng(0)
    data = bytearray(encoded(Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)), "PNG"))
    position = 8  # after the signature
    while data[position + 4 : position + 8] != b"IDAT":
        position += 12 + struct.unpack(">I", data[position : position + 4])[0]
    length = struct.unpack(">I", data[position : position + 4])[0]
    middle = position + 8 + length // 2
    data[middle - 4096 : middle + 4096] = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    data[position + 8 + length : position + 12 + length] = struct.pack(
        ">I", zlib.crc32(data[position + 4 : position + 8 + length])
    )
    return bytes(data)


@functools.cache
def bad_inputs() -> dict[str, tuple[bytes, str]]:
    """(bytes, words the error must contain) for each kind of bad input the issue names."""
    jpeg = ASTRONAUT.read_bytes()
    return {
        "empty": (b"", "empty"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "truncated"),
        "corrupted IDAT png": (corrupted_idat_png(), "truncated or corrupt"),
        "8x8 picture": (encoded(Image.new("RGB", (8, 8), (120, 90, 80)), "PNG"), "too small to hold a readable face"),
        "text renamed .jpg": (b"just some text, not a picture\n" * 20, "not an image"),
        "decompression bomb (64 MP of zeros)": (png_bomb(8000, 8000), "decompression bomb"),
        "header claiming 400 MP": (png_bomb(20000, 20000, rows_to_compress=2), "decompression bomb"),
        "unsupported format (PCX)": (encoded(Image.new("RGB", (64, 64)), "PCX"), "unsupported image format PCX"),
        "HEIC": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    }


@pytest.mark.parametrize("name", list(bad_inputs()))
def test_bad_input_is_one_clear_line(name: str) -> None:
    data, words = bad_inputs()[name]
    with pytest.raises(ImageError) as raised:
        decode_image(data, **LIMITS)
    message = str(raised.value)
    assert words in message
    assert "\n" not in message


def test_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    data = ASTRONAUT.read_bytes()
    with pytest.raises(ImageError, match="limit"):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=40_000_000, max_side=1024)


@pytest.mark.parametrize(
    "image, format",
    [
        (Image.new("RGBA", (40, 30), (255, 0, 0, 0)), "PNG"),  # transparent -> white
        (Image.new("LA", (40, 30), (10, 255)), "PNG"),
        (Image.new("P", (40, 30), 3), "GIF"),
        (Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
        (Image.new("I;16", (40, 30), 65535), "PNG"),  # 16-bit white must stay white, not clip
        (Image.new("1", (40, 30), 1), "BMP"),
        (Image.new("RGB", (40, 30), (0, 128, 255)), "WEBP"),
        (Image.new("L", (40, 30), 200), "TIFF"),
    ],
    ids=lambda value: getattr(value, "mode", value),
)
def test_every_mode_becomes_rgb(image: Image.Image, format: str) -> None:
    working = decode_image(encoded(image, format), **LIMITS)
    assert working.image.mode == "RGB" and working.image.size == (40, 30)
    assert (working.width, working.height) == (40, 30)
    if image.mode in {"RGBA", "I;16", "1"}:
        assert np.asarray(working.image).min() >= 250, f"{image.mode} should decode to white"


def test_animation_gives_its_first_frame() -> None:
    frames = [Image.new("L", (32, 32), value) for value in (0, 255)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert np.asarray(decode_image(data, **LIMITS).image).max() < 5


def test_large_photo_is_downscaled_once_and_reports_its_original_size() -> None:
    photo = Image.open(ASTRONAUT).resize((4032, 3024))  # a 12 MP phone photo
    working = decode_image(encoded(photo, "JPEG", quality=85), **LIMITS)
    assert max(working.image.size) <= 1024
    assert (working.width, working.height) == (4032, 3024)
    assert working.scale == pytest.approx(4032 / working.image.width)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_picture(orientation: int) -> None:
    upright = Image.open(ASTRONAUT).convert("RGB").crop((0, 0, 512, 384))  # not square: swaps show
    stored = upright.transpose(STORE_FOR_ORIENTATION[orientation]) if orientation > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    working = decode_image(encoded(stored, "JPEG", quality=95, exif=exif), **LIMITS)
    assert (working.width, working.height) == (512, 384)
    difference = np.abs(np.asarray(working.image, dtype=int) - np.asarray(upright, dtype=int)).mean()
    assert difference < 6, f"orientation {orientation} not undone (mean difference {difference:.1f})"


# How a camera stores a picture for each EXIF orientation (EXIF 2.3, tag 0x0112): the viewer
# must undo this to show it upright.
STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def test_reading_a_device_stops_at_the_limit_plus_one_byte() -> None:
    with pytest.raises(ImageError, match="more than the 1.0 MiB limit"):
        read_image_file(Path("/dev/zero"), max_bytes=2**20)


def test_reading_a_folder_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="^is a folder, not a picture$"):
        read_image_file(tmp_path, max_bytes=2**20)
    with pytest.raises(ImageError, match="^No such file or directory$"):
        read_image_file(tmp_path / "gone.jpg", max_bytes=2**20)


def test_reading_an_over_large_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * (2**20 + 1))
    with pytest.raises(ImageError, match="limit"):
        read_image_file(big, max_bytes=2**20)
    assert read_image_file(ASTRONAUT, max_bytes=2**20) == ASTRONAUT.read_bytes()


@pytest.mark.parametrize("size, refused", [(2**16, False), (2**20, True)])
def test_reading_a_pipe_is_bounded(tmp_path: Path, size: int, refused: bool) -> None:
    fifo = tmp_path / "selfie.fifo"
    os.mkfifo(fifo)
    written = []

    def writer() -> None:
        with open(fifo, "wb") as pipe:
            try:
                written.append(pipe.write(b"\x00" * size))
            except BrokenPipeError:  # the reader stopped at its limit and closed the pipe
                written.append(None)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        if refused:
            with pytest.raises(ImageError, match="limit"):
                read_image_file(fifo, max_bytes=2**16)
        else:
            assert len(read_image_file(fifo, max_bytes=2**16)) == size
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()
