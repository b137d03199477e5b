"""Decide from Discord's metadata whether an attachment is worth downloading, then fetch it with a size cap.

Discord tells us an attachment's size and content type before we fetch a single byte, so a PDF or a
100 MB file is refused without touching the network. The download itself still stops at the cap,
because metadata is a claim, not a guarantee. The bytes stay in memory: nothing here writes to disk.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import aiohttp
import discord

from moodring.errors import AttachmentError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
"""Used only when Discord gives no content type (older uploads, some clients)."""

DOWNLOAD_CHUNK_BYTES = 64 * 1024


def looks_like_image(attachment: discord.Attachment) -> bool:
    """True when Discord says the file is an image (or, lacking a content type, its name says so)."""
    if attachment.content_type:
        return attachment.content_type.split(";")[0].strip().lower().startswith("image/")
    return PurePosixPath(attachment.filename).suffix.lower() in IMAGE_SUFFIXES


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_attachment(attachment: discord.Attachment, max_bytes: int) -> None:
    """Refuse, before any download, what is not an image or is larger than `max_bytes`."""
    if not looks_like_image(attachment):
        raise AttachmentError(
            f"`{attachment.filename}` isn't an image I can read. Send a selfie as a PNG, JPEG or WebP picture."
        )
    if attachment.size > max_bytes:
        raise AttachmentError(
            f"That image is {_megabytes(attachment.size)}; the largest I take is {_megabytes(max_bytes)}. "
            "Send a smaller picture."
        )
    if attachment.size == 0:
        raise AttachmentError(f"`{attachment.filename}` is empty.")


async def download(session: aiohttp.ClientSession, url: str, max_bytes: int, timeout: float = 20.0) -> bytes:
    """The file at `url`, read in chunks and abandoned as soon as it passes `max_bytes`."""
    too_large = AttachmentError(f"That image is larger than {_megabytes(max_bytes)}; send a smaller picture.")
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            response.raise_for_status()
            if response.content_length is not None and response.content_length > max_bytes:
                raise too_large
            received = bytearray()
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                received += chunk
                if len(received) > max_bytes:
                    raise too_large
            return bytes(received)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise AttachmentError(
            f"I couldn't download that image from Discord ({type(exc).__name__}); please try again."
        ) from None
