"""The bot with a store: each user's replies vary and are remembered, a removed server is forgotten, and a store
outage costs memory, never a reply. Real SQLite and PostgreSQL, dpytest's fake Discord, `/mood` by emotion."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from discord import app_commands
from moodring.bot.app import create_bot

from moodring.settings import Settings
from moodring.store import Store, discord_user_key
from tests.harness import InteractionDouble, OfflineDiscord
from tests.store.conftest import start_postgres


def _settings(shared: Path, tmp: Path, database_url: str) -> Settings:
    environ = {
        "MOODRING_DATA_DIR": str(shared),
        "MOODRING_CACHE_DIR": str(tmp / "cache"),
        "MOODRING_SPOTIFY_TOKEN_CACHE": str(tmp / "spotify-token.json"),
        "MOODRING_PLAYLIST_STORE": str(tmp / "playlists.json"),
        "MOODRING_COOLDOWN_SECONDS": "0",
        "MOODRING_WORKERS": "2",
        "MOODRING_RANKING": "blend",
        "MOODRING_DATABASE_URL": database_url,
    }
    if "MOODRING_MODEL" in os.environ:
        environ["MOODRING_MODEL"] = os.environ["MOODRING_MODEL"]
    return Settings.load(environ=environ)


@pytest.fixture(scope="module")
def recognizer(shared_data: Path):
    from moodring.emotion import EmotionRecognizer

    return EmotionRecognizer.from_settings(Settings.load(environ={"MOODRING_DATA_DIR": str(shared_data)}))


@pytest.fixture
async def bot_with_store(recognizer, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start a bot whose store is at the given URL; bot and store closed after the test."""
    monkeypatch.chdir(tmp_path)  # dpytest stores the files the bot uploads in the working directory
    opened: list[tuple[OfflineDiscord, Store]] = []

    async def start(database_url: str) -> tuple[OfflineDiscord, Store]:
        settings = _settings(shared_data, tmp_path, database_url)
        store = await Store.connect(settings)
        world = await OfflineDiscord.start(create_bot(settings, recognizer, store=store), users=2)
        opened.append((world, store))
        return world, store

    yield start
    for world, store in opened:
        await world.close()
        await store.close()


async def ask(world: OfflineDiscord, user_index: int, emotion: str = "happy") -> list[str]:
    """`/mood emotion:<emotion>` as one user; the five track lines of the reply."""
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[user_index].id)
    await cog.mood.callback(cog, interaction, emotion=app_commands.Choice(name=emotion, value=emotion))
    [answer] = interaction.answers
    songs = next(field for field in answer.kwargs["embed"].fields if field.name.startswith("Five songs"))
    return songs.value.splitlines()


async def test_a_users_replies_vary_and_are_remembered_in_the_store(bot_with_store, tmp_path: Path):
    world, store = await bot_with_store(f"sqlite:///{tmp_path / 'moodring.db'}")
    assert world.bot.get_cog("Servers") is not None
    first, second = await ask(world, 0), await ask(world, 0)
    assert len(first) == len(second) == 5 and not set(first) & set(second)
    user_key = discord_user_key(world.users[0].id)
    assert len(await store.recent_track_ids(user_key, 20)) == 10
    assert await store.recent_track_ids(discord_user_key(world.users[1].id), 20) == []


async def test_a_removed_server_is_forgotten(bot_with_store, tmp_path: Path):
    world, store = await bot_with_store(f"sqlite:///{tmp_path / 'moodring.db'}")
    await store.update_guild_settings(world.guild.id, strategy="match")
    world.bot.dispatch("guild_remove", world.guild)
    await world.settle()
    assert (await store.guild_settings(world.guild.id)).strategy == "notebook"


async def test_a_store_outage_costs_memory_not_replies(bot_with_store, caplog):
    cluster = start_postgres()  # its own server, stopped mid-test
    try:
        world, store = await bot_with_store(cluster.create_database())
        await ask(world, 0)
        cluster.stop()
        with caplog.at_level(logging.WARNING, logger="moodring.store"):
            replies = [await ask(world, 0, emotion) for emotion in ("sad", "fear", "angry")]
        assert all(len(reply) == 5 for reply in replies)
        warnings = [record for record in caplog.records if record.name == "moodring.store"]
        assert len(warnings) == 1 and "answering without memory" in warnings[0].getMessage()
        cluster.start()
        await ask(world, 0)
        assert len(await store.recent_track_ids(discord_user_key(world.users[0].id), 20)) == 10
    finally:
        cluster.destroy()
