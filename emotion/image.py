"""Read and decode untrusted image files into one small RGB array, safely, in memory.

Reading never takes more than the size limit plus one byte from any path (a device or a pipe
reports no size, so the read itself is bounded). Every check that can be made from the header
(size in bytes, format, pixel count, too few pixels for a face) is made before any pixel is
decoded, so a decompression bomb costs nothing. Decoding is strict: the one full decode runs
first, and any error in it refuses the picture. (Pillow remembers a failed decode and lets a
second `load()` return quietly with half a picture, which is why nothing may decode before it.)
JPEGs are decoded at a reduced scale by libjpeg itself (`draft`), which makes a 12 MP photo
about as cheap as a 3 MP one; then the picture is downscaled once, right after decoding. The working
picture stays a Pillow image: every later step (gray, the detector's inputs, drawing) starts from it.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from moodring.emotion import MIN_PICTURE_SIDE
from PIL import Image, ImageFile, UnidentifiedImageError

from moodring.errors import ImageError, first_line

SUPPORTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP"}
SUPPORTED_FORMATS |= {"TIFF": "TIFF", "AVIF": "AVIF"}
SUPPORTED_NAMES = "JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF"

# ISO-BMFF brands of HEIC/HEIF photos (iPhones' default), which Pillow cannot read without a plugin.
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}

EXIF_ORIENTATION = 0x0112
TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Pillow warns (it does not refuse) between its own 89 MP and 179 MP limits; as an error it reaches
# the `DecompressionBombError` handling below instead of printing a warning mid-output.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# Pillow's default, restated because decoding must stay strict: a truncated file is refused, never padded.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class WorkingImage:
    """The decoded picture, upright, at most `max_side` pixels long, plus its original upright size."""

    image: Image.Image
    """RGB, upright (EXIF orientation applied)."""
    width: int
    """Width of the original image after the EXIF transpose, in pixels."""
    height: int

    @property
    def scale(self) -> float:
        """Original pixels per working pixel, to report boxes in the caller's coordinates."""
        return self.width / self.image.width


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the picture file at `path`, reading at most `max_bytes + 1`; `ImageError` with one line if not.

    Regular files are refused by size before reading; devices and pipes, which report no size, by
    the bounded read itself. The message says why, not which file: callers put the path in front.
    """
    limit = f"the {max_bytes / 2**20:.1f} MiB limit (MOODRING_MAX_IMAGE_BYTES)"
    try:
        with open(path, "rb") as file:
            status = os.fstat(file.fileno())
            if stat.S_ISREG(status.st_mode) and status.st_size > max_bytes:
                raise ImageError(f"file is {status.st_size / 2**20:.1f} MiB, more than {limit}")
            data = file.read(max_bytes + 1)
    except IsADirectoryError:
        raise ImageError("is a folder, not a picture") from None
    except OSError as exc:
        raise ImageError(exc.strerror or first_line(exc)) from None
    if len(data) > max_bytes:
        raise ImageError(f"more than {limit}")
    return data


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, max_side: int) -> WorkingImage:
    """Decode `data` (an image file's bytes) or raise `ImageError` with a one-line reason."""
    if not data:
        raise ImageError("empty file (0 bytes), not an image")
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data) / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.1f} MiB limit")
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        raise ImageError(f"HEIC/HEIF images are not supported: send {SUPPORTED_NAMES}")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"not an image, or not a format Moodring reads ({SUPPORTED_NAMES})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"refused as a possible decompression bomb: {first_line(exc)}") from None
    except Exception as exc:  # a malformed header can raise almost anything inside a Pillow plugin
        raise ImageError(f"cannot read the image header: {first_line(exc)}") from None
    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise ImageError(f"unsupported image format {image.format}: send {SUPPORTED_NAMES}")
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                f"image is {width}x{height} ({width * height / 1e6:.0f} MP), more than the "
                f"{max_pixels / 1e6:g} MP limit: refused as a possible decompression bomb"
            )
        if min(width, height) < MIN_PICTURE_SIDE:
            raise ImageError(
                f"image is {width}x{height}: too small to hold a readable face "
                f"(at least {MIN_PICTURE_SIDE} px on each side)"
            )
        if image.format == "JPEG" or image.format == "MPO":
            # Largest libjpeg reduction (1/2, 1/4, 1/8) that keeps the longer side >= max_side.
            factor = max(1, max(width, height) // max_side)
            image.draft("RGB", (max(1, width // factor), max(1, height // factor)))
        try:
            image.load()  # the first and only decode: see the module docstring
            upright = _to_rgb(image)
        except Exception as exc:  # truncated data, bad Huffman tables, broken zlib streams...
            raise ImageError(f"cannot decode the image (truncated or corrupt): {first_line(exc)}") from None
        try:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        except Exception:  # unreadable EXIF only costs us the orientation, not the picture
            orientation = 1

    transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        upright = upright.transpose(transpose)
        if orientation >= 5:
            width, height = height, width
    return WorkingImage(fit(upright, max_side), width, height)


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale so the longer side is at most `max_side`, by area averaging (box filter), which never
    aliases; Pillow's bilinear widens its support when reducing and costs more for nothing here."""
    factor = max(image.size) / max_side
    if factor <= 1:
        return image
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    return image.resize(size, Image.Resampling.BOX)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB: 16-bit scaled down, transparency flattened onto white."""
    if image.mode in {"I;16", "I;16L", "I;16B", "I;16N", "I"}:
        # Pillow's own I -> L conversion clips at 255 instead of scaling 16-bit values.
        values = np.asarray(image, dtype=np.float32)
        scaled = np.clip(values / 257.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if image.mode == "F":
        return Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in {"RGBA", "LA", "PA", "La", "RGBa"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
