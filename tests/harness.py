"""Drive a real `MoodringBot` without a Discord connection; used by `tests/bot/` and `benchmarks/bot_load.py`.

- `OfflineDiscord` stands the bot up on dpytest's fake gateway and REST client (discord.py's own
  `Message`, `Attachment`, `TextChannel` objects; events go through the bot's real dispatch), records
  what the bot sends, types, reacts and syncs, and posts messages as users would. Its REST side keeps
  Discord's rules that dpytest leaves out: a file needs Attach Files (else 403, code 50013), a reply
  reference needs Read Message History (else 400, code 160002), embeds need Embed Links (else dropped);
  slash commands are registered per scope as Discord keeps them.
- `FakeInteractions` stands in for Discord's interaction endpoints (responses, follow-ups): with it,
  `OfflineDiscord.slash` and `.click` send real `INTERACTION_CREATE` events through discord.py's command
  tree and view store, checks and option parsing included.
- `AttachmentHost` is a loopback HTTP server in place of Discord's CDN: attachments carry real bytes,
  a real size and content type, and every download is counted (so "refused before download" is testable).
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
from typing import Any

import discord
from aiohttp import web
from discord.ext.test import backend, callbacks
from discord.ext.test import factories as facts
from discord.http import MultipartParameters
from discord.webhook import async_ as webhook_rest
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


class FakeRequest:
    """The response half of an HTTP error, as discord.py's exceptions read it."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


def discord_error(status: int, code: int, message: str) -> discord.HTTPException:
    """The exception discord.py raises for Discord's JSON error `{"code": code, "message": message}`."""
    kind = discord.Forbidden if status == 403 else discord.HTTPException
    return kind(FakeRequest(status, message), {"code": code, "message": message})


@dataclass
class InteractionCall:
    """One call the bot made on Discord's interaction endpoints."""

    kind: str  # "respond", "defer", "update", "followup", "delete_original"
    interaction_id: int
    content: str | None = None
    embeds: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)
    ephemeral: bool = False
    message_id: int | None = None  # the message a public follow-up created


class FakeInteractions:
    """Discord's interaction callback and follow-up webhook endpoints, recording what the bot answers."""

    def __init__(self, world: OfflineDiscord) -> None:
        self.world = world
        self.calls: list[InteractionCall] = []
        self.tokens: dict[str, int] = {}  # interaction token -> interaction id

    def for_interaction(self, interaction_id: int) -> list[InteractionCall]:
        """Every call answering `interaction_id`, in order."""
        return [call for call in self.calls if call.interaction_id == interaction_id]

    @staticmethod
    def _payload(params: MultipartParameters | None, payload: dict | None, multipart: list | None) -> dict:
        if params is not None:
            payload, multipart = params.payload, params.multipart
        if payload is None and multipart:
            payload = json.loads(next(part["value"] for part in multipart if part["name"] == "payload_json"))
        return payload or {}

    @staticmethod
    def _call(kind: str, interaction_id: int, data: dict, files: list | None) -> InteractionCall:
        return InteractionCall(
            kind,
            interaction_id,
            content=data.get("content"),
            embeds=data.get("embeds") or [],
            files=[file.filename for file in files or []],
            components=data.get("components") or [],
            ephemeral=bool((data.get("flags") or 0) & 64),
        )

    async def create_interaction_response(self, interaction_id: int, token: str, *, params, **_: Any) -> dict:
        payload = self._payload(params, None, None)
        kind = {4: "respond", 5: "defer", 6: "defer", 7: "update"}[payload["type"]]
        self.calls.append(self._call(kind, interaction_id, payload.get("data") or {}, params.files))
        return {"interaction": {"id": str(interaction_id), "type": payload["type"]}}

    async def execute_webhook(
        self, webhook_id: int, token: str, *, payload=None, multipart=None, files=None, wait=False, **_: Any
    ) -> dict | None:
        data = self._payload(None, payload, multipart)
        call = self._call("followup", self.tokens[token], data, files)
        self.calls.append(call)
        if not wait:
            return None
        channel = self.world.channels[0]
        message = facts.make_message_dict(channel, self.world.bot.user, content=data.get("content"))
        message["embeds"] = call.embeds
        message["components"] = call.components
        call.message_id = int(message["id"])
        return message

    async def delete_original_interaction_response(self, application_id: int, token: str, **_: Any) -> None:
        self.calls.append(InteractionCall("delete_original", self.tokens[token]))


class OfflineDiscord:
    """One guild with text channels and users, served by dpytest, with the bot's setup_hook run."""

    def __init__(self, bot: MoodringBot, host: AttachmentHost) -> None:
        self.bot = bot
        self.host = host
        self.sent: list[discord.Message] = []
        self.sent_at: dict[int, float] = {}  # message id -> time.perf_counter() when the bot sent it
        self._reply_to: dict[int, int] = {}
        self._components: dict[int, list[dict]] = {}  # message id -> its buttons (dpytest drops them)
        self.typing: list[int] = []
        self.reactions: list[tuple[int, str]] = []  # (message id, emoji) the bot added
        self.synced: list[tuple[int | None, list[dict]]] = []
        self.registered: dict[int | None, list[dict]] = {None: []}  # scope (guild id or None) -> commands
        self.refusals: list[discord.HTTPException] = []  # raised by the next sends, first first
        self.sync_refused = False  # Discord answers 403 to command upserts (bot not in that server)
        self.interactions = FakeInteractions(self)
        self.guild: discord.Guild
        self.channels: list[discord.TextChannel] = []
        self.users: list[discord.User] = []

    @classmethod
    async def start(
        cls,
        bot: MoodringBot,
        *,
        channels: int = 1,
        users: int = 1,
        channel_ids: tuple[int, ...] = (),
        guild_id: int = -1,
        registered: dict[int | None, list[dict]] | None = None,
    ) -> OfflineDiscord:
        """Connect `bot` to the fake Discord and run its `setup_hook` (extensions, command sync).

        `channel_ids` and `guild_id` fix ids (-1: dpytest picks one), as a restart on the same server needs;
        `registered` is what Discord already lists per scope (e.g. from a previous run), which the sync
        compares against and replaces.
        """
        host = AttachmentHost()
        await host.start()
        world = cls(bot, host)
        if registered is not None:
            world.registered = registered
        backend.configure(bot)
        await bot._async_setup_hook()  # what `Client.login` does first: bind the bot (and dpytest's state) to this loop
        state = backend.get_state()
        callbacks.set_callback(world._record_sent, "send_message")
        callbacks.set_callback(world._record_typing, "send_typing")
        state.stop_dispatch()
        world.guild = backend.make_guild("Moodring test guild", id_num=guild_id)
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
        state._command_tree = bot.tree  # ... and registered itself with the state `configure` replaced
        world._dpytest_send_message = bot.http.send_message
        bot.http.send_message = world._send_message
        bot.http.add_reaction = world._add_reaction
        bot.http.bulk_upsert_global_commands = world._upsert_global
        bot.http.bulk_upsert_guild_commands = world._upsert_guild
        bot.http.get_global_commands = world._get_global
        bot.http.get_guild_commands = world._get_guild
        webhook_rest.async_context.set(world.interactions)  # interaction responses reach FakeInteractions
        await bot.setup_hook()
        return world

    async def close(self) -> None:
        """Shut the bot down the way SIGTERM does, then stop the attachment host."""
        await self.bot.close()
        await self.host.close()

    # ---- what users and admins do ------------------------------------------------------------

    def post(
        self,
        author: discord.abc.User,
        attachments: list[discord.Attachment] = (),
        content: str = "",
        channel: discord.abc.Messageable | None = None,
    ) -> discord.Message:
        """Post a message as `author`; the bot's handlers are scheduled, not awaited (see `settle`)."""
        return backend.make_message(content, author, channel or self.channels[0], attachments=list(attachments))

    @property
    def mention(self) -> str:
        """Text that @mentions the bot."""
        return f"<@{self.bot.user.id}>"

    async def dm_channel(self, user: discord.User) -> discord.DMChannel:
        """The DM channel between `user` and the bot."""
        return await user.create_dm()

    def deny(self, channel: discord.TextChannel, *permissions: str) -> None:
        """Take `permissions` (e.g. "attach_files") from the bot in `channel`, as a channel overwrite."""
        _, deny = discord.PermissionOverwrite(**dict.fromkeys(permissions, False)).pair()
        data = facts.dict_from_channel(channel)
        # dpytest's own helper writes the overwrite type as a string, which discord.py 2 ignores: 1 = member
        data["permission_overwrites"] = [{"id": self.guild.me.id, "type": 1, "allow": "0", "deny": str(deny.value)}]
        backend.get_state().parse_channel_update(data)

    def refuse_next_send(self, status: int, code: int, message: str) -> None:
        """Make Discord refuse the next message the bot sends (e.g. a permission taken after the check)."""
        self.refusals.append(discord_error(status, code, message))

    def set_system_channel(self, channel: discord.TextChannel) -> None:
        """Make `channel` the guild's system channel (where Discord posts join messages)."""
        # What a GUILD_UPDATE with `system_channel_id` sets; dpytest cannot build that event for discord.py 2
        self.guild._system_channel_id = channel.id

    async def slash(
        self,
        user: discord.abc.User,
        name: str,
        *,
        options: list[dict] = (),
        member_permissions: discord.Permissions | None = None,
        channel: discord.TextChannel | None = None,
        resolved: dict | None = None,
    ) -> int:
        """Run `/name` as `user` through the bot's command tree, like Discord's INTERACTION_CREATE; returns its id.

        `options` are Discord's option payloads (subcommands included); `member_permissions` are the
        user's permissions in the channel (default: everyone's).
        """
        channel = channel or self.channels[0]
        registered = next(c for c in self.registered.get(None, []) + self._guild_commands() if c["name"] == name)
        data = {"id": str(registered["id"]), "name": name, "type": 1, "options": list(options)}
        if resolved:
            data["resolved"] = resolved
        permissions = member_permissions if member_permissions is not None else self.guild.default_role.permissions
        return await self._interact(2, user, channel, data, permissions)

    async def click(self, user: discord.abc.User, message: discord.Message | int, custom_id: str) -> int:
        """Press the button `custom_id` under `message` (a sent message, or the id of a follow-up) as `user`."""
        message_id = message if isinstance(message, int) else message.id
        channel = self.channels[0] if isinstance(message, int) else message.channel
        payload = facts.make_message_dict(channel, self.bot.user, id_num=message_id)
        # Discord sends the message with its buttons: as sent, or (a message of another run) the one clicked
        buttons = self._components.get(message_id) or [{"type": 2, "style": 1, "label": "?", "custom_id": custom_id}]
        payload["components"] = [{"type": 1, "components": buttons}]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, user, channel, data, self.guild.default_role.permissions, payload)

    async def _interact(
        self, kind: int, user, channel, data: dict, permissions: discord.Permissions, message: dict | None = None
    ) -> int:
        interaction_id = next(_ids)
        token = f"interaction-token-{interaction_id}-secret"
        self.interactions.tokens[token] = interaction_id
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.bot.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "data": data,
            "channel": {"id": str(channel.id), "type": 0},
            "channel_id": str(channel.id),
            "attachment_size_limit": 25 * 1024 * 1024,
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0,
        }
        if isinstance(channel, discord.TextChannel):
            member = facts.make_member_dict(self.guild, user, [])
            member["permissions"] = str(permissions.value)
            payload.update(guild_id=str(self.guild.id), guild_locale="en-US", member=member)
            payload["app_permissions"] = str(channel.permissions_for(self.guild.me).value)
        else:
            payload["user"] = facts.dict_from_user(user)
        if message is not None:
            payload["message"] = message
        backend.get_state().parse_interaction_create(payload)
        await self.settle()
        return interaction_id

    async def settle(self) -> None:
        """Wait until every event handler, slash command and button callback started so far has finished."""
        current = asyncio.current_task()
        while True:
            pending = [task for task in asyncio.all_tasks() if task is not current and _is_bot_work(task)]
            if not pending:
                return
            await asyncio.wait(pending)

    # ---- what the bot did --------------------------------------------------------------------

    def replies_in(self, channel: discord.abc.Messageable) -> list[discord.Message]:
        """Messages the bot sent in `channel`, oldest first."""
        return [message for message in self.sent if message.channel.id == channel.id]

    def replies_to(self, message: discord.Message) -> list[discord.Message]:
        """Messages the bot sent as replies to `message`, oldest first."""
        return [sent for sent in self.sent if self._reply_to.get(sent.id) == message.id]

    def buttons_on(self, message: discord.Message) -> list[dict]:
        """The buttons the bot sent under `message`, as Discord's component payloads."""
        return self._components.get(message.id, [])

    def reactions_on(self, message: discord.Message) -> list[str]:
        """Emoji the bot added to `message`."""
        return [emoji for message_id, emoji in self.reactions if message_id == message.id]

    def _guild_commands(self) -> list[dict]:
        return [command for scope, listed in self.registered.items() if scope is not None for command in listed]

    async def _send_message(self, channel_id: int, *, params: MultipartParameters) -> dict:
        """dpytest's `send_message`, taught what Discord checks and dpytest drops: the embed of a message with
        a file (sent as multipart `payload_json`), which message a reply answers, and the permissions."""
        payload = params.payload
        if payload is None and params.multipart:
            payload = json.loads(next(part["value"] for part in params.multipart if part["name"] == "payload_json"))
        payload = dict(payload or {})
        if self.refusals:
            raise self.refusals.pop(0)
        channel = self.bot.get_channel(channel_id)  # noqa: F841 - dpytest reads `channel` from its caller's frame
        if channel is not None and getattr(channel, "guild", None) is not None:
            allowed = channel.permissions_for(channel.guild.me)
            if params.files and not allowed.attach_files:
                raise discord_error(403, 50013, "Missing Permissions")
            if payload.get("message_reference") and not allowed.read_message_history:
                raise discord_error(400, 160002, "Cannot reply without permission to read message history")
            if not allowed.embed_links:
                payload.pop("embeds", None)
        params = MultipartParameters(payload=payload, multipart=params.multipart, files=params.files)
        data = await self._dpytest_send_message(channel_id, params=params)
        self._components[int(data["id"])] = [c for row in payload.get("components", []) for c in row["components"]]
        reference = payload.get("message_reference")
        if reference is not None:
            self._reply_to[int(data["id"])] = int(reference["message_id"])
        return data

    async def _add_reaction(self, channel_id: int, message_id: int, emoji: str) -> None:
        channel = self.bot.get_channel(channel_id)
        if channel is not None and getattr(channel, "guild", None) is not None:
            allowed = channel.permissions_for(channel.guild.me)
            if not (allowed.add_reactions and allowed.read_message_history):
                raise discord_error(403, 50013, "Missing Permissions")
        self.reactions.append((message_id, emoji))

    async def _record_sent(self, message: discord.Message) -> None:
        self.sent.append(message)
        self.sent_at[message.id] = time.perf_counter()

    async def _record_typing(self, channel: discord.abc.Messageable) -> None:
        self.typing.append(channel.id)

    async def _upsert_global(self, application_id: int, payload: list[dict]) -> list[dict]:
        if self.sync_refused:
            raise discord_error(403, 50001, "Missing Access")
        self.synced.append((None, payload))
        self.registered[None] = [_synced_command(application_id, None, command) for command in payload]
        return self.registered[None]

    async def _upsert_guild(self, application_id: int, guild_id: int, payload: list[dict]) -> list[dict]:
        if self.sync_refused:
            raise discord_error(403, 50001, "Missing Access")
        self.synced.append((guild_id, payload))
        self.registered[guild_id] = [_synced_command(application_id, guild_id, command) for command in payload]
        return self.registered[guild_id]

    async def _get_global(self, application_id: int) -> list[dict]:
        return list(self.registered.get(None, []))

    async def _get_guild(self, application_id: int, guild_id: int) -> list[dict]:
        return list(self.registered.get(guild_id, []))


def _is_bot_work(task: asyncio.Task) -> bool:
    """Tasks discord.py starts for the bot: event handlers, slash commands, button callbacks."""
    coroutine = task.get_coro()
    name = getattr(coroutine, "__qualname__", "")
    return not task.done() and (
        name.endswith("_run_event")
        or task.get_name() == "CommandTree-invoker"
        or task.get_name().startswith(("discord-ui-view-dispatch", "discord-ui-dynamic-item"))
    )


def _synced_command(application_id: int, guild_id: int | None, command: dict) -> dict:
    """The application command Discord would return for an upserted `command` payload."""
    answer = {"id": next(_ids), "application_id": application_id, "version": 1, **command}
    if guild_id is not None:
        answer["guild_id"] = guild_id
    return answer


class LoopLagProbe:
    """While active, sleeps `interval` s in a loop and records how late each wake-up is (the loop's lag).

    Lag is wall time: it also grows when the loop's thread waits for a core (other processes) or for the
    GIL (other threads). `busy` records, for each wake-up, the CPU the loop's own thread spent since the
    previous one: a wake-up can be late by more than `interval` through the loop's own work only as far
    as that CPU allows, whatever the machine's load.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.busy: list[float] = []
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
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - before - self.interval))
            self.busy.append(time.thread_time() - cpu)

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
