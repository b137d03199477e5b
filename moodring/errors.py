"""Errors a user can fix: each carries a one-line message, and the CLI turns it into exit code 2."""

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


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line (its type name if it has none), for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
