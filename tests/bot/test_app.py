"""Starting the bot: intents, and failing in one line (exit 2) when Discord refuses or is out of reach.

The command-line tests run `moodring` in a subprocess against a loopback stand-in for Discord's REST API
(discord.py's `Route.BASE` pointed at it), so that the whole output, logging included, is what a user sees.
"""

from __future__ import annotations

import gc
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import discord
import pytest
from moodring.bot.app import build_intents, create_bot, serve
from moodring.bot.cli import NO_TOKEN

from moodring.cli import main
from moodring.errors import MoodringError
from moodring.settings import Settings
from tests.bot.conftest import discord_rest

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.bad.token-that-must-never-be-printed"
RUN_AGAINST = (
    "import sys, discord.http; discord.http.Route.BASE = sys.argv[1]; "
    "from moodring.cli import main; sys.exit(main(sys.argv[2:]))"
)


@pytest.fixture
def discord_rejecting_tokens() -> Iterator[str]:
    """A loopback Discord REST API that answers 401 to everything; yields its base URL."""
    with discord_rest(401, b'{"message": "401: Unauthorized", "code": 0}') as base_url:
        yield base_url


@pytest.fixture
def unreachable_discord() -> str:
    """The base URL of a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v10"


def _moodring(base_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {"DISCORD_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", RUN_AGAINST, base_url, *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2 and len(output.splitlines()) == 1, output
    assert "Traceback" not in output and TOKEN not in output
    return output


@pytest.mark.parametrize("command", [["bot"], ["sync-commands"], ["sync-commands", "--guild", "1"]])
def test_a_rejected_token_is_one_line_and_exit_2(discord_rejecting_tokens, tmp_path, command):
    output = _one_line(_moodring(discord_rejecting_tokens, tmp_path, *command))
    assert "rejected DISCORD_TOKEN" in output


def test_unreachable_discord_is_one_line_and_exit_2(unreachable_discord, tmp_path):
    output = _one_line(_moodring(unreachable_discord, tmp_path, "bot"))
    assert "cannot reach Discord" in output


def test_verbose_output_never_shows_the_token(discord_rejecting_tokens, tmp_path):
    result = _moodring(discord_rejecting_tokens, tmp_path, "-v", "bot")
    assert result.returncode == 2 and TOKEN not in result.stdout + result.stderr


def test_sync_commands_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sync-commands", "--help"])
    assert exited.value.code == 0 and "--guild" in capsys.readouterr().out


def test_bot_command_without_token_prints_one_line_and_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["bot"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"moodring: error: {NO_TOKEN}"


def test_intents_ask_for_message_content_only_for_channel_selfies(settings):
    with_channels = build_intents(settings)
    without = build_intents(Settings.load(environ={"MOODRING_SELFIES_IN_CHANNELS": "false"}))
    assert with_channels.message_content and with_channels.guild_messages and with_channels.dm_messages
    assert not without.message_content and without.guild_messages and without.dm_messages
    assert not with_channels.members and not with_channels.presences


async def test_serve_ends_with_one_line_error_and_a_closed_bot_when_discord_refuses(pipeline, settings):
    bot = create_bot(settings, None, *pipeline)
    with pytest.raises(MoodringError) as failure:  # offline: Discord unreachable; online: token rejected
        await serve(bot, "not-a-real-token")
    assert "\n" not in str(failure.value)
    assert bot.is_closed() and bot.work.closing


async def _application(world, flags: discord.ApplicationFlags) -> discord.AppInfo:
    """The application as login learns it from Discord (dpytest's answer, with these flags)."""
    data = await world.bot.http.application_info()
    return discord.AppInfo(world.bot._connection, {**data, "flags": flags.value})


async def test_without_the_message_content_intent_the_bot_asks_without_it_and_says_so_once(start_bot, caplog):
    world = await start_bot()
    with caplog.at_level(logging.INFO, logger="moodring"):
        world.bot.match_intents_to(await _application(world, discord.ApplicationFlags()))

    assert not world.bot.intents.message_content and world.bot.intents.guild_messages
    [said] = [record for record in caplog.records if record.name == "moodring.bot.app"]
    assert said.levelno == logging.WARNING and "Message Content" in said.getMessage()


async def test_with_the_intent_enabled_the_bot_keeps_it(start_bot):
    world = await start_bot()
    world.bot.match_intents_to(await _application(world, discord.ApplicationFlags(gateway_message_content=True)))
    assert world.bot.intents.message_content


async def test_what_start_up_built_is_left_out_of_full_collections_until_the_bot_closes(start_bot):
    world = await start_bot()
    frozen = gc.get_freeze_count()
    await world.close()

    assert frozen > 10_000  # modules, the model, the song table: not walked by a full collection
    assert gc.get_freeze_count() == 0
