"""`/moodring`, `/forget-me`, and joining or leaving a server, through the bot's command tree."""

from __future__ import annotations

import discord
from moodring.bot.exts.admin import NOT_WATCHING, STORE_DOWN, WELCOME

from moodring.store import FeedbackTrack

ADMIN = discord.Permissions(manage_guild=True) | discord.Permissions.text()


def _sub(name: str, **options: object) -> list[dict]:
    """A subcommand option as Discord sends it."""
    values = [{"name": key, "type": 3 if isinstance(v, str) else 5, "value": v} for key, v in options.items()]
    return [{"name": name, "type": 1, "options": values}]


async def test_moodring_is_refused_to_a_member_without_manage_server(start_bot):
    world = await start_bot(watch=False)
    member = discord.Permissions.text()
    interaction = await world.slash(world.users[0], "moodring", options=_sub("watch"), member_permissions=member)

    [call] = world.interactions.for_interaction(interaction)
    assert call.kind == "respond" and call.ephemeral and "Manage Server" in call.content
    assert (await world.bot.store.guild_settings(world.guild.id)).watched_channels == frozenset()


async def test_moodring_is_hidden_from_members_and_dms_by_default(start_bot):
    world = await start_bot()
    [moodring] = [command for command in world.registered[None] if command["name"] == "moodring"]
    assert int(moodring["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    assert moodring["contexts"] == [0]  # guild only
    [forget] = [command for command in world.registered[None] if command["name"] == "forget-me"]
    assert forget["default_member_permissions"] is None


async def test_an_admin_watches_a_channel_and_selfies_there_are_answered(start_bot, selfie):
    world = await start_bot(watch=False)
    interaction = await world.slash(world.users[0], "moodring", options=_sub("watch"), member_permissions=ADMIN)
    posted = world.post(world.users[1], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()

    [call] = world.interactions.for_interaction(interaction)
    assert call.ephemeral and world.channels[0].mention in call.content and NOT_WATCHING not in call.content
    assert len(world.replies_to(posted)) == 1


async def test_the_first_admin_hears_once_that_no_channel_is_watched(start_bot):
    world = await start_bot(watch=False)
    first = await world.slash(world.users[0], "moodring", options=_sub("settings"), member_permissions=ADMIN)
    second = await world.slash(world.users[1], "moodring", options=_sub("settings"), member_permissions=ADMIN)

    [said_first] = world.interactions.for_interaction(first)
    [said_second] = world.interactions.for_interaction(second)
    assert NOT_WATCHING in said_first.content and NOT_WATCHING not in said_second.content
    assert said_first.ephemeral and said_second.ephemeral


async def test_settings_show_what_the_bot_lacks_in_each_watched_channel(start_bot):
    world = await start_bot(channels=2)
    world.deny(world.channels[0], "attach_files", "embed_links")
    await world.bot.store.update_guild_settings(
        world.guild.id, watched_channels=frozenset({world.channels[0].id, world.channels[1].id})
    )
    interaction = await world.slash(world.users[0], "moodring", options=_sub("settings"), member_permissions=ADMIN)

    [call] = world.interactions.for_interaction(interaction)
    first, second = (line for line in call.content.splitlines() if line.startswith("•"))
    assert "Embed Links" in first and "Attach Files" in first
    assert "missing" not in second


async def test_settings_persist_across_a_bot_restart(start_bot, selfie):
    world = await start_bot(watch=False, guild_id=4200, channel_ids=(4242,))
    await world.slash(world.users[0], "moodring", options=_sub("watch"), member_permissions=ADMIN)
    await world.slash(world.users[0], "moodring", options=_sub("replies", style="embed"), member_permissions=ADMIN)
    await world.slash(world.users[0], "moodring", options=_sub("strategy", strategy="match"), member_permissions=ADMIN)
    await world.close()

    restarted = await start_bot(watch=False, guild_id=4200, channel_ids=(4242,))
    posted = restarted.post(restarted.users[0], [restarted.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await restarted.settle()
    server = await restarted.bot.store.guild_settings(restarted.guild.id)

    assert server.watched_channels == {4242} and server.reply_style == "embed" and server.strategy == "match"
    [reply] = restarted.replies_to(posted)
    assert reply.embeds and not reply.attachments  # watched, and embed-only, as set before the restart


async def test_an_unknown_reply_style_names_the_valid_ones(start_bot):
    world = await start_bot()
    options = _sub("replies", style="gif")
    interaction = await world.slash(world.users[0], "moodring", options=options, member_permissions=ADMIN)

    [call] = world.interactions.for_interaction(interaction)
    assert call.ephemeral and "`gif`" in call.content and "picture" in call.content and "embed" in call.content


async def test_forget_me_asks_first_then_deletes_everything_about_the_user(start_bot, database):
    world = await start_bot()
    user = world.users[0]
    track = FeedbackTrack("0" * 22, "Someone", 0.5, 0.5)
    await world.bot.store.record_feedback(f"discord:{user.id}", [track, track], True)
    await world.bot.store.record_feedback(f"discord:{world.users[1].id}", [track], True)
    asked = await world.slash(user, "forget-me")
    [prompt] = world.interactions.for_interaction(asked)
    confirm, _cancel = (button["custom_id"] for row in prompt.components for button in row["components"])
    assert prompt.ephemeral and database.feedback[f"discord:{user.id}"]

    prompt_id = 1  # an ephemeral message: discord.py finds the view by its custom ids
    someone_else = await world.click(world.users[1], prompt_id, confirm)
    [refused] = world.interactions.for_interaction(someone_else)
    assert refused.ephemeral and database.feedback[f"discord:{user.id}"]
    done = await world.click(user, prompt_id, confirm)

    [answer] = world.interactions.for_interaction(done)
    assert answer.kind == "update" and "2 records" in answer.content
    assert f"discord:{user.id}" not in database.feedback and database.feedback[f"discord:{world.users[1].id}"]


async def test_joining_a_server_posts_one_welcome_in_its_system_channel(start_bot):
    world = await start_bot(channels=2)
    world.set_system_channel(world.channels[1])
    world.bot.dispatch("guild_join", world.guild)
    await world.settle()

    [welcome] = world.sent
    assert welcome.channel.id == world.channels[1].id and welcome.content == WELCOME


async def test_no_welcome_where_the_bot_may_not_post(start_bot):
    world = await start_bot()
    world.set_system_channel(world.channels[0])
    world.deny(world.channels[0], "send_messages")
    world.bot.dispatch("guild_join", world.guild)
    await world.settle()

    assert world.sent == []


async def test_a_server_that_removes_the_bot_is_forgotten(start_bot, database):
    world = await start_bot()
    assert world.guild.id in database.guilds
    world.bot.dispatch("guild_remove", world.guild)
    await world.settle()

    assert world.guild.id not in database.guilds


async def test_with_the_store_down_moodring_says_so_privately(start_bot, database):
    world = await start_bot()
    database.down = True
    interaction = await world.slash(world.users[0], "moodring", options=_sub("settings"), member_permissions=ADMIN)

    [call] = world.interactions.for_interaction(interaction)
    assert call.ephemeral and call.content == STORE_DOWN
