"""Fixtures for the bot's tests: the store the bot is given, the selfie pipeline, bots on the fake Discord.

`open_store(settings)` opens the real store on this test's own SQLite file, so a bot restarted within a test
finds what the first one stored.
"""

from __future__ import annotations

import dataclasses
import http.server
import io
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from discord.ext.test import factories as facts
from moodring.bot.app import create_bot
from PIL import Image

from moodring.settings import Settings
from moodring.store import Store
from tests.bot.database import Database
from tests.harness import OfflineDiscord
from tests.paths import ROOT

SELFIE = ROOT / "examples" / "astronaut.jpg"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """This test's SQLite database, migrated, for the bots it starts and for the test to look into."""
    url = f"sqlite:///{tmp_path / 'moodring.db'}"
    store = await Store.connect(Settings.load(environ={"MOODRING_DATABASE_URL": url}))
    await store.close()
    with Database(tmp_path / "moodring.db", url) as opened:
        yield opened


@pytest.fixture
async def open_store(database: Database) -> AsyncIterator[Callable[[Settings], Awaitable[Store]]]:
    """Open the store on this test's database with `settings`' defaults (a bot restart finds what was stored)."""
    opened: list[Store] = []

    async def open_(settings: Settings) -> Store:
        opened.append(await Store.connect(dataclasses.replace(settings, database_url=database.url)))
        return opened[-1]

    yield open_
    for store in opened:
        await store.close()


def bot_settings(shared: Path, tmp: Path, **overrides: str) -> Settings:
    """Settings for one bot: isolated files, no cooldown, the model named by MOODRING_MODEL if set."""
    environ = {
        "MOODRING_DATA_DIR": str(shared),
        "MOODRING_CACHE_DIR": str(tmp / "cache"),
        "MOODRING_SPOTIFY_TOKEN_CACHE": str(tmp / "spotify-token.json"),
        "MOODRING_PLAYLIST_STORE": str(tmp / "playlists.json"),
        "MOODRING_COOLDOWN_SECONDS": "0",
        "MOODRING_WORKERS": "2",
    }
    if "MOODRING_MODEL" in os.environ:
        environ["MOODRING_MODEL"] = os.environ["MOODRING_MODEL"]
    environ.update(overrides)
    return Settings.load(environ=environ)


@pytest.fixture(scope="session")
def pipeline(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real selfie pipeline and recommender, loaded once for every bot in the session."""
    from moodring.emotion import EmotionRecognizer
    from moodring.recommender import Recommender

    settings = bot_settings(shared_data, tmp_path_factory.mktemp("pipeline"))
    recognizer = EmotionRecognizer.from_settings(settings)
    recommender = Recommender.from_settings(settings)
    yield recognizer, recommender
    recommender.close()


@pytest.fixture(scope="session")
def selfie() -> bytes:
    return SELFIE.read_bytes()


@pytest.fixture(scope="session")
def landscape() -> bytes:
    """A picture with no face in it: a smooth sky-to-grass gradient."""
    image = Image.new("RGB", (320, 240))
    image.putdata(
        [
            (90 + y // 3, 150 + y // 4, 230 - y // 2) if y < 160 else (40, 140, 50)
            for y in range(240)
            for _ in range(320)
        ]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def start_bot(pipeline, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store):
    """Start a bot on the fake Discord with some settings overridden; closed (drained) after the test.

    Every bot a test starts opens a store on the test's one database, as restarts of a real bot do.
    """
    monkeypatch.chdir(tmp_path)  # dpytest stores the files the bot uploads in the working directory
    started: list[OfflineDiscord] = []

    async def start(
        channels: int = 1,
        users: int = 2,
        channel_ids: tuple[int, ...] = (),
        recommender=None,
        registered: dict | None = None,
        guild_id: int = -1,
        watch: bool = True,
        **overrides: str,
    ) -> OfflineDiscord:
        """`watch`: the first channel is watched (set up as an admin would), unless a test says otherwise."""
        recognizer, shared_recommender = pipeline
        settings = bot_settings(shared_data, tmp_path, **overrides)
        store = await open_store(settings)
        bot = create_bot(settings, store, recognizer, recommender or shared_recommender)
        world = await OfflineDiscord.start(
            bot, channels=channels, users=users, channel_ids=channel_ids, guild_id=guild_id, registered=registered
        )
        if watch:
            server = await store.guild_settings(world.guild.id)
            await store.update_guild_settings(
                world.guild.id, watched_channels=server.watched_channels | {world.channels[0].id}
            )
        started.append(world)
        return world

    yield start
    for world in started:
        await world.close()


def selfie_option(world: OfflineDiscord, attachment) -> tuple[list[dict], dict]:
    """`/mood selfie:` as Discord sends it: the option, and the attachment in `resolved`."""
    option = {"name": "selfie", "type": 11, "value": str(attachment.id)}
    return [option], {"attachments": {str(attachment.id): facts.dict_from_attachment(attachment)}}


def track_lines(embed: dict) -> list[str]:
    """The "Five songs" field of an embed (as sent: a dict), one line per track."""
    songs = next(field for field in embed["fields"] if field["name"].startswith("Five songs"))
    return songs["value"].splitlines()


@contextmanager
def discord_rest(status: int, body: bytes) -> Iterator[str]:
    """A loopback stand-in for Discord's REST API that answers every GET with `status` and `body` (JSON).

    Yields the base URL to put in `discord.http.Route.BASE`.
    """

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v10"
    finally:
        server.shutdown()


@pytest.fixture
def discord_accepting_tokens() -> Iterator[str]:
    """Discord's REST API accepting any token: `GET /users/@me` is the bot user."""
    with discord_rest(200, b'{"id": "1", "username": "Moodring", "discriminator": "0", "bot": true}') as base_url:
        yield base_url
