"""The bot with a store: each user's replies vary and are remembered, and a store outage costs memory, never a
reply. Real SQLite and PostgreSQL, dpytest's fake Discord, `/mood` by emotion."""

from __future__ import annotations

import dataclasses
import logging

from moodring.bot.app import create_bot

from moodring.store import Store, discord_user_key
from tests.bot.conftest import bot_settings, track_lines
from tests.harness import OfflineDiscord
from tests.store.conftest import start_postgres

SAD = {"name": "emotion", "type": 3, "value": "sad"}


async def ask(world: OfflineDiscord, user_index: int, emotion: str = "happy") -> list[str]:
    """`/mood emotion:<emotion>` as one user; the five track lines of the answer."""
    options = [{"name": "emotion", "type": 3, "value": emotion}]
    interaction = await world.slash(world.users[user_index], "mood", options=options)
    *_, answer = world.interactions.for_interaction(interaction)
    return track_lines(answer.embeds[0])


async def test_a_users_replies_vary_and_are_remembered_in_the_store(start_bot, database):
    world = await start_bot()
    first, second = await ask(world, 0), await ask(world, 0)
    assert len(first) == len(second) == 5 and not set(first) & set(second)
    served = database.recent_tracks
    assert len(served[discord_user_key(world.users[0].id)]) == 10
    assert discord_user_key(world.users[1].id) not in served


async def test_a_store_outage_costs_memory_not_replies(pipeline, shared_data, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # dpytest stores the files the bot uploads in the working directory
    cluster = start_postgres()  # its own server, stopped mid-test
    try:
        settings = bot_settings(shared_data, tmp_path)
        store = await Store.connect(dataclasses.replace(settings, database_url=cluster.create_database()))
        recognizer, recommender = pipeline
        world = await OfflineDiscord.start(create_bot(settings, store, recognizer, recommender))
        try:
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
            await world.close()
            await store.close()
    finally:
        cluster.destroy()


async def test_a_strategy_chosen_in_mood_is_kept_for_the_user(start_bot, database):
    world = await start_bot()

    async def mood_of_answer(*options: dict) -> str:
        interaction = await world.slash(world.users[0], "mood", options=[SAD, *options])
        *_, answer = world.interactions.for_interaction(interaction)
        return next(field["name"] for field in answer.embeds[0]["fields"] if field["name"].startswith("Five songs"))

    assert "Happy mood" in await mood_of_answer()  # the server's default strategy lifts a sad mood
    assert "Sad mood" in await mood_of_answer({"name": "strategy", "type": 3, "value": "match"})
    assert "Sad mood" in await mood_of_answer()  # the user's choice is kept
    assert database.user_strategies == {discord_user_key(world.users[0].id): "match"}
