"""The rating buttons under each answer: clicks through discord.py's view store, before and after a restart."""

from __future__ import annotations

import json

from moodring.bot.exts.feedback import FORGOTTEN, NO_MEMORY, NOT_YOURS, THANKS, rate_id


async def _answered(world, selfie):
    posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()
    [reply] = world.replies_to(posted)
    return reply


async def test_each_answer_has_the_two_rating_buttons(start_bot, selfie):
    world = await start_bot()
    reply = await _answered(world, selfie)

    user = world.users[0].id
    assert [button.get("custom_id") for button in world.buttons_on(reply)] == [
        rate_id(True, user),
        rate_id(False, user),
    ]


async def test_a_click_records_the_five_tracks_for_the_user_it_answered(start_bot, selfie, database):
    world = await start_bot()
    reply = await _answered(world, selfie)
    clicked = await world.click(world.users[0], reply, rate_id(True, world.users[0].id))

    [note] = world.interactions.for_interaction(clicked)
    assert note.ephemeral and note.content == THANKS[True]
    rated = database.feedback[f"discord:{world.users[0].id}"]
    assert len(rated) == 5 and all(liked for _, liked in rated)
    shown = [line.split("/track/")[1].rstrip(")") for line in reply.embeds[0].fields[-1].value.splitlines()]
    assert [track.track_id for track, _ in rated] == shown
    assert all(0 <= track.valence <= 1 and 0 <= track.energy <= 1 and track.artist for track, _ in rated)


async def test_someone_else_cannot_rate_an_answer(start_bot, selfie, database):
    world = await start_bot()
    reply = await _answered(world, selfie)
    clicked = await world.click(world.users[1], reply, rate_id(False, world.users[0].id))

    [note] = world.interactions.for_interaction(clicked)
    assert note.ephemeral and note.content == NOT_YOURS and database.feedback == {}


async def test_buttons_still_work_after_a_restart(start_bot, selfie, database):
    world = await start_bot(guild_id=5100, channel_ids=(5101,))
    reply = await _answered(world, selfie)
    await world.close()

    restarted = await start_bot(guild_id=5100, channel_ids=(5101,))
    # the same user, back after the restart
    clicked = await restarted.click(world.users[0], reply.id, rate_id(False, world.users[0].id))

    [note] = restarted.interactions.for_interaction(clicked)
    assert note.content == THANKS[False]
    assert [liked for _, liked in database.feedback[f"discord:{world.users[0].id}"]] == [False] * 5


async def test_an_unknown_answer_or_a_store_outage_is_said_privately(start_bot, database):
    world = await start_bot()
    mine = rate_id(True, world.users[0].id)
    unknown = await world.click(world.users[0], 987654321, mine)
    database.down = True
    outage = await world.click(world.users[0], 987654321, mine)

    [said_unknown] = world.interactions.for_interaction(unknown)
    [said_outage] = world.interactions.for_interaction(outage)
    assert said_unknown.ephemeral and said_unknown.content == FORGOTTEN
    assert said_outage.ephemeral and said_outage.content == NO_MEMORY


async def test_the_stored_reply_names_no_user(start_bot, selfie, database):
    world = await start_bot()
    reply = await _answered(world, selfie)

    stored = database.reply_tracks(reply.id)
    assert str(world.users[0].id) not in stored and len(json.loads(stored)) == 5


async def test_an_answer_older_than_thirty_days_is_forgotten_and_pruned_at_the_next_start(start_bot, selfie, database):
    world = await start_bot()
    reply = await _answered(world, selfie)
    database.age_replies(days=29)
    kept = await world.click(world.users[0], reply.id, rate_id(True, world.users[0].id))
    database.age_replies(days=2)
    aged = await world.click(world.users[0], reply.id, rate_id(True, world.users[0].id))

    assert [note.content for note in world.interactions.for_interaction(kept)] == [THANKS[True]]
    assert [note.content for note in world.interactions.for_interaction(aged)] == [FORGOTTEN]
    assert database.reply_tracks(reply.id) is not None
    await world.close()
    await start_bot()  # a restart prunes it
    assert database.reply_tracks(reply.id) is None
