"""The Discord bot, driven through discord.py's own objects on dpytest's fake Discord (no network).

The recognizer and recommender are the real ones, built once per session; attachments are real
bytes served from a loopback HTTP server; `/mood` is called with an Interaction double.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
from pathlib import Path

import pytest
from discord import app_commands
from moodring.bot.app import build_intents, create_bot, serve
from moodring.bot.cli import NO_TOKEN
from moodring.bot.replies import BUSY, NO_FACE, SORRY, USAGE
from moodring.recommender import Recommender
from PIL import Image

from moodring import EMOTIONS
from moodring.cli import main
from moodring.errors import MoodringError
from moodring.settings import Settings
from tests.harness import InteractionDouble, LoopLagProbe, OfflineDiscord
from tests.paths import ROOT

SELFIE = ROOT / "examples" / "astronaut.jpg"


def _settings(shared: Path, tmp: Path, **overrides: str) -> Settings:
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

    settings = _settings(shared_data, tmp_path_factory.mktemp("pipeline"))
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
async def start_bot(pipeline, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start a bot on the fake Discord with some settings overridden; closed (drained) after the test."""
    monkeypatch.chdir(tmp_path)  # dpytest stores the files the bot uploads in the working directory
    started: list[OfflineDiscord] = []

    async def start(
        channels: int = 1, users: int = 2, channel_ids: tuple[int, ...] = (), recommender=None, **overrides: str
    ) -> OfflineDiscord:
        recognizer, shared_recommender = pipeline
        bot = create_bot(_settings(shared_data, tmp_path, **overrides), recognizer, recommender or shared_recommender)
        world = await OfflineDiscord.start(bot, channels=channels, users=users, channel_ids=channel_ids)
        started.append(world)
        return world

    yield start
    for world in started:
        await world.close()


def _track_lines(embed) -> list[str]:
    songs = next(field for field in embed.fields if field.name.startswith("Five songs"))
    return songs.value.splitlines()


# ---- selfie posts ----------------------------------------------------------------------------


async def test_selfie_post_gets_one_reply_with_emotion_five_tracks_and_annotated_image(start_bot, pipeline, selfie):
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
    lines = _track_lines(embed)
    assert len(lines) == 5 and all(" — " in line and "](https://" in line for line in lines)
    [annotated] = reply.attachments
    assert annotated.filename == "moodring.png" and embed.image.url == "attachment://moodring.png"
    with Image.open(io.BytesIO(await annotated.read())) as image:
        assert image.size == Image.open(SELFIE).size
    assert world.typing == [world.channels[0].id]
    assert world.host.downloaded(attachment) == 1


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
    assert len(_track_lines(reply.embeds[0])) == 5


async def test_picture_without_a_face_gets_a_friendly_reply(start_bot, landscape):
    world = await start_bot()
    posted = world.post(world.users[0], [world.host.attachment(landscape, "view.png", "image/png")])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.content == NO_FACE and not reply.embeds and not reply.attachments


async def test_non_image_is_refused_before_download(start_bot):
    world = await start_bot()
    dm = await world.dm_channel(world.users[0])
    document = world.host.attachment(b"%PDF-1.7 not a selfie", "notes.pdf", "application/pdf")
    posted = world.post(world.users[0], [document], channel=dm)
    await world.settle()

    [reply] = world.replies_to(posted)
    assert "isn't an image" in reply.content
    assert world.host.downloaded(document) == 0


async def test_oversized_image_is_refused_before_download(start_bot, selfie):
    world = await start_bot(MOODRING_MAX_ATTACHMENT_BYTES=str(len(selfie) - 1))
    attachment = world.host.attachment(selfie, "big.jpg", "image/jpeg")
    posted = world.post(world.users[0], [attachment])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert "the largest I take is" in reply.content
    assert world.host.downloaded(attachment) == 0


async def test_download_stops_at_the_cap_when_the_declared_size_is_wrong(start_bot, selfie):
    world = await start_bot(MOODRING_MAX_ATTACHMENT_BYTES=str(len(selfie) // 2))
    attachment = world.host.attachment(selfie, "me.jpg", "image/jpeg", declared_size=1000)
    posted = world.post(world.users[0], [attachment])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert "larger than" in reply.content and not reply.embeds


async def test_unreadable_image_gets_the_pipelines_message(start_bot):
    world = await start_bot()
    posted = world.post(world.users[0], [world.host.attachment(b"\x89PNG but not really", "me.png", "image/png")])
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.content and reply.content != SORRY and "\n" not in reply.content


async def test_busy_reply_when_the_queue_is_full(start_bot, selfie):
    world = await start_bot(users=3, MOODRING_QUEUE_SIZE="1", MOODRING_WORKERS="1")
    posts = [world.post(user, [world.host.attachment(selfie, "me.jpg", "image/jpeg")]) for user in world.users]
    await world.settle()

    replies = [world.replies_to(posted) for posted in posts]
    assert all(len(answers) == 1 for answers in replies)  # every request answered exactly once
    served = [answers[0] for answers in replies if answers[0].embeds]
    busy = [answers[0] for answers in replies if answers[0].content == BUSY]
    assert len(served) == 1 and len(busy) == 2


async def test_cooldown_refuses_a_second_selfie_too_soon(start_bot, selfie):
    world = await start_bot(MOODRING_COOLDOWN_SECONDS="60")
    first = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()
    second = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")])
    await world.settle()

    assert world.replies_to(first)[0].embeds
    [refusal] = world.replies_to(second)
    assert refusal.content.startswith("Easy there")


async def test_event_loop_stays_responsive_while_a_batch_is_analysed(start_bot, selfie):
    batch = 6
    world = await start_bot(channels=batch, users=batch)
    async with LoopLagProbe() as probe:
        posts = [
            world.post(user, [world.host.attachment(selfie, "me.jpg", "image/jpeg")], channel=channel)
            for user, channel in zip(world.users, world.channels, strict=True)
        ]
        await world.settle()

    assert all(len(world.replies_to(posted)) == 1 for posted in posts)
    assert sum(bool(world.replies_to(posted)[0].embeds) for posted in posts) == batch
    # Were the model run on the loop, the timer could fire only between selfies, each wake-up late by a
    # whole analysis (tens of ms or more). Off the loop it keeps firing, typically on time; the median is
    # used because the tail also reflects other processes competing for the CPU (see benchmarks/bot_load.py).
    assert len(probe.lags) > 20 and probe.percentile(50) < 0.02


async def test_selfies_outside_watched_channels_and_plain_chatter_are_ignored(start_bot, selfie):
    world = await start_bot(channels=2, channel_ids=(1001,), MOODRING_WATCH_CHANNELS="1001")
    watched, other = world.channels
    elsewhere = world.post(world.users[0], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], channel=other)
    chatter = world.post(world.users[1], content="hello", channel=watched)
    in_place = world.post(world.users[1], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], channel=watched)
    await world.settle()

    assert world.replies_to(elsewhere) == [] and world.replies_to(chatter) == []
    assert len(world.replies_to(in_place)) == 1  # and the bot does not answer its own reply
    assert len(world.sent) == 1


async def test_direct_message_without_a_picture_gets_usage_help(start_bot):
    world = await start_bot()
    dm = await world.dm_channel(world.users[0])
    posted = world.post(world.users[0], content="hi", channel=dm)
    await world.settle()

    [reply] = world.replies_to(posted)
    assert reply.content == USAGE


async def test_sigterm_finishes_admitted_requests_then_closes_everything(start_bot, selfie):
    world = await start_bot()
    bot = world.bot
    connected = asyncio.Event()

    async def gateway_session(token: str) -> None:  # Discord's gateway is out of reach: a session that
        connected.set()  # lasts, like the real one, until the bot is closed
        while not bot.is_closed():
            await asyncio.sleep(0.01)

    bot.start = gateway_session

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
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    await cog.mood.callback(cog, interaction)

    [call] = interaction.calls
    assert call.name == "send_message" and call.content == USAGE and call.kwargs["ephemeral"] is True


async def test_mood_with_selfie_defers_then_follows_up_with_the_embed(start_bot, selfie):
    world = await start_bot()
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    await cog.mood.callback(cog, interaction, selfie=world.host.attachment(selfie, "me.jpg", "image/jpeg"))

    defer, followup = interaction.calls
    assert defer.name == "defer" and followup.name == "followup.send"
    assert len(_track_lines(followup.kwargs["embed"])) == 5
    assert followup.kwargs["file"].filename == "moodring.png"


async def test_mood_with_emotion_only_recommends_for_it(start_bot):
    world = await start_bot()
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    sad = app_commands.Choice(name="sad", value="sad")
    match = app_commands.Choice(name="match my mood", value="match")
    await cog.mood.callback(cog, interaction, emotion=sad, strategy=match)

    defer, followup = interaction.calls
    assert defer.name == "defer"
    embed = followup.kwargs["embed"]
    assert "sad" in embed.title and len(_track_lines(embed)) == 5 and "file" not in followup.kwargs


async def test_mood_refuses_a_non_image_privately_without_deferring(start_bot):
    world = await start_bot()
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    document = world.host.attachment(b"hello", "notes.txt", "text/plain")
    await cog.mood.callback(cog, interaction, selfie=document)

    [call] = interaction.calls
    assert call.name == "send_message" and "isn't an image" in call.content and call.kwargs["ephemeral"]
    assert world.host.downloaded(document) == 0


async def test_unexpected_failure_is_logged_and_answered_politely(start_bot, caplog):
    world = await start_bot()
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    happy = app_commands.Choice(name="happy", value="happy")
    unknown = app_commands.Choice(name="made up", value="no-such-strategy")  # Discord would never send this
    with caplog.at_level(logging.ERROR, logger="moodring.bot.cog"):
        await cog.mood.callback(cog, interaction, emotion=happy, strategy=unknown)

    [answer] = interaction.answers
    assert answer.content == SORRY
    assert any("request failed" in record.message and record.exc_info for record in caplog.records)


async def test_spotify_down_the_reply_still_has_five_tracks(start_bot, selfie, shared_data, tmp_path, fake_spotify):
    environ = fake_spotify.environ(tmp_path, MOODRING_SPOTIFY_TIMEOUT="1")
    with Recommender.from_settings(_settings(shared_data, tmp_path, **environ)) as recommender:
        world = await start_bot(recommender=recommender, **environ)
        cog = world.bot.get_cog("Mood")
        while_up = InteractionDouble(world.users[0].id)
        await cog.mood.callback(cog, while_up, selfie=world.host.attachment(selfie, "me.jpg", "image/jpeg"))
        fake_spotify.down()
        while_down = InteractionDouble(world.users[1].id)
        await cog.mood.callback(cog, while_down, selfie=world.host.attachment(selfie, "me.jpg", "image/jpeg"))

    [up] = while_up.answers
    [button] = up.kwargs["view"].children
    assert button.url.startswith("https://open.spotify.com/playlist/")
    [down] = while_down.answers
    assert len(_track_lines(down.kwargs["embed"])) == 5 and "view" not in down.kwargs


async def test_mood_failing_before_it_runs_is_answered_politely(start_bot):
    world = await start_bot()
    cog = world.bot.get_cog("Mood")
    interaction = InteractionDouble(world.users[0].id)
    await cog.cog_app_command_error(interaction, app_commands.AppCommandError("options could not be read"))

    [call] = interaction.calls
    assert call.name == "send_message" and call.content == SORRY and call.kwargs["ephemeral"]


# ---- set-up, intents, command line -----------------------------------------------------------


async def test_setup_hook_syncs_mood_to_the_test_guild_when_set(start_bot):
    world = await start_bot(DISCORD_GUILD_ID="123456789012345678")
    [(guild_id, commands)] = world.synced
    assert guild_id == 123456789012345678 and [command["name"] for command in commands] == ["mood"]
    assert world.bot.get_cog("Mood") is not None


async def test_setup_hook_syncs_globally_without_a_test_guild(start_bot):
    world = await start_bot()
    [(guild_id, commands)] = world.synced
    assert guild_id is None and [command["name"] for command in commands] == ["mood"]


def test_intents_ask_for_message_content_only_for_channel_selfies(settings):
    with_channels = build_intents(settings)
    dms_only = build_intents(Settings.load(environ={"MOODRING_SELFIES_IN_CHANNELS": "false"}))
    assert with_channels.message_content and with_channels.guild_messages
    assert not dms_only.message_content and not dms_only.guild_messages and dms_only.dm_messages
    assert not with_channels.members and not with_channels.presences


async def test_serve_ends_with_one_line_error_and_a_closed_bot_when_discord_refuses(pipeline, settings):
    bot = create_bot(settings, *pipeline)
    with pytest.raises(MoodringError) as failure:  # offline: Discord unreachable; online: token rejected
        await serve(bot, "not-a-real-token")
    assert "\n" not in str(failure.value)
    assert bot.is_closed() and bot.work.closing


def test_bot_command_without_token_prints_one_line_and_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["bot"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"moodring: error: {NO_TOKEN}"
