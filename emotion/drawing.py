"""Draw each face's box and emotion on the picture, in memory, for the bot's reply or `--annotate`."""

from __future__ import annotations

import io

from moodring.emotion.image import WorkingImage, decode_image, fit
from moodring.emotion.recognizer import Analysis
from PIL import ImageDraw, ImageFont

from moodring.settings import Settings

COLOURS = {
    "angry": (230, 57, 70),
    "disgust": (106, 153, 78),
    "fear": (155, 93, 229),
    "happy": (255, 190, 11),
    "sad": (58, 134, 255),
    "surprise": (255, 0, 110),
    "neutral": (200, 200, 200),
}
OUTPUT_MAX_SIDE = 1024
"""Longest side of the annotated picture by default: enough to read, small enough to upload quickly."""
LOSSY_QUALITY = 85
"""JPEG/WebP quality: labels stay crisp at a fraction of PNG's size (a reply's picture is a preview)."""


def annotate(
    image: bytes | WorkingImage, analysis: Analysis, *, format: str = "PNG", max_side: int = OUTPUT_MAX_SIDE
) -> bytes:
    """The picture (upright, at most `max_side` px long) with every face boxed and labelled, as PNG/JPEG/WebP.

    `image` is the image file's bytes, or the picture `EmotionRecognizer.decode` gave the analysis (then it
    is not decoded a second time, and not changed). It is scaled down before drawing, so that the cost
    follows the size the picture is shown at (the bot asks for Discord's preview size) rather than the size
    of the upload.

    `analysis` must come from the same picture; boxes are in its original-pixel coordinates.
    Raises `ImageError` if the bytes are not an image.
    """
    if isinstance(image, WorkingImage):
        shown = fit(image.image, max_side)
        working = WorkingImage(shown if shown is not image.image else shown.copy(), image.width, image.height)
    else:
        defaults = Settings()
        working = decode_image(
            image,
            max_bytes=defaults.max_image_bytes,
            max_pixels=defaults.max_image_pixels,
            max_side=max_side,
        )
    picture = working.image  # this call's own picture: drawn on in place
    draw = ImageDraw.Draw(picture)
    longest = max(picture.size)
    line = max(2, round(longest / 250))
    font = ImageFont.load_default(size=max(12, round(longest / 32)))
    for face in analysis.faces:
        x, y, w, h = (value / working.scale for value in face.box)
        colour = COLOURS.get(face.emotion, (255, 255, 255))
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=line)
        label = f"{face.emotion} {face.scores[face.emotion]:.0%}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        pad = line
        label_h = bottom - top + 2 * pad
        label_y = y - label_h if y - label_h >= 0 else y + h  # above the box, or below it at the top edge
        draw.rectangle((x, label_y, x + right - left + 2 * pad, label_y + label_h), fill=colour)
        draw.text((x + pad - left, label_y + pad - top), label, fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    picture.save(out, format=format, **({"quality": LOSSY_QUALITY} if format.upper() in {"JPEG", "WEBP"} else {}))
    return out.getvalue()
