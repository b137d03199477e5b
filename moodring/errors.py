"""Errors a user can fix: each carries a one-line message, and the CLI turns it into exit code 2."""


class MoodringError(Exception):
    """Base for expected failures: bad input, bad config, missing files. Message is one line."""

    exit_code = 2


class ConfigError(MoodringError):
    """A setting or command-line option has a value that cannot work."""


class DataError(MoodringError):
    """A data file is missing or not in the layout we expect."""


class ModelError(MoodringError):
    """A model file is missing, unreadable, or not a Moodring model."""
