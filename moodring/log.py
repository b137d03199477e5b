"""Logging, set up once by the `moodring` command (`configure_logging`), and never anywhere else.

Levels, so that `-v` shows Moodring's own reasoning without the libraries' wire traffic:

- `moodring.*`: INFO, DEBUG with `-v`;
- discord.py: INFO, and `discord.http` WARNING; DEBUG only with `-v` and `MOODRING_DEBUG_DISCORD=1`
  (its debug output carries interaction tokens and message content);
- spotipy: silent below CRITICAL (Moodring logs one line per fallback itself), and with urllib3 at DEBUG
  only with `-v` and `MOODRING_DEBUG_SPOTIFY=1` (its debug output carries bearer and Basic headers and the body
  of every token request);
- TensorFlow's Python logger: WARNING, INFO with `-v`;
- everything else: INFO.

Every line then passes `RedactSecrets`, a second line of defence: bearer/Basic credentials, tokens,
one-time codes, PKCE verifiers and client secrets become `<redacted>`, whichever library logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from moodring.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "<redacted>"
_SECRET_FIELDS = r"access_token|refresh_token|client_secret|code_verifier|code|token|id_token"
_PATTERNS = (
    # Authorization headers, in any spelling a library prints them: "Bearer abc", "Basic abc="
    re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I),
    # query strings and form bodies: code=abc&state=...
    re.compile(rf"\b({_SECRET_FIELDS})=[^&\s'\",;)]+"),
    # dict and JSON reprs: 'access_token': 'abc', "code": "abc"
    re.compile(rf"(['\"]({_SECRET_FIELDS})['\"]\s*:\s*)['\"][^'\"]*['\"]"),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with credentials replaced by `<redacted>`: known `secrets` verbatim, and anything that
    looks like a header, query or dict entry carrying a token, code or client secret."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}'{REDACTED}'", text)


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (and traceback) through `redact` before any handler formats it."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only its text changes."""
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class _MoodringHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (replaced, never doubled, when called again)."""


def configure_logging(verbose: bool, settings: Settings, stream: TextIO | None = None) -> None:
    """Set every logger's level, install the stderr handler, and redact secrets on every root handler.

    When something else already holds the root logger (pytest's log capture), its handlers are kept and
    only gain the redacting filter.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _MoodringHandler)]:
        root.removeHandler(handler)
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=[_MoodringHandler(stream or sys.stderr)])
    redaction = RedactSecrets((settings.spotify_client_secret or "", settings.discord_token or ""))
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redaction)
    root.setLevel(logging.INFO)

    logging.getLogger("moodring").setLevel(logging.DEBUG if verbose else logging.INFO)
    debug_discord = verbose and settings.debug_discord
    logging.getLogger("discord").setLevel(logging.DEBUG if debug_discord else logging.INFO)
    logging.getLogger("discord.http").setLevel(logging.DEBUG if debug_discord else logging.WARNING)
    debug_spotify = verbose and settings.debug_spotify
    logging.getLogger("spotipy").setLevel(logging.DEBUG if debug_spotify else logging.CRITICAL)
    logging.getLogger("urllib3").setLevel(logging.DEBUG if debug_spotify else logging.INFO)
    # Keras' export narrates its temporary files ("Assets written to: /tmp/..."), which asks nothing of a user.
    logging.getLogger("tensorflow").setLevel(logging.INFO if verbose else logging.WARNING)
