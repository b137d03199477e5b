"""Selfies and `/mood` through discord.py's own objects on dpytest's fake Discord (no network).

The recognizer and recommender are the real ones, built once per session; attachments are real bytes
served from a loopback HTTP server; `/mood` runs through the bot's command tree from an INTERACTION_CREATE.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal

import discord.http
from moodring.bot.answers import NO_FACE, REFUSED_REACTION, USAGE, WAIT_REACTION
from moodring.bot.app import serve
from moodring.bot.exts.feedback import rate_id
from moodring.bot.exts.mood import PICTURE_MAX_SIDE, PICTURE_NAME
from moodring.recommender import Recommender
from PIL import Image

from moodring import EMOTIONS
from tests.bot.conftest import bot_settings, selfie_option, track_lines
from tests.harness import LoopLagProbe


def _embed_lines(message) -> list[str]:
    return track_lines(message.embeds[0].to_dict())


# ---- posted selfies --------------------------------------------------------------------------


async def test_selfie_in_a_watched_channel_gets_one_reply_with_emotion_tracks_and_a_small_picture(
    start_bot, pipeline, selfie
):
    world = await start_bot()
    attachment = world.host.attachment(selfie, "me.jpg", "image/jpeg")
    posted = world.post(world.users[0], [attachment])
    await world.settle()

    [reply] = world.replies_to(posted)
    [embed] = reply.embeds
    expected = pipeline[0].analyze(selfie).emotion
    assert expected in EMOTIONS and expected in embed.title
    assert "Confidence" in embed.description
    scores = next(field for field in embed.fields if field.name == "Scores").value
    assert all(name in scores for name in EMOTIONS)
    lines = _embed_lines(reply)
    assert len(lines) == 5 and all(" — " in line and "](https://" in line for line in lines)
    [picture] = reply.attachments
    assert picture.filename == PICTURE_NAME and embed.image.url == f"attachment://{PICTURE_NAME}"
    with Image.open(io.BytesIO(await picture.read())) as image:
        assert image.format == "JPEG" and max(image.size) <= PICTURE_MAX_SIDE
    assert world.typing == [world.channels[0].id]
    assert world.host.downloaded(attachment) == 1


async def test_an_image_in_an_unwatched_channel_gets_no_reply_and_no_download(start_bot, selfie):
    world = await start_bot(watch=False)
    attachment = world.host.attachment(selfie, "me.jpg", "image/jpeg")
    posted = world.post(world.users[0], [attachment])
    chatter = world.post(world.users[1], content="hello")
    await world.settle()

    assert world.replies_to(posted) == [] and world.replies_to(chatter) == []
    assert world.sent == [] and world.reactions == []
    assert world.host.downloaded(attachment) == 0


async def test_an_at_mention_with_a_selfie_gets_a_reply_in_any_channel(start_bot, selfie):
    world = await start_bot(watch=False)
    posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], world.mention)
    await world.settle()

    [reply] = world.replies_to(posted)
    assert len(_embed_lines(reply)) == 5


async def test_selfies_off_leaves_watched_channels_alone_but_mentions_still_work(start_bot, selfie):
    world = await start_bot()
    await world.bot.store.update_guild_settings(world.guild.id, answer_selfies=False)
    quiet = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    mentioned = world.post(world.users[1], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], world.mention)
    await world.settle()

    assert world.replies_to(quiet) == [] and len(world.replies_to(mentioned)) == 1


async def test_embed_only_servers_get_no_picture(start_bot, selfie):
    world = await start_bot()
    await world.bot.store.update_guild_settings(world.guild.id, reply_style="embed")
    posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.embeds and not reply.attachments and not reply.embeds[0].image


async def test_store_down_only_mentions_are_answered(start_bot, selfie, database):
    world = await start_bot()
    database.down = True
    watched = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    mentioned = world.post(world.users[1], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], world.mention)
    await world.settle()

    assert world.replies_to(watched) == []
    [reply] = world.replies_to(mentioned)
    assert reply.embeds  # answered without memory: the feedback buttons then say they can't record


async def test_several_faces_give_the_dominant_emotion_and_say_how_many(start_bot, selfie):
    with Image.open(io.BytesIO(selfie)) as face:
        pair = Image.new("RGB", (face.width * 2, face.height))
        pair.paste(face, (0, 0))
        pair.paste(face, (face.width, 0))
    buffer = io.BytesIO()
    pair.save(buffer, format="JPEG")
    world = await start_bot()
    posted = world.post(world.users[0], [world.host.attachment(buffer.getvalue(), "us.jpg", "image/jpeg")])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert "2 faces" in reply.embeds[0].description
    assert len(_embed_lines(reply)) == 5


async def test_picture_without_a_face_gets_a_friendly_reply(start_bot, landscape):
    world = await start_bot()
    posted = world.post(world.users[0], [world.host.attachment(landscape, "view.png", "image/png")])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.content == NO_FACE and not reply.embeds and not reply.attachments


async def test_refusals_in_a_server_are_reactions_and_nothing_is_downloaded(start_bot, selfie):
    world = await start_bot(MOODRING_MAX_ATTACHMENT_BYTES=str(len(selfie) - 1))
    document = world.host.attachment(b"%PDF-1.7 not a selfie", "notes.pdf", "application/pdf")
    too_large = world.host.attachment(selfie, "big.jpg", "image/jpeg")
    posts = [world.post(world.users[0], [document]), world.post(world.users[1], [too_large])]
    await world.settle()

    assert world.sent == []
    assert [world.reactions_on(posted) for posted in posts] == [[REFUSED_REACTION], [REFUSED_REACTION]]
    assert world.host.downloaded(document) == world.host.downloaded(too_large) == 0


async def test_refusals_in_a_dm_are_said_in_words(start_bot):
    world = await start_bot()
    dm = await world.dm_channel(world.users[0])
    document = world.host.attachment(b"%PDF-1.7 not a selfie", "notes.pdf", "application/pdf")
    posted = world.post(world.users[0], [document], channel=dm)
    await world.settle()

    [reply] = world.replies_to(posted)
    assert "isn't an image" in reply.content
    assert world.host.downloaded(document) == 0


async def test_download_stops_at_the_cap_when_the_declared_size_is_wrong(start_bot, selfie):
    world = await start_bot(MOODRING_MAX_ATTACHMENT_BYTES=str(len(selfie) // 2))
    posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg", declared_size=1000)])
    await world.settle()

    assert world.sent == [] and world.reactions_on(posted) == [REFUSED_REACTION]


async def test_twenty_posts_at_once_give_at_most_queue_size_messages_and_a_reaction_on_every_other(start_bot, selfie):
    world = await start_bot(users=20, MOODRING_QUEUE_SIZE="2", MOODRING_WORKERS="1")
    posts = [world.post(user, [world.host.attachment(selfie, "me.jpg", "image/jpeg")]) for user in world.users]
    await world.settle()

    answered = [posted for posted in posts if world.replies_to(posted)]
    assert 1 <= len(world.sent) <= 2 and all(len(world.replies_to(posted)) == 1 for posted in answered)
    others = [posted for posted in posts if posted not in answered]
    assert len(others) >= 18 and all(world.reactions_on(posted) == [WAIT_REACTION] for posted in others)


async def test_cooldown_refuses_a_second_selfie_too_soon_with_a_reaction(start_bot, selfie):
    world = await start_bot(MOODRING_COOLDOWN_SECONDS="60")
    first = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()
    second = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()

    assert world.replies_to(first)[0].embeds
    assert world.replies_to(second) == [] and world.reactions_on(second) == [WAIT_REACTION]
    assert len(world.sent) == 1


async def test_event_loop_stays_responsive_while_a_batch_is_analysed(start_bot, selfie):
    batch = 6
    world = await start_bot(channels=batch, users=batch, watch=False)
    async with LoopLagProbe() as probe:
        posts = [
            world.post(user, [world.host.attachment(selfie, "me.jpg", "image/jpeg")], world.mention, channel)
            for user, channel in zip(world.users, world.channels, strict=True)
        ]
        await world.settle()

    assert all(len(world.replies_to(posted)) == 1 for posted in posts)
    assert sum(bool(world.replies_to(posted)[0].embeds) for posted in posts) == batch
    # Were the model run on the loop, the timer could fire only between selfies, each wake-up late by a
    # whole analysis (tens of ms or more). Off the loop it keeps firing, typically on time; the median is
    # used because the tail also reflects other processes competing for the CPU (see benchmarks/bot_load.py).
    assert len(probe.lags) > 20 and probe.percentile(50) < 0.02


async def test_direct_message_without_a_picture_gets_usage_help(start_bot):
    world = await start_bot()
    dm = await world.dm_channel(world.users[0])
    posted = world.post(world.users[0], content="hi", channel=dm)
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.content == USAGE


async def test_sigterm_finishes_admitted_requests_then_closes_everything(
    start_bot, selfie, monkeypatch, discord_accepting_tokens
):
    world = await start_bot()
    bot = world.bot
    connected = asyncio.Event()

    async def gateway_session(token: str) -> None:  # Discord's gateway is out of reach: a session that
        connected.set()  # lasts, like the real one, until the bot is closed
        while not bot.is_closed():
            await asyncio.sleep(0.01)

    bot.start = gateway_session
    monkeypatch.setattr(discord.http.Route, "BASE", discord_accepting_tokens)  # the token check asks it

    async def post_then_terminate():
        await connected.wait()
        posted = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
        while bot.work.in_flight == 0:  # admitted: downloading or analysing
            await asyncio.sleep(0.001)
        os.kill(os.getpid(), signal.SIGTERM)
        return posted

    user = asyncio.create_task(post_then_terminate())
    await serve(bot, "token")
    posted = await user
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.embeds
    assert bot.is_closed() and bot.work.closing and bot.http_session.closed


# ---- /mood -----------------------------------------------------------------------------------


async def test_mood_without_picture_or_emotion_answers_usage_privately(start_bot):
    world = await start_bot()
    interaction = await world.slash(world.users[0], "mood")

    [call] = world.interactions.for_interaction(interaction)
    assert call.kind == "respond" and call.content == USAGE and call.ephemeral


async def test_mood_with_selfie_defers_then_follows_up_with_the_embed_and_buttons(start_bot, selfie):
    world = await start_bot()
    options, resolved = selfie_option(world, world.host.attachment(selfie, "me.jpg", "image/jpeg"))
    interaction = await world.slash(world.users[0], "mood", options=options, resolved=resolved)

    defer, followup = world.interactions.for_interaction(interaction)
    assert defer.kind == "defer" and followup.kind == "followup" and not followup.ephemeral
    assert len(track_lines(followup.embeds[0])) == 5 and followup.files == [PICTURE_NAME]
    buttons = [button["custom_id"] for row in followup.components for button in row["components"]]
    assert buttons == [rate_id(True, world.users[0].id), rate_id(False, world.users[0].id)]


async def test_mood_with_emotion_only_recommends_for_it(start_bot):
    world = await start_bot()
    options = [{"name": "emotion", "type": 3, "value": "sad"}, {"name": "strategy", "type": 3, "value": "match"}]
    interaction = await world.slash(world.users[0], "mood", options=options)

    defer, followup = world.interactions.for_interaction(interaction)
    assert defer.kind == "defer" and "sad" in followup.embeds[0]["title"]
    assert len(track_lines(followup.embeds[0])) == 5 and followup.files == []


async def test_mood_with_an_unknown_emotion_names_the_seven_privately(start_bot):
    world = await start_bot()
    options = [{"name": "emotion", "type": 3, "value": "ecstatic"}]
    interaction = await world.slash(world.users[0], "mood", options=options)

    [call] = world.interactions.for_interaction(interaction)
    assert call.kind == "respond" and call.ephemeral and "ecstatic" in call.content
    assert all(name in call.content for name in EMOTIONS)


async def test_mood_refuses_a_non_image_privately_without_deferring(start_bot):
    world = await start_bot()
    document = world.host.attachment(b"hello", "notes.txt", "text/plain")
    options, resolved = selfie_option(world, document)
    interaction = await world.slash(world.users[0], "mood", options=options, resolved=resolved)

    [call] = world.interactions.for_interaction(interaction)
    assert call.kind == "respond" and "isn't an image" in call.content and call.ephemeral
    assert world.host.downloaded(document) == 0


async def test_a_failure_after_the_defer_stays_private(start_bot):
    world = await start_bot()
    broken = world.host.attachment(b"\x89PNG but not really", "me.png", "image/png")
    options, resolved = selfie_option(world, broken)
    interaction = await world.slash(world.users[0], "mood", options=options, resolved=resolved)

    defer, removed, followup = world.interactions.for_interaction(interaction)
    assert defer.kind == "defer" and removed.kind == "delete_original"
    assert followup.kind == "followup" and followup.ephemeral and followup.content


async def test_spotify_down_the_reply_still_has_five_tracks(start_bot, shared_data, tmp_path, fake_spotify):
    environ = fake_spotify.environ(tmp_path, MOODRING_SPOTIFY_TIMEOUT="1")
    options = [{"name": "emotion", "type": 3, "value": "happy"}]
    with Recommender.from_settings(bot_settings(shared_data, tmp_path, **environ)) as recommender:
        world = await start_bot(recommender=recommender, **environ)
        while_up = await world.slash(world.users[0], "mood", options=options)
        fake_spotify.down()
        while_down = await world.slash(world.users[1], "mood", options=options)

    up = world.interactions.for_interaction(while_up)[-1]
    links = [button.get("url") for row in up.components for button in row["components"]]
    assert any(link and link.startswith("https://open.spotify.com/playlist/") for link in links)
    down = world.interactions.for_interaction(while_down)[-1]
    assert len(track_lines(down.embeds[0])) == 5
    assert not any("url" in button for row in down.components for button in row["components"])


async def test_verbose_log_of_a_request_holds_no_secret_and_no_selfie_byte(start_bot, selfie, caplog):
    secrets = {"DISCORD_TOKEN": "discord-bot-token-do-not-log", "SPOTIPY_CLIENT_SECRET": "spotify-secret-do-not-log"}
    world = await start_bot(SPOTIPY_CLIENT_ID="client-id", **secrets)
    attachment = world.host.attachment(selfie, "me.jpg", "image/jpeg")
    options, resolved = selfie_option(world, attachment)
    with caplog.at_level(logging.DEBUG):
        await world.slash(world.users[0], "mood", options=options, resolved=resolved)
        world.post(world.users[1], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
        await world.settle()

    text = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert "answered interaction" in text and "answered message" in text  # the requests were logged
    interaction_tokens = [token for token in world.interactions.tokens]
    for secret in [*secrets.values(), *interaction_tokens]:
        assert secret not in text
    for start in range(0, len(selfie) - 16, 997):  # no stretch of the picture, raw or as hex
        chunk = selfie[start : start + 16]
        assert repr(chunk)[2:-1] not in text and chunk.hex() not in text
