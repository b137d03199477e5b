"""Every error class of Moodring, in one place.

`MoodringError` and its subclasses are failures a user can fix: each carries a one-line message, and the CLI
turns it into exit code 2. `SpotifyUnavailable` is internal: Spotify could not help in time, and the caller
falls back to the local song table.
"""

from __future__ import annotations


class MoodringError(Exception):
    """Base for expected failures: bad input, bad config, missing files. Message is one line."""

    exit_code = 2


class ConfigError(MoodringError):
    """A setting or command-line option has a value that cannot work."""


class DataError(MoodringError):
    """A data file is missing or not in the layout we expect."""


class ModelError(MoodringError):
    """A model file is missing, unreadable, or not a Moodring model."""

    @classmethod
    def not_found(cls, path: object) -> ModelError:
        """The one wording for a missing model file, whichever loader noticed it."""
        return cls(f"model file not found: {path} (train one with `moodring train`, or set MOODRING_MODEL)")


class DiscordUnavailable(MoodringError):
    """Discord could not be reached or refused the connection for a reason the user must fix."""


class AttachmentError(MoodringError):
    """An attachment the bot will not analyse; the message is what the user reads."""


class ImageError(MoodringError):
    """The bytes are not an image we can analyse (empty, corrupt, unsupported, too large)."""


class UnknownEmotionError(MoodringError):
    """An emotion that is not one of FER2013's seven classes (`moodring.EMOTIONS`)."""


class LoginError(MoodringError):
    """The Spotify login did not complete."""


class StoreUnavailable(MoodringError):
    """The database cannot be reached or written. At start the CLI exits 2 with it; while running, callers
    answer without memory (the store logs one warning per outage)."""


class SchemaTooNewError(MoodringError):
    """The database was migrated by a newer Moodring than this one; it is left untouched."""


class SpotifyUnavailable(Exception):
    """Spotify could not help in time; the message is the one-line reason we log."""


class NotFound(SpotifyUnavailable):
    """Spotify answered 404: the track or the remembered playlist no longer exists."""


class SpotifyRefused(SpotifyUnavailable):
    """Spotify refused the login (401 after a refresh, 403, or a refused refresh): only a new
    `moodring spotify-login` (or time) fixes it, so calls pause and the reason is logged once."""


class UnknownStrategyError(ConfigError):
    """A strategy name that `data/strategies.json` does not define."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line (its type name if it has none), for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
