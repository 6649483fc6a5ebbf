"""A local Discord emulator: the gateway websocket and the REST API that discord.py 2.x uses.

Tests point the real discord.py client at it (`discord.http.Route.BASE = emu.api_base`,
`DiscordWebSocket.DEFAULT_GATEWAY = emu.gateway_url`), play users by dispatching
MESSAGE_CREATE / INTERACTION_CREATE, and wait on `emu.calls` — every REST call is recorded.
Behaviour copied from Discord where the bot depends on it: REST replies are
`Content-Type: application/json` exactly; a message POST with `nonce` + `enforce_nonce` is
deduplicated for `nonce_window` seconds ("the past few minutes", by the same author: the first
message comes back), and after that posted again; a DM channel is opened with
POST /users/@me/channels, and a user whose DMs are closed (`close_dms`) gets nothing: 403, code
50007; a channel deleted (`delete_channel`: 404 Unknown Channel, code 10003) or one the bot was
removed from (`remove_bot_from`: 403 Missing Access, code 50001) refuses every message POST;
GET /channels/{id}/messages pages a channel's messages newest first; 429 carries
`retry_after` in body and headers and a `Via` header (without it discord.py treats a 429 as a
Cloudflare ban); an interaction is acknowledged once; RESUME replays the events the session missed.

Message components (buttons): a message keeps the `components` it was created or edited with
(checked as Discord does: at most 5 action rows (type 1) of at most 5 buttons (type 2), a
label of at most 80 characters, a `custom_id` of 1-100 characters on every non-link button, each
unique in the message, else 400 Invalid Form Body). `press` plays a user clicking one: an
INTERACTION_CREATE of type 3 (MESSAGE_COMPONENT) with `data.custom_id`, `data.component_type` 2
and the message. It takes callback type 4 (a message), 5 (deferred message: "thinking…"), 6
(deferred update: the original response is the clicked message) or 7 (update the clicked
message); 6 and 7 only for a component interaction.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from aiohttp import BodyPartReader, WSMsgType, web

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
USER_OPTION = 6  # application command option type USER
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 2, 3, 4  # interaction types
ACTION_ROW, BUTTON = 1, 2  # component types
LINK_STYLE = 5
DEFERRED_UPDATE, UPDATE_MESSAGE = 6, 7  # callback types for components only
AUTOCOMPLETE_RESULT = 8  # interaction callback type
MAX_CHOICES = 25
NONCE_WINDOW = 300.0  # seconds; Discord checks nonces "in the past few minutes"
CANNOT_MESSAGE = {"message": "Cannot send messages to this user", "code": 50007}
UNKNOWN_CHANNEL = ({"message": "Unknown Channel", "code": 10003}, 404)
MISSING_ACCESS = ({"message": "Missing Access", "code": 50001}, 403)
# The parsed JSON body (any shape a client sends) and the uploaded files, read once per request.
BODY: web.RequestKey[Any] = web.RequestKey("body", object)
FILES: web.RequestKey[list[tuple[str, bytes]]] = web.RequestKey("files", list)


@dataclass
class Call:
    """One REST request as the emulator saw it (path without the /api/v10 prefix)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON (or the multipart payload_json)
    files: list[tuple[str, bytes]]
    status: int
    auth: str | None


@dataclass
class Fault:
    """An injected failure for the next `times` requests matching method and path pattern.

    `after_processing` makes the emulator do the work (e.g. create the message) and still answer
    the error, like a gateway timeout after Discord committed the write. `skip` lets that many
    matching requests through first (the second part of a reply fails, not the first).
    """

    method: str
    path: str
    status: int
    retry_after: float = 0.0
    times: int = 1
    after_processing: bool = False
    skip: int = 0


@dataclass
class _Session:
    session_id: str
    shard: tuple[int, int]
    ws: web.WebSocketResponse | None
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


class DiscordEmulator:
    """Gateway + REST on 127.0.0.1 (random port). Use `async with DiscordEmulator() as emu`."""

    def __init__(
        self,
        *,
        bot_id: int = 900_000_000_000_000_001,
        guilds: int = 1,
        nonce_window: float = NONCE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ids = itertools.count(1)
        self.nonce_window = nonce_window
        self._clock = clock
        self.bot_user = self.user(bot_id, "switchboard", bot=True)
        self.application_id = bot_id
        self.guild_id = 800_000_000_000_000_001
        self.guild_channel_id = 800_000_000_000_000_101
        self._guilds = [
            self._guild(self.guild_id + i, self.guild_channel_id + i) for i in range(guilds)
        ]
        self.calls: list[Call] = []
        self.gateway_ops: list[dict[str, Any]] = []  # op 2 / op 6 payloads the client sent
        self.messages: dict[int, dict[str, Any]] = {}  # every message the bot created, current
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global)
        self._files: dict[str, bytes] = {}  # attachment id -> the bytes uploaded
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> interaction state
        self.faults: list[Fault] = []
        self._holds: list[tuple[str, str]] = []
        self.held: list[tuple[str, asyncio.Event]] = []  # (path, its release) parked by `hold`
        self._nonces: dict[str, tuple[int, float]] = {}  # nonce -> (message id, when)
        self.user_messages: dict[int, dict[str, Any]] = {}  # what users sent, by id
        self.dm_channels: dict[int, dict[str, Any]] = {}  # DM channel id -> its recipient
        self.closed_dms: set[int] = set()  # users who accept no DM from the bot
        self.gone_channels: dict[int, tuple[dict[str, Any], int]] = {}  # id -> refusal
        self._sessions: dict[str, _Session] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.expected_auth: str | None = None  # "Bot <token>"; None accepts any token

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- payload builders ------------------------------------------------------------------
    def attachment_data(self, attachment: dict[str, Any]) -> bytes:
        """The bytes uploaded for an attachment, exactly (a CDN would serve them)."""
        return self._files[attachment["id"]]

    def _attachments(self, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        made = []
        for name, data in files:
            attachment_id = str(self.snowflake())
            self._files[attachment_id] = data
            made.append(
                {
                    "id": attachment_id,
                    "filename": name,
                    "size": len(data),
                    "url": f"https://cdn.invalid/{name}",
                    "proxy_url": f"https://cdn.invalid/{name}",
                    # Text files as text, so tests can search them for content.
                    "content": data.decode("utf-8", "replace"),
                }
            )
        return made

    def snowflake(self) -> int:
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._ids) & 0x3FFFFF)

    @staticmethod
    def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }

    def _guild(self, guild_id: int, channel_id: int) -> dict[str, Any]:
        everyone = {
            "id": str(guild_id),
            "name": "@everyone",
            "permissions": "1071698660929",
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        channel = {
            "id": str(channel_id),
            "type": 0,
            "name": "general",
            "position": 0,
            "guild_id": str(guild_id),
            "permission_overwrites": [],
            "nsfw": False,
        }
        return {
            "id": str(guild_id),
            "name": f"Test Guild {guild_id % 1000}",
            "unavailable": False,
            "owner_id": "1",
            "roles": [everyone],
            "channels": [channel],
            "threads": [],
            "members": [self._member(self.bot_user)],
            "member_count": 2,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "presences": [],
            "voice_states": [],
            "joined_at": _now(),
            "premium_tier": 0,
        }

    @staticmethod
    def _member(user: dict[str, Any], permissions: str = "0") -> dict[str, Any]:
        return {
            "user": user,
            "roles": [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": permissions,
        }

    def _message(
        self, channel_id: int, author: dict[str, Any], content: str, **extra: Any
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        message.update(extra)
        return message

    # -- playing users ---------------------------------------------------------------------
    async def send_message(
        self,
        author: dict[str, Any],
        content: str,
        *,
        channel_id: int | None = None,
        guild: bool = False,
        mention_bot: bool = False,
        reply_to: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE from a user: a DM (the user's DM channel) by default, or in
        the guild channel. `mention_bot` puts `<@bot>` in front, as the Discord client does."""
        extra: dict[str, Any] = {}
        if guild:
            channel_id = channel_id or self.guild_channel_id
            extra["guild_id"] = str(self.guild_id)
            extra["member"] = {k: v for k, v in self._member(author).items() if k != "user"}
        else:
            channel_id = channel_id or int(author["id"]) + 1  # one DM channel per user
        if mention_bot:
            content = f"<@{self.bot_user['id']}> {content}"
            extra["mentions"] = [self.bot_user]
        if reply_to is not None:
            extra["message_reference"] = {
                "type": 0,
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
                **({"guild_id": str(self.guild_id)} if guild else {}),
            }
            extra["referenced_message"] = reply_to
            extra["type"] = 19
        if attachments:
            extra["attachments"] = attachments
        message = self._message(channel_id, author, content, **extra)
        self.user_messages[int(message["id"])] = message
        if not guild:
            self.dm_channels[channel_id] = author
        await self.dispatch("MESSAGE_CREATE", message, guild_id=self.guild_id if guild else None)
        return message

    async def invoke_command(
        self,
        author: dict[str, Any],
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild: bool = False,
        guild_permissions: str = "0",
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE for a synced slash command (unknown commands fail the
        test, as Discord would never send them). Returns the interaction payload."""
        data = self._command_data(name, options, guild)
        return await self._interact(APPLICATION_COMMAND, author, data, guild, guild_permissions)

    async def autocomplete(
        self,
        author: dict[str, Any],
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        guild: bool = False,
    ) -> dict[str, Any]:
        """Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4): the user is typing
        `options[focused]` (marked `focused`) into an option synced with `autocomplete: true`.
        The bot answers with callback type 8 and its `choices`: see `suggestions`."""
        data = self._command_data(name, options, guild)
        option = next(o for o in data["options"] if o["name"] == focused)
        option["focused"] = True
        synced = {o["name"]: o for o in self._synced(name, guild).get("options", [])}
        if not synced[focused].get("autocomplete"):
            raise AssertionError(f"/{name} {focused} was not synced with autocomplete")
        return await self._interact(AUTOCOMPLETE, author, data, guild, "0")

    def suggestions(self, interaction: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The choices the bot offered for an autocomplete interaction (None: not yet)."""
        acked = self.acked(interaction)
        return None if acked is None else acked["data"]["choices"]

    def _synced(self, name: str, guild: bool) -> dict[str, Any]:
        scope = self.guild_id if guild and self.guild_id in self.commands else None
        spec = next((c for c in self.commands.get(scope, []) if c["name"] == name), None)
        if spec is None:
            raise AssertionError(f"/{name} was not synced (synced: {self.commands})")
        return spec

    def _command_data(
        self, name: str, options: dict[str, Any] | None, guild: bool
    ) -> dict[str, Any]:
        spec = self._synced(name, guild)
        types = {o["name"]: o["type"] for o in spec.get("options", [])}
        data: dict[str, Any] = {"id": spec["id"], "name": name, "type": 1}
        if options:
            data["options"] = [
                {"name": k, "type": types[k], "value": v} for k, v in options.items() if k in types
            ]
            self._resolve_users(data, guild)
        if guild and self.guild_id in self.commands:
            data["guild_id"] = str(self.guild_id)
        return data

    async def _interact(
        self,
        kind: int,
        author: dict[str, Any],
        data: dict[str, Any],
        guild: bool,
        guild_permissions: str,
        *,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        token = f"itok-{self.snowflake()}"
        channel_id = self.guild_channel_id if guild else int(author["id"]) + 1
        payload: dict[str, Any] = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel_id),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": "1071698660929",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)} if guild else {},
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:  # a component's interaction carries the message it is under
            payload["message"] = message
            payload["channel_id"] = message["channel_id"]
        if guild:
            payload["guild_id"] = str(self.guild_id)
            payload["guild_locale"] = "en-US"
            payload["member"] = self._member(author, guild_permissions)
            payload["channel"] = {"id": str(channel_id), "type": 0, "guild_id": str(self.guild_id)}
            payload["context"] = 0
        else:
            payload["user"] = author
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [author]}
            payload["context"] = 1
        self.interactions[token] = {
            "payload": payload,
            "acked": None,
            "original": None,
            "followups": [],
        }
        await self.dispatch(
            "INTERACTION_CREATE", payload, guild_id=self.guild_id if guild else None
        )
        return payload

    async def press(
        self,
        author: dict[str, Any],
        message: dict[str, Any],
        custom_id: str,
        *,
        guild: bool = False,
    ) -> dict[str, Any]:
        """Dispatch a MESSAGE_COMPONENT interaction (type 3): `author` clicks the button with
        `custom_id` under `message` (one of the bot's). Returns the interaction payload."""
        offered = [
            b.get("custom_id") for row in message.get("components") or [] for b in row["components"]
        ]
        if custom_id not in offered:
            raise AssertionError(f"no button {custom_id!r} under message {message['id']}")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._interact(MESSAGE_COMPONENT, author, data, guild, "0", message=message)

    def buttons(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        """(label, custom_id) of each button under a message, row by row."""
        return [
            (b.get("label", ""), b.get("custom_id", ""))
            for row in message.get("components") or []
            for b in row["components"]
        ]

    def _resolve_users(self, data: dict[str, Any], guild: bool) -> None:
        """A USER option (type 6) is given as the picked user object: Discord sends its id as
        the value and the object under `resolved.users` (in a guild, the member too, under
        `resolved.members`, without its `user`, `deaf` and `mute`)."""
        for option in data["options"]:
            if option["type"] != USER_OPTION or not isinstance(option["value"], dict):
                continue
            picked = option["value"]
            option["value"] = picked["id"]
            resolved = data.setdefault("resolved", {})
            resolved.setdefault("users", {})[picked["id"]] = picked
            if guild:
                member = self._member(picked)
                for key in ("user", "deaf", "mute"):
                    member.pop(key)
                resolved.setdefault("members", {})[picked["id"]] = member

    async def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None = None) -> None:
        """Send a DISPATCH to the session owning the guild's shard (DMs go to shard 0)."""
        session = await self._session_for(guild_id)
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        if session.ws is not None and not session.ws.closed:
            await session.ws.send_str(json.dumps(frame))

    async def force_reconnect(self) -> None:
        """Ask every connected client to reconnect (op 7), as Discord does on a gateway move;
        events dispatched meanwhile are replayed on RESUME."""
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed:
                ws, session.ws = session.ws, None
                await ws.send_str(json.dumps({"op": 7, "d": None}))
                await ws.close()

    def close_dms(self, user_id: int | str) -> None:
        """The user's privacy settings refuse DMs from the bot (from then on)."""
        self.closed_dms.add(int(user_id))

    def delete_channel(self, channel_id: int | str) -> None:
        """The channel no longer exists: a message POST gets 404 Unknown Channel (10003)."""
        self.gone_channels[int(channel_id)] = UNKNOWN_CHANNEL

    def remove_bot_from(self, channel_id: int | str) -> None:
        """The bot was removed from the channel's guild: 403 Missing Access (50001)."""
        self.gone_channels[int(channel_id)] = MISSING_ACCESS

    @staticmethod
    def dm_channel_id(user_id: int | str) -> int:
        """The DM channel between the bot and a user (one per user, as on Discord)."""
        return int(user_id) + 1

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def hold(self, method: str, path: str) -> None:
        """Park matching requests (unanswered) until `release()`: a slow Discord, so a test can
        act while a reply is in flight."""
        self._holds.append((method, path))

    def unhold(self) -> None:
        """Stop parking new requests; those already parked wait for `release()`."""
        self._holds.clear()

    def release(self) -> None:
        """Answer every parked request and stop holding (set a single held event to answer
        requests one by one, in any order)."""
        self._holds.clear()
        for _, event in self.held:
            event.set()

    # -- queries for tests -----------------------------------------------------------------
    def calls_to(self, method: str, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [c for c in self.calls if c.method == method and regex.fullmatch(c.path)]

    def channel_messages(self, channel_id: int | str) -> list[dict[str, Any]]:
        """The bot's messages in a channel (current content after edits), oldest first."""
        return [m for m in self.messages.values() if m["channel_id"] == str(channel_id)]

    def followups(self, interaction: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages answering an interaction, as the user sees them: the deferred response
        once it was edited into an answer ("thinking…" replaced), then the follow-ups."""
        state = self.interactions[interaction["token"]]
        original = state.get("original")
        answered = (
            original is not None
            and not int(original.get("flags") or 0) & LOADING
            and not original.get("deleted")
            and bool(original.get("content") or original.get("attachments"))
        )
        return ([original] if answered else []) + list(state["followups"])

    def acked(self, interaction: dict[str, Any]) -> dict[str, Any] | None:
        return self.interactions[interaction["token"]]["acked"]

    @property
    def connected(self) -> bool:
        return any(s.ws is not None and not s.ws.closed for s in self._sessions.values())

    async def _session_for(self, guild_id: int | None) -> _Session:
        """The newest session of the shard that owns the guild ((id >> 22) % shards, DMs: 0)."""

        def find() -> _Session | None:
            for session in reversed(self._sessions.values()):
                shard_id, count = session.shard
                if ((guild_id or 0) >> 22) % max(count, 1) == shard_id:
                    return session
            return None

        deadline = time.monotonic() + 10
        while (session := find()) is None:
            if time.monotonic() > deadline:
                raise AssertionError("no gateway session is connected")
            await asyncio.sleep(0.01)
        return session

    # -- gateway ---------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        session: _Session | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op, data = frame.get("op"), frame.get("d")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                self.gateway_ops.append(frame)
                session = await self._identify(ws, data)
            elif op == 6:
                self.gateway_ops.append(frame)
                session = await self._resume(ws, data)
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session:
        shard = tuple(data.get("shard") or (0, 1))
        session = _Session(f"sess-{self.snowflake()}", (int(shard[0]), int(shard[1])), ws)
        self._sessions[session.session_id] = session
        mine = [g for g in self._guilds if (int(g["id"]) >> 22) % session.shard[1] == shard[0]]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": list(session.shard),
        }
        await self._send(session, "READY", ready)
        for guild in mine:
            await self._send(session, "GUILD_CREATE", guild)
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        session = self._sessions.get(data.get("session_id", ""))
        if session is None:
            await ws.send_str(json.dumps({"op": 9, "d": False}))
            return None
        session.ws = ws
        missed = [f for f in session.sent if f["s"] > int(data.get("seq") or 0)]
        for frame in missed:
            await ws.send_str(json.dumps(frame))
        await self._send(session, "RESUMED", {})
        return session

    async def _send(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        assert session.ws is not None
        await session.ws.send_str(json.dumps(frame))

    # -- REST ------------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        body, files = await _read_body(request)
        request[BODY] = body
        request[FILES] = files
        path = request.path[len(API_PREFIX) :]
        if any(m == request.method and re.fullmatch(p, path) for m, p in self._holds):
            released = asyncio.Event()
            self.held.append((path, released))
            await released.wait()
        fault = self._take_fault(request.method, path)
        if fault is not None and not fault.after_processing:
            response = _fault_response(fault)
        else:
            response = await handler(request)
            if fault is not None:
                response = _fault_response(fault)
        self.calls.append(
            Call(
                request.method,
                path,
                dict(request.query),
                body,
                files,
                response.status,
                request.headers.get("Authorization"),
            )
        )
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and re.fullmatch(fault.path, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        auth = request.headers.get("Authorization")
        routes = (
            ("GET", r"/users/@me", self._me),
            ("GET", r"/oauth2/applications/@me", self._application),
            ("GET", r"/gateway/bot", self._gateway_bot),
            ("PUT", r"/applications/(\d+)(?:/guilds/(\d+))?/commands", self._sync_commands),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/channels/(\d+)/messages", self._list_messages),
            ("POST", r"/channels/(\d+)/messages", self._create_message),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_message),
            ("POST", r"/channels/(\d+)/typing", self._typing),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)", self._edit_followup),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)", self._get_followup),
            ("DELETE", r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)", self._delete_followup),
        )
        for method, pattern, route in routes:
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                needs_bot_auth = not path.startswith(("/interactions/", "/webhooks/"))
                if needs_bot_auth and self.expected_auth not in (None, auth):
                    return _json({"message": "401: Unauthorized", "code": 0}, 401)
                return await route(request, *match.groups())
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _me(self, request: web.Request) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0})

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": "Switchboard",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.user(1, "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _sync_commands(
        self, request: web.Request, app_id: str, guild: str | None
    ) -> web.Response:
        synced = []
        for command in request[BODY]:
            command = {**command, "id": str(self.snowflake()), "application_id": app_id}
            command.setdefault("type", 1)
            command["version"] = "1"
            if guild:
                command["guild_id"] = guild
            synced.append(command)
        self.commands[int(guild) if guild else None] = synced
        return _json(synced)

    async def _create_dm(self, request: web.Request) -> web.Response:
        # Opening the channel succeeds even when the user's DMs are closed: the send fails.
        recipient = str((request[BODY] or {}).get("recipient_id") or "")
        if not recipient.isdigit():
            return _json({"message": "Invalid Form Body", "code": 50035}, 400)
        channel_id = self.dm_channel_id(recipient)
        user = self.dm_channels.setdefault(channel_id, self.user(int(recipient), "user"))
        channel = {"id": str(channel_id), "type": 1, "last_message_id": None, "flags": 0}
        return _json({**channel, "recipients": [user]})

    async def _list_messages(self, request: web.Request, channel_id: str) -> web.Response:
        """`after`, `before` and `limit` (1-100, default 50); the page is newest first."""
        query = request.query
        limit = min(max(int(query.get("limit", "50")), 1), 100)
        everything = {**self.user_messages, **self.messages}
        mine = sorted(i for i, m in everything.items() if m["channel_id"] == channel_id)
        if "after" in query:
            page = [i for i in mine if i > int(query["after"])][:limit]
        else:
            before = int(query.get("before", str(1 << 63)))
            page = [i for i in mine if i < before][-limit:]
        return _json([everything[i] for i in reversed(page)])

    def _earlier_by_nonce(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The message an enforced nonce already made, within the window."""
        nonce = body.get("nonce")
        if nonce is None or not body.get("enforce_nonce"):
            return None
        made = self._nonces.get(str(nonce))
        if made is None or self._clock() - made[1] >= self.nonce_window:
            return None
        return self.messages[made[0]]

    async def _create_message(self, request: web.Request, channel_id: str) -> web.Response:
        body: dict[str, Any] = request[BODY] or {}
        recipient = self.dm_channels.get(int(channel_id))
        if recipient is not None and int(recipient["id"]) in self.closed_dms:
            return _json(CANNOT_MESSAGE, 403)
        if int(channel_id) in self.gone_channels:
            return _json(*self.gone_channels[int(channel_id)])
        earlier = self._earlier_by_nonce(body)
        if earlier is not None:
            return _json(earlier)
        components = _checked_components(body.get("components"))
        if components is None:
            return _json(INVALID_FORM, 400)
        nonce = body.get("nonce")
        attachments = self._attachments(request[FILES])
        extra = {"nonce": nonce} if nonce is not None else {}
        if int(channel_id) in {int(g["channels"][0]["id"]) for g in self._guilds}:
            extra["guild_id"] = str(self.guild_id)
        content = body.get("content") or ""
        message = self._message(int(channel_id), self.bot_user, content, **extra)
        message["attachments"] = attachments
        message["allowed_mentions"] = body.get("allowed_mentions")  # recorded for tests
        message["components"] = components
        if body.get("message_reference"):
            ref = body["message_reference"]  # snowflakes come back as strings, like Discord's
            message["message_reference"] = {
                k: str(v) if k.endswith("_id") and v is not None else v for k, v in ref.items()
            }
        self.messages[int(message["id"])] = message
        if nonce is not None:
            self._nonces[str(nonce)] = (int(message["id"]), self._clock())
        return _json(message)

    async def _edit_message(
        self, request: web.Request, channel_id: str, message_id: str
    ) -> web.Response:
        message = self.messages.get(int(message_id))
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        body = request[BODY] or {}
        if not self._edit_components(message, body):
            return _json(INVALID_FORM, 400)
        if "content" in body:
            message["content"] = body["content"] or ""
        if "attachments" in body or request[FILES]:
            # Edit Message: `attachments` lists the existing ones to keep (all, when absent);
            # uploaded files are appended.
            keep = {str(a.get("id")) for a in body.get("attachments") or ()}
            kept = [
                a for a in message["attachments"] if "attachments" not in body or a["id"] in keep
            ]
            message["attachments"] = kept + self._attachments(request[FILES])
        message["edited_timestamp"] = _now()
        return _json(message)

    async def _typing(self, request: web.Request, channel_id: str) -> web.Response:
        return web.Response(status=204)

    async def _callback(
        self, request: web.Request, interaction_id: str, token: str
    ) -> web.Response:
        state = self.interactions.get(token)
        if state is None or state["payload"]["id"] != interaction_id:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if state["acked"] is not None:
            return _json(
                {"message": "Interaction has already been acknowledged.", "code": 40060}, 400
            )
        body = request[BODY] or {}
        is_autocomplete = state["payload"]["type"] == AUTOCOMPLETE
        if is_autocomplete or body.get("type") == AUTOCOMPLETE_RESULT:
            return self._autocomplete_result(state, body, is_autocomplete)
        if body.get("type") in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            return self._component_update(state, body)
        components = _checked_components((body.get("data") or {}).get("components"))
        if components is None:
            return _json(INVALID_FORM, 400)
        state["acked"] = body
        flags = int((body.get("data") or {}).get("flags") or 0)
        channel_id = int(state["payload"]["channel_id"])
        content = (body.get("data") or {}).get("content") or ""
        if body.get("type") == 5:
            flags |= LOADING
        original = self._message(
            channel_id, self.bot_user, content, flags=flags, components=components
        )
        original["webhook_id"] = str(self.application_id)
        state["original"] = original
        if "with_response" not in request.query:
            return web.Response(status=204)
        interaction = {
            "id": interaction_id,
            "type": 2,
            "response_message_id": original["id"],
            "response_message_loading": bool(flags & LOADING),
            "response_message_ephemeral": bool(flags & EPHEMERAL),
        }
        return _json({"interaction": interaction, "resource": {"type": body.get("type")}})

    def _component_update(self, state: dict[str, Any], body: dict[str, Any]) -> web.Response:
        """Callback 6 or 7: for a component interaction only; the clicked message becomes the
        original response (7 edits it now)."""
        payload = state["payload"]
        if payload["type"] != MESSAGE_COMPONENT:
            return _json({"message": "Invalid interaction callback type", "code": 50035}, 400)
        message = self.messages.get(int(payload["message"]["id"])) or payload["message"]
        if body.get("type") == UPDATE_MESSAGE and not self._edit_components(
            message, body.get("data") or {}
        ):
            return _json(INVALID_FORM, 400)
        if body.get("type") == UPDATE_MESSAGE and "content" in (body.get("data") or {}):
            message["content"] = body["data"]["content"] or ""
        state["acked"] = body
        state["original"] = message
        return web.Response(status=204)

    @staticmethod
    def _edit_components(message: dict[str, Any], body: dict[str, Any]) -> bool:
        """Apply an edit's `components` (absent: kept); False when Discord would refuse them."""
        if "components" not in body:
            return True
        components = _checked_components(body["components"])
        if components is None:
            return False
        message["components"] = components
        return True

    @staticmethod
    def _autocomplete_result(
        state: dict[str, Any], body: dict[str, Any], is_autocomplete: bool
    ) -> web.Response:
        """An autocomplete interaction takes only callback type 8, with at most 25 choices."""
        choices = (body.get("data") or {}).get("choices")
        if not is_autocomplete or body.get("type") != AUTOCOMPLETE_RESULT:
            return _json({"message": "Invalid interaction callback type", "code": 50035}, 400)
        if not isinstance(choices, list) or len(choices) > MAX_CHOICES:
            return _json({"message": "Invalid Form Body", "code": 50035}, 400)
        state["acked"] = body
        return web.Response(status=204)

    async def _followup(self, request: web.Request, app_id: str, token: str) -> web.Response:
        state = self.interactions.get(token)
        if state is None or state["acked"] is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        body = request[BODY] or {}
        channel_id = int(state["payload"]["channel_id"])
        message = self._message(
            channel_id, self.bot_user, body.get("content") or "", flags=int(body.get("flags") or 0)
        )
        components = _checked_components(body.get("components"))
        if components is None:
            return _json(INVALID_FORM, 400)
        message["webhook_id"] = app_id
        message["attachments"] = self._attachments(request[FILES])
        message["allowed_mentions"] = body.get("allowed_mentions")
        message["components"] = components
        state["followups"].append(message)
        return _json(message)

    async def _edit_followup(
        self, request: web.Request, app_id: str, token: str, message_id: str
    ) -> web.Response:
        message = self._webhook_message(token, message_id)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        body = request[BODY] or {}
        if not self._edit_components(message, body):
            return _json(INVALID_FORM, 400)
        if "content" in body:
            message["content"] = body["content"] or ""
        message["flags"] = int(message.get("flags") or 0) & ~LOADING
        message["attachments"] = self._attachments(request[FILES]) or message["attachments"]
        return _json(message)

    async def _get_followup(
        self, request: web.Request, app_id: str, token: str, message_id: str
    ) -> web.Response:
        message = self._webhook_message(token, message_id)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        return _json(message)

    async def _delete_followup(
        self, request: web.Request, app_id: str, token: str, message_id: str
    ) -> web.Response:
        message = self._webhook_message(token, message_id)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        message["deleted"] = True
        return web.Response(status=204)

    def _webhook_message(self, token: str, message_id: str) -> dict[str, Any] | None:
        state = self.interactions.get(token)
        if state is None:
            return None
        if message_id == "@original":
            return state["original"]
        return next((m for m in state["followups"] if m["id"] == message_id), None)


# -- helpers -------------------------------------------------------------------------------
INVALID_FORM = {"message": "Invalid Form Body", "code": 50035}


def _checked_components(components: Any) -> list[dict[str, Any]] | None:
    """Action rows of buttons as Discord accepts them, or None where it answers 400."""
    if components is None:
        return []
    if not isinstance(components, list) or len(components) > 5:
        return None
    seen: set[str] = set()
    for row in components:
        buttons = row.get("components") if isinstance(row, dict) else None
        if (
            row.get("type") != ACTION_ROW
            or not isinstance(buttons, list)
            or not 1 <= len(buttons) <= 5
        ):
            return None
        for button in buttons:
            if not _valid_button(button, seen):
                return None
    return components


def _valid_button(button: Any, seen: set[str]) -> bool:
    if not isinstance(button, dict) or button.get("type") != BUTTON:
        return False
    if len(str(button.get("label") or "")) > 80:
        return False
    if button.get("style") == LINK_STYLE:
        return bool(button.get("url"))
    custom_id = button.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100 or custom_id in seen:
        return False
    seen.add(custom_id)
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only decodes a body whose Content-Type is exactly application/json.
    response = web.Response(text=json.dumps(data), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def _fault_response(fault: Fault) -> web.Response:
    if fault.status == 429:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(fault.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(fault.retry_after),
            "X-RateLimit-Bucket": "emulator-bucket",
            "X-RateLimit-Scope": "user",
        }
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after}
        return _json({**body, "global": False}, 429, headers)
    return web.Response(status=fault.status, text="upstream error", content_type="text/plain")


async def _read_body(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    """JSON body, or a multipart form (payload_json + files[n]) as discord.py sends uploads."""
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: list[tuple[str, bytes]] = []
        reader = await request.multipart()
        async for part in reader:
            # discord.py sends a flat form: every part is a body part, never a nested multipart.
            assert isinstance(part, BodyPartReader), f"nested multipart part: {part!r}"
            data = await part.read()
            if part.name == "payload_json":
                payload = json.loads(data)
            else:
                files.append((part.filename or part.name or "file", bytes(data)))
        return payload, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), []
