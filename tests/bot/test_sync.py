"""Slash commands are published deliberately: one scope at a time, and at start-up only when changed."""

from __future__ import annotations

import pytest
from moodring.bot.sync import FINGERPRINT_KEY, sync_commands

from moodring.errors import ConfigError

COMMANDS = ["forget-me", "mood", "moodring"]


def _names(commands: list[dict]) -> list[str]:
    return sorted(command["name"] for command in commands)


async def test_the_first_start_syncs_globally_and_a_restart_with_the_same_commands_does_not(start_bot):
    world = await start_bot()
    [(scope, commands)] = world.synced
    assert scope is None and _names(commands) == COMMANDS
    await world.close()

    restarted = await start_bot(registered=world.registered)
    assert restarted.synced == []


async def test_a_changed_command_tree_is_synced_at_start(start_bot, open_store, database):
    database.state[FINGERPRINT_KEY] = "the fingerprint of an older version"
    world = await start_bot()
    assert [scope for scope, _ in world.synced] == [None]


async def test_syncing_to_a_test_server_clears_the_global_commands(start_bot):
    old_mood = {"id": 1, "application_id": 1, "name": "mood", "description": "old", "type": 1, "version": 1}
    listed_globally = {None: [old_mood]}
    world = await start_bot(DISCORD_GUILD_ID="123456789012345678", registered=listed_globally)

    assert _names(world.registered[123456789012345678]) == COMMANDS and world.registered[None] == []
    assert [scope for scope, _ in world.synced] == [123456789012345678, None]


async def test_going_global_clears_the_test_server_synced_before(start_bot):
    world = await start_bot(DISCORD_GUILD_ID="123456789012345678")
    report = await sync_commands(world.bot, None)

    assert world.registered[123456789012345678] == [] and _names(world.registered[None]) == COMMANDS
    assert report.added == COMMANDS and report.cleared == "server 123456789012345678"
    assert "added: /forget-me, /mood, /moodring" in report.summary() and "cleared server" in report.summary()


async def test_a_second_sync_reports_the_commands_as_updated_in_place(start_bot):
    world = await start_bot()
    report = await sync_commands(world.bot, None)
    assert report.added == [] and report.removed == [] and report.kept == COMMANDS


async def test_a_refused_sync_is_one_line_naming_the_cause(start_bot):
    world = await start_bot()
    world.sync_refused = True
    with pytest.raises(ConfigError) as refused:
        await sync_commands(world.bot, 42)
    assert "\n" not in str(refused.value) and "applications.commands" in str(refused.value)
