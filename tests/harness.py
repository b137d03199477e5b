"""Drive a real `MoodringBot` without a Discord connection; used by `tests/bot/` and `benchmarks/bot_load.py`.

- `OfflineDiscord` stands the bot up on dpytest's fake gateway and REST client (discord.py's own
  `Message`, `Attachment`, `TextChannel` objects; events go through the bot's real dispatch), records
  what the bot sends, types and syncs, and posts messages as users would.
- `AttachmentHost` is a loopback HTTP server in place of Discord's CDN: attachments carry real bytes,
  a real size and content type, and every download is counted (so "refused before download" is testable).
- `InteractionDouble` stands in for `discord.Interaction` when calling the `/mood` callback.
- `LoopLagProbe` measures how late the event loop runs a timer: the stall every other coroutine sees.

Needs the `dev` extra (dpytest). dpytest refuses sharded clients in `configure()` only because its
fake gateway has no shards; the bot talks to it through the same REST and dispatch paths either way,
so `OfflineDiscord` performs dpytest's configuration steps itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
from aiohttp import web
from discord.ext.test import backend, callbacks
from discord.ext.test import factories as facts
from discord.ext.test.runner import run_all_events
from discord.http import MultipartParameters
from moodring.bot.app import MoodringBot

_ids = itertools.count(1)


class AttachmentHost:
    """A loopback stand-in for Discord's attachment CDN that counts every download."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, str]] = {}
        self.downloads: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        """Listen on a free 127.0.0.1 port."""
        app = web.Application()
        app.router.add_get("/attachments/{key}/{filename}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening (safe to call twice)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.downloads[key] += 1
        data, content_type = self._files[key]
        return web.Response(body=data, content_type=content_type)

    def attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        declared_size: int | None = None,
    ) -> discord.Attachment:
        """A `discord.Attachment` whose URL serves `data`; `declared_size` lets metadata lie about the size."""
        key = str(next(_ids))
        self._files[key] = (data, content_type or "application/octet-stream")
        url = f"{self.base_url}/attachments/{key}/{filename}"
        payload: dict[str, Any] = {
            "id": int(key),
            "filename": filename,
            "size": len(data) if declared_size is None else declared_size,
            "url": url,
            "proxy_url": url,
        }
        if content_type is not None:
            payload["content_type"] = content_type
        return discord.Attachment(data=payload, state=backend.get_state())

    def downloaded(self, attachment: discord.Attachment) -> int:
        """How many times `attachment` was fetched."""
        return self.downloads[str(attachment.id)]


class OfflineDiscord:
    """One guild with text channels and users, served by dpytest, with the bot's setup_hook run."""

    def __init__(self, bot: MoodringBot, host: AttachmentHost) -> None:
        self.bot = bot
        self.host = host
        self.sent: list[discord.Message] = []
        self.sent_at: dict[int, float] = {}  # message id -> time.perf_counter() when the bot sent it
        self._reply_to: dict[int, int] = {}
        self.typing: list[int] = []
        self.synced: list[tuple[int | None, list[dict]]] = []
        self.guild: discord.Guild
        self.channels: list[discord.TextChannel] = []
        self.users: list[discord.User] = []

    @classmethod
    async def start(
        cls, bot: MoodringBot, *, channels: int = 1, users: int = 1, channel_ids: tuple[int, ...] = ()
    ) -> OfflineDiscord:
        """Connect `bot` to the fake Discord and run its `setup_hook` (cog loading and command sync).

        `channel_ids` fixes the ids of the first channels (to match `MOODRING_WATCH_CHANNELS`).
        """
        host = AttachmentHost()
        await host.start()
        world = cls(bot, host)
        backend.configure(bot)
        await bot._async_setup_hook()  # what `Client.login` does first: bind the bot (and dpytest's state) to this loop
        state = backend.get_state()
        callbacks.set_callback(world._record_sent, "send_message")
        callbacks.set_callback(world._record_typing, "send_typing")
        state.stop_dispatch()
        world.guild = backend.make_guild("Moodring test guild")
        ids = list(channel_ids) + [-1] * (channels - len(channel_ids))  # -1: dpytest picks an id
        world.channels = [
            backend.make_text_channel(f"selfies-{n}", world.guild, id_num=ids[n]) for n in range(channels)
        ]
        # With the bot's minimal intents (no Members intent) Discord sends authors as users and the
        # member list holds only the bot itself, which GUILD_CREATE always includes.
        world.users = [backend.make_user(f"user{n}", f"{n + 1:04}") for n in range(users)]
        bot_member = discord.Member(
            data=facts.make_member_dict(world.guild, state.user, []), guild=world.guild, state=state
        )
        world.guild._add_member(bot_member)
        state.start_dispatch()
        state.application_id = state.user.id  # what `login` learns from Discord; command sync needs it
        bot.tree._http = bot.http  # the command tree kept the real REST client from before `configure`
        world._dpytest_send_message = bot.http.send_message
        bot.http.send_message = world._send_message
        bot.http.bulk_upsert_global_commands = world._record_global_sync
        bot.http.bulk_upsert_guild_commands = world._record_guild_sync
        await bot.setup_hook()
        return world

    async def close(self) -> None:
        """Shut the bot down the way SIGTERM does, then stop the attachment host."""
        await self.bot.close()
        await self.host.close()

    # ---- what users do -----------------------------------------------------------------------

    def post(
        self,
        author: discord.abc.User,
        attachments: list[discord.Attachment] = (),
        content: str = "",
        channel: discord.abc.Messageable | None = None,
    ) -> discord.Message:
        """Post a message as `author`; the bot's handlers are scheduled, not awaited (see `settle`)."""
        return backend.make_message(content, author, channel or self.channels[0], attachments=list(attachments))

    async def dm_channel(self, user: discord.User) -> discord.DMChannel:
        """The DM channel between `user` and the bot."""
        return await user.create_dm()

    async def settle(self) -> None:
        """Wait until every event handler the posts started has finished (replies included)."""
        await run_all_events()

    # ---- what the bot did --------------------------------------------------------------------

    def replies_in(self, channel: discord.abc.Messageable) -> list[discord.Message]:
        """Messages the bot sent in `channel`, oldest first."""
        return [message for message in self.sent if message.channel.id == channel.id]

    def replies_to(self, message: discord.Message) -> list[discord.Message]:
        """Messages the bot sent as replies to `message`, oldest first."""
        return [sent for sent in self.sent if self._reply_to.get(sent.id) == message.id]

    async def _send_message(self, channel_id: int, *, params: MultipartParameters) -> dict:
        """dpytest's `send_message`, taught two things it drops: the embed of a message with a file
        (discord.py then sends it as multipart `payload_json`) and which message a reply answers."""
        payload = params.payload
        if payload is None and params.multipart:
            payload = json.loads(next(part["value"] for part in params.multipart if part["name"] == "payload_json"))
            params = MultipartParameters(payload=payload, multipart=params.multipart, files=params.files)
        channel = self.bot.get_channel(channel_id)  # noqa: F841 - dpytest reads `channel` from its caller's frame
        data = await self._dpytest_send_message(channel_id, params=params)
        reference = (payload or {}).get("message_reference")
        if reference is not None:
            self._reply_to[int(data["id"])] = int(reference["message_id"])
        return data

    async def _record_sent(self, message: discord.Message) -> None:
        self.sent.append(message)
        self.sent_at[message.id] = time.perf_counter()

    async def _record_typing(self, channel: discord.abc.Messageable) -> None:
        self.typing.append(channel.id)

    async def _record_global_sync(self, application_id: int, payload: list[dict]) -> list[dict]:
        self.synced.append((None, payload))
        return [_synced_command(application_id, None, command) for command in payload]

    async def _record_guild_sync(self, application_id: int, guild_id: int, payload: list[dict]) -> list[dict]:
        self.synced.append((guild_id, payload))
        return [_synced_command(application_id, guild_id, command) for command in payload]


def _synced_command(application_id: int, guild_id: int | None, command: dict) -> dict:
    """The application command Discord would return for an upserted `command` payload."""
    answer = {"id": next(_ids), "application_id": application_id, "version": 1, **command}
    if guild_id is not None:
        answer["guild_id"] = guild_id
    return answer


@dataclass
class Call:
    """One call the code under test made on the interaction: `defer`, `send_message` or `followup.send`."""

    name: str
    content: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)


class _ResponseDouble:
    def __init__(self, calls: list[Call]) -> None:
        self._calls = calls
        self._done = False

    def is_done(self) -> bool:
        return self._done

    def _respond(self) -> None:
        if self._done:  # Discord allows one initial response; discord.py raises InteractionResponded
            raise RuntimeError("this interaction has already been responded to")
        self._done = True

    async def defer(self, **kwargs: Any) -> None:
        self._respond()
        self._calls.append(Call("defer", None, kwargs))

    async def send_message(self, content: str | None = None, **kwargs: Any) -> None:
        self._respond()
        self._calls.append(Call("send_message", content, kwargs))


class _FollowupDouble:
    def __init__(self, calls: list[Call], response: _ResponseDouble) -> None:
        self._calls = calls
        self._response = response

    async def send(self, content: str | None = None, **kwargs: Any) -> None:
        if not self._response.is_done():  # Discord answers 404 Unknown Webhook before the first response
            raise RuntimeError("followup.send before the interaction was responded to")
        self._calls.append(Call("followup.send", content, kwargs))


class InteractionDouble:
    """Stands in for `discord.Interaction` when a test calls a slash command's callback: records every answer."""

    def __init__(self, user_id: int) -> None:
        self.id = next(_ids)
        self.user = SimpleNamespace(id=user_id, name=f"user{user_id}")
        self.calls: list[Call] = []
        self.response = _ResponseDouble(self.calls)
        self.followup = _FollowupDouble(self.calls, self.response)

    @property
    def answers(self) -> list[Call]:
        """The calls that delivered something to the user (everything but `defer`)."""
        return [call for call in self.calls if call.name != "defer"]


class LoopLagProbe:
    """While active, sleeps `interval` s in a loop and records how late each wake-up is (the loop's lag)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._measure())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - before - self.interval))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of the recorded lags, in seconds."""
        return percentile(self.lags, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0..100) of `values`; 0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
