"""Logging: set up once by the CLI, the right level per library, and no secret in any line it writes."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from moodring.log import REDACTED, configure_logging, redact
from moodring.settings import Settings

LOGGERS = ("moodring", "discord", "discord.http", "spotipy", "urllib3")
DISCORD_TOKEN = "MTE5OTk5.GfakeX.discord-token-for-tests-only"


@contextmanager
def plain_root_logger() -> Iterator[logging.Logger]:
    """The root logger as a plain `moodring` process has it (no pytest capture), restored afterwards.

    Entered inside the test body: pytest adds its capture handlers per phase, after fixtures ran.
    """
    root = logging.getLogger()
    saved_handlers, saved_levels = root.handlers[:], {name: logging.getLogger(name).level for name in ("", *LOGGERS)}
    root.handlers = []
    try:
        yield root
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved_handlers
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def levels() -> dict[str, str]:
    return {name: logging.getLevelName(logging.getLogger(name).level) for name in LOGGERS}


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        # spotipy's debug lines, as it writes them
        ("Sending GET to http://x/v1/me with Params: {} Headers: {'Authorization': 'Bearer abc.DEF-123'}", "v1/me"),
        ("POST to http://x/api/token with Headers: {'Authorization': 'Basic bW9vZDpzZWNyZXQ='}", "POST"),
        ("and Body: {'grant_type': 'authorization_code', 'code': 'one-time', 'code_verifier': 'xyz'}", "grant_type"),
        ("Body: {'refresh_token': 'r-123', 'grant_type': 'refresh_token', 'client_id': 'app'}", "client_id"),
        # a callback URL and a form body
        ("GET /callback?code=AQB-one-time&state=s1 HTTP/1.1", "state=s1"),
        ("grant_type=client_credentials&client_secret=s3cr3t", "grant_type"),
        # discord.py gateway payloads (an interaction token) and JSON
        ('{"t": "INTERACTION_CREATE", "d": {"token": "aW50ZXJhY3Rpb24", "id": "1"}}', "INTERACTION_CREATE"),
        ('{"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}', "expires_in"),
    ],
)
def test_redact_removes_every_credential_shape(line: str, kept: str) -> None:
    cleaned = redact(line)
    assert REDACTED in cleaned and kept in cleaned
    for secret in ("abc.DEF-123", "bW9vZDpzZWNyZXQ=", "one-time", "xyz", "r-123", "AQB-one-time", "s3cr3t"):
        assert secret not in cleaned
    assert "aW50ZXJhY3Rpb24" not in cleaned and "tok-1" not in cleaned


def test_redact_leaves_ordinary_lines_alone() -> None:
    for line in (
        "Spotify: no playlist link (Spotify answered HTTP 404); answered from the local song table",
        "https://accounts.spotify.com/authorize?client_id=app&response_type=code&code_challenge_method=S256",
        "recommender: 686 songs from songs.csv; Spotify on",
    ):
        assert redact(line) == line
    assert redact("the secret is hunter2, really", secrets=("hunter2",)) == f"the secret is {REDACTED}, really"


def test_levels_per_library_and_opt_ins() -> None:
    quiet = {"moodring": "INFO", "discord": "INFO", "discord.http": "WARNING", "spotipy": "CRITICAL", "urllib3": "INFO"}
    with plain_root_logger() as root:
        configure_logging(verbose=False, settings=Settings.load(environ={}))
        assert levels() == quiet
        configure_logging(verbose=True, settings=Settings.load(environ={}))
        assert levels() == {**quiet, "moodring": "DEBUG"}  # -v is Moodring's own reasoning, not the libraries' wire
        opted = Settings.load(environ={"MOODRING_DEBUG_DISCORD": "1", "MOODRING_DEBUG_SPOTIFY": "1"})
        configure_logging(verbose=False, settings=opted)
        assert levels() == quiet  # the opt-ins only widen -v
        configure_logging(verbose=True, settings=opted)
        assert set(levels().values()) == {"DEBUG"}
        assert len(root.handlers) == 1  # configured four times, one handler


def test_every_line_and_traceback_is_redacted() -> None:
    stream = io.StringIO()
    settings = Settings.load(environ={"SPOTIPY_CLIENT_SECRET": "plain-secret-42", "DISCORD_TOKEN": DISCORD_TOKEN})
    with plain_root_logger():
        configure_logging(verbose=True, settings=settings, stream=stream)
        logging.getLogger("moodring.test").debug("secret %s, token %s", "plain-secret-42", DISCORD_TOKEN)
        try:
            raise RuntimeError("refused: Authorization: Bearer leaked-in-a-traceback")
        except RuntimeError:
            logging.getLogger("some.library").exception("request failed")
    written = stream.getvalue()
    assert "plain-secret-42" not in written and DISCORD_TOKEN not in written
    assert "leaked-in-a-traceback" not in written and "RuntimeError" in written and "secret <redacted>" in written
