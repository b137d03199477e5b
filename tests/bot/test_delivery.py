"""A missing permission never costs the user their answer: each way down, through the fake Discord.

Permissions are taken from the bot with channel overwrites (Discord's own rules then apply: dpytest refuses
a send without Send Messages; the harness refuses a file without Attach Files with 50013 and a reply
reference without Read Message History with 160002, and drops embeds without Embed Links), or Discord
refuses a send outright, as when a permission is taken between the check and the send.
"""

from __future__ import annotations

import logging

import pytest

from tests.bot.conftest import track_lines


@pytest.fixture
def no_tracebacks(caplog):
    """Fails the test if anything logged a traceback; yields the captured records."""
    with caplog.at_level(logging.INFO):
        yield caplog
    assert [record for record in caplog.records if record.exc_info] == []


async def _post_selfie(world, selfie):
    posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()
    return posted


async def test_without_attach_files_the_embed_comes_without_the_picture(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.deny(world.channels[0], "attach_files")
    [reply] = world.replies_to(await _post_selfie(world, selfie))

    assert not reply.attachments and reply.embeds and not reply.embeds[0].image
    assert len(track_lines(reply.embeds[0].to_dict())) == 5


async def test_without_embed_links_the_answer_is_plain_text(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.deny(world.channels[0], "embed_links")
    [reply] = world.replies_to(await _post_selfie(world, selfie))

    assert not reply.embeds and not reply.attachments
    assert "You look" in reply.content and reply.content.count(" — ") == 5


async def test_without_read_message_history_the_answer_is_sent_without_reference(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.deny(world.channels[0], "read_message_history")
    posted = await _post_selfie(world, selfie)

    [sent] = world.sent
    assert world.replies_to(posted) == [] and sent.channel.id == world.channels[0].id and sent.embeds


async def test_without_send_messages_one_dm_says_why_and_carries_the_answer(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.deny(world.channels[0], "send_messages")
    await _post_selfie(world, selfie)

    [dm] = world.sent
    assert dm.channel.id == (await world.dm_channel(world.users[0])).id
    assert "Send Messages" in dm.content and dm.embeds and world.typing == []


async def test_when_even_the_dm_fails_one_warning_line_is_logged(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.deny(world.channels[0], "send_messages")
    world.refuse_next_send(403, 50007, "Cannot send messages to this user")
    await _post_selfie(world, selfie)

    assert world.sent == []
    [warning] = [record for record in no_tracebacks.records if record.levelno >= logging.WARNING]
    assert "DMs are closed" in warning.getMessage() and "\n" not in warning.getMessage()


async def test_a_send_refused_with_50013_falls_back_to_plain_text(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.refuse_next_send(403, 50013, "Missing Permissions")
    await _post_selfie(world, selfie)

    [reply] = world.sent

    assert not reply.embeds and not reply.attachments and "You look" in reply.content


async def test_a_reply_refused_with_160002_is_sent_without_reference(start_bot, selfie, no_tracebacks):
    world = await start_bot()
    world.refuse_next_send(400, 160002, "Cannot reply without permission to read message history")
    posted = await _post_selfie(world, selfie)

    [sent] = world.sent
    assert world.replies_to(posted) == [] and sent.embeds and sent.attachments


async def test_refusal_reactions_without_add_reactions_log_one_line(start_bot, selfie, no_tracebacks):
    world = await start_bot(MOODRING_MAX_ATTACHMENT_BYTES="10")
    world.deny(world.channels[0], "add_reactions")
    await _post_selfie(world, selfie)

    assert world.sent == [] and world.reactions == []
    [warning] = [record for record in no_tracebacks.records if record.levelno >= logging.WARNING]
    assert "could not react" in warning.getMessage()
