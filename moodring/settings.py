"""One settings object for every part of Moodring, read from the environment and `.env`.

Every setting has a default that works on a fresh clone with `../shared` beside it, so nothing
needs configuring to try the bot's pipeline. `.env.example` documents each variable; keep the
two in step (a test checks that every field here is named there).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from moodring.errors import ConfigError
from moodring.models import SHIPPED_NAME, SHIPPED_TFLITE

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
"""`../shared/data` beside a source checkout; an installed wheel sets MOODRING_DATA_DIR to train."""


def _path(value: str) -> Path:
    return Path(value).expanduser()


RENAMED_MODELS = {"moodring-cnn": SHIPPED_NAME}
"""Shipped model stems renamed on 2026-12-02 (old -> new): a setting naming the old file still works, with a warning."""


def _model_path(value: str) -> Path:
    """MOODRING_MODEL; a missing file under a pre-rename name is taken as its renamed sibling, so an old `.env` keeps
    serving the same model until it is updated."""
    path = _path(value)
    new_stem = RENAMED_MODELS.get(path.stem)
    if new_stem is None or path.suffix not in {".keras", ".tflite"} or path.exists():
        return path
    renamed = path.with_stem(new_stem)
    if not renamed.is_file():
        return path
    log.warning("MOODRING_MODEL=%s: that file is now %s, used instead; update MOODRING_MODEL", path, renamed.name)
    return renamed


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def parse_int_list(value: str) -> tuple[int, ...]:
    """Parse "1,2 3" (commas and/or spaces): the one list syntax for settings, CLI flags and benchmarks."""
    return tuple(int(part) for part in value.replace(",", " ").split())


def _optional_str(value: str) -> str | None:
    return value or None


def _setting(env: str, default, parse, secret: bool = False):
    """A dataclass field that remembers which environment variable sets it and how to parse it."""
    return field(default=default, metadata={"env": env, "parse": parse, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build it with `Settings.load()`; tests pass their own mapping."""

    # Data and models
    data_dir: Path = _setting("MOODRING_DATA_DIR", DEFAULT_DATA_DIR, _path)
    fer2013: Path | None = _setting("MOODRING_FER2013", None, _path)
    model: Path = _setting("MOODRING_MODEL", SHIPPED_TFLITE, _model_path)
    runs_dir: Path = _setting("MOODRING_RUNS_DIR", Path("runs"), _path)
    cache_dir: Path = _setting("MOODRING_CACHE_DIR", Path("~/.cache/moodring").expanduser(), _path)

    # Selfie pipeline limits: refuse before decoding what would cost too much memory or time.
    max_image_bytes: int = _setting("MOODRING_MAX_IMAGE_BYTES", 20 * 1024 * 1024, _int)
    max_image_pixels: int = _setting("MOODRING_MAX_IMAGE_PIXELS", 40_000_000, _int)
    working_max_side: int = _setting("MOODRING_WORKING_MAX_SIDE", 1024, _int)
    tight_crop_max_side: int = _setting("MOODRING_TIGHT_CROP_MAX_SIDE", 96, _int)
    face_min_score: float = _setting("MOODRING_FACE_MIN_SCORE", 0.5, _float)  # MediaPipe's default confidence
    # Off: the shipped model averages its own test-time views (`moodring ensemble --views`); on for a bare net.
    flip_average: bool = _setting("MOODRING_FLIP_AVERAGE", False, _bool)

    # Recommender
    songs: Path | None = _setting("MOODRING_SONGS", None, _path)
    strategy: str = _setting("MOODRING_STRATEGY", "notebook", str)
    recent_memory: int = _setting("MOODRING_RECENT_MEMORY", 20, _int)
    ranking: str = _setting("MOODRING_RANKING", "varied", str)
    seed: int = _setting("MOODRING_SEED", 0, _int)

    # Spotify (all optional: without credentials Moodring uses the local song table only)
    spotify_client_id: str | None = _setting("SPOTIPY_CLIENT_ID", None, _optional_str, secret=True)
    spotify_client_secret: str | None = _setting("SPOTIPY_CLIENT_SECRET", None, _optional_str, secret=True)
    spotify_redirect_uri: str = _setting("SPOTIPY_REDIRECT_URI", "http://127.0.0.1:8888/callback", str)
    spotify_api_url: str = _setting("MOODRING_SPOTIFY_API_URL", "https://api.spotify.com/v1/", str)
    spotify_accounts_url: str = _setting("MOODRING_SPOTIFY_ACCOUNTS_URL", "https://accounts.spotify.com", str)
    spotify_token_cache: Path = _setting(
        "MOODRING_SPOTIFY_TOKEN_CACHE", Path("~/.config/moodring/spotify-token.json").expanduser(), _path
    )
    playlist_store: Path = _setting(
        "MOODRING_PLAYLIST_STORE", Path("~/.config/moodring/playlists.json").expanduser(), _path
    )
    spotify_timeout: float = _setting("MOODRING_SPOTIFY_TIMEOUT", 2.0, _float)
    popularity_ttl: float = _setting("MOODRING_POPULARITY_TTL", 6 * 3600.0, _float)
    spotify_max_pause: float = _setting("MOODRING_SPOTIFY_MAX_PAUSE", 300.0, _float)
    debug_spotify: bool = _setting("MOODRING_DEBUG_SPOTIFY", False, _bool)

    # Discord bot
    discord_token: str | None = _setting("DISCORD_TOKEN", None, _optional_str, secret=True)
    discord_guild_id: int | None = _setting("DISCORD_GUILD_ID", None, lambda v: int(v) if v else None)
    watch_channels: tuple[int, ...] = _setting("MOODRING_WATCH_CHANNELS", (), parse_int_list)
    selfies_in_channels: bool = _setting("MOODRING_SELFIES_IN_CHANNELS", True, _bool)
    workers: int = _setting("MOODRING_WORKERS", os.cpu_count() or 1, _int)
    queue_size: int = _setting("MOODRING_QUEUE_SIZE", 8, _int)
    cooldown_seconds: float = _setting("MOODRING_COOLDOWN_SECONDS", 5.0, _float)
    max_attachment_bytes: int = _setting("MOODRING_MAX_ATTACHMENT_BYTES", 8 * 1024 * 1024, _int)
    debug_discord: bool = _setting("MOODRING_DEBUG_DISCORD", False, _bool)
    # A fleet: this process runs only `shard_ids` of `shard_count` shards (unset: all, Discord's recommended count)
    shard_count: int | None = _setting("MOODRING_SHARD_COUNT", None, lambda v: int(v) if v else None)
    shard_ids: tuple[int, ...] = _setting("MOODRING_SHARD_IDS", (), parse_int_list)

    # State (users' recent tracks, feedback, server settings, playlist ids). A URL may hold a password.
    # Unset: a SQLite file in the user's data folder (`moodring.store.default_database_url`).
    database_url: str | None = _setting("MOODRING_DATABASE_URL", None, _optional_str, secret=True)

    @property
    def fer2013_path(self) -> Path:
        """FER2013 in the canonical csv layout, or an image-folder copy (`train/`, `test/`)."""
        return self.fer2013 or self.data_dir / "fer2013" / "fer2013.csv.gz"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, dotenv: bool = True) -> Settings:
        """Read settings from `environ` (default: `os.environ`, after loading the `.env` of the folder the command runs
        in, or of the nearest folder above it: an installed wheel has no project folder of its own to look in).

        A value that does not parse is a `ConfigError` naming the variable, never a traceback.
        """
        if environ is None:
            if dotenv:
                from dotenv import find_dotenv, load_dotenv

                load_dotenv(find_dotenv(usecwd=True), override=False)
            environ = os.environ
        values = {}
        for spec in fields(cls):
            name = spec.metadata["env"]
            raw = environ.get(name)
            if raw is None:
                continue
            try:
                values[spec.name] = spec.metadata["parse"](raw)
            except ValueError as exc:
                shown = "<hidden>" if spec.metadata["secret"] else repr(raw)
                raise ConfigError(f"{name}={shown} is not valid: {exc}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that would only fail later, far from their cause."""
        positive = {
            "MOODRING_MAX_IMAGE_BYTES": self.max_image_bytes,
            "MOODRING_MAX_IMAGE_PIXELS": self.max_image_pixels,
            "MOODRING_WORKING_MAX_SIDE": self.working_max_side,
            "MOODRING_TIGHT_CROP_MAX_SIDE": self.tight_crop_max_side,
            "MOODRING_WORKERS": self.workers,
            "MOODRING_QUEUE_SIZE": self.queue_size,
            "MOODRING_MAX_ATTACHMENT_BYTES": self.max_attachment_bytes,
            "MOODRING_SPOTIFY_TIMEOUT": self.spotify_timeout,
            "MOODRING_SPOTIFY_MAX_PAUSE": self.spotify_max_pause,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.recent_memory < 0:
            raise ConfigError(f"MOODRING_RECENT_MEMORY must be >= 0, got {self.recent_memory}")
        if not 0 < self.face_min_score < 1:
            raise ConfigError(f"MOODRING_FACE_MIN_SCORE must be between 0 and 1, got {self.face_min_score}")
        if self.shard_count is not None and self.shard_count <= 0:
            raise ConfigError(f"MOODRING_SHARD_COUNT must be positive, got {self.shard_count}")
        if self.shard_ids:
            if self.shard_count is None:
                raise ConfigError("MOODRING_SHARD_IDS needs MOODRING_SHARD_COUNT (the fleet's total shard count)")
            wrong = [shard for shard in self.shard_ids if not 0 <= shard < self.shard_count]
            if wrong or len(set(self.shard_ids)) != len(self.shard_ids):
                raise ConfigError(
                    f"MOODRING_SHARD_IDS must be distinct shard numbers from 0 to {self.shard_count - 1}, "
                    f"got {','.join(map(str, self.shard_ids))}"
                )
        if self.cooldown_seconds < 0:
            raise ConfigError(f"MOODRING_COOLDOWN_SECONDS must be >= 0, got {self.cooldown_seconds}")

    def __repr__(self) -> str:  # secrets never reach logs through a stray repr()
        shown = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.metadata["secret"] and value is not None:
                value = "<set>"
            shown.append(f"{spec.name}={value!r}")
        return f"Settings({', '.join(shown)})"


def env_names() -> list[str]:
    """Every environment variable Moodring reads, for `.env.example` and its test."""
    return [spec.metadata["env"] for spec in fields(Settings)]
