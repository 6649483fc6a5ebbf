"""The Discord adapter (discord.py 2.x): gateway events and slash commands <-> Incoming / Reply.

It runs in the process's one event loop next to the other adapters. DMs are always a turn; in a
guild channel only messages that mention the bot (or its role) or reply to it are — those carry
their content without the privileged message-content intent, so the bot needs no privileged
intent at all. Commands, admin checks, dedupe, sessions and ordering live in the core.

"typing…" shows only when the core says a turn is taking a while (Reply.typing), never for a
message waiting behind others. A reply Discord failed to take (5xx, network) is tried again in
this run, REDELIVER_ATTEMPTS times with a doubling delay, then left for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.buttons import ButtonKey, Pressed
from adapters.delivery import Tasks, deliver_turn, pause
from adapters.discord.buttons import Buttons, pressed
from adapters.discord.client import (
    build_client,
    command_guild,
    discord_endpoints,
    one_line_reconnects,
    sync_commands,
)
from adapters.discord.commands import build_commands, command_line
from adapters.discord.delivery import (
    ChannelReplies,
    DroppedReplies,
    InteractionReplies,
    Replies,
    TypingIndicator,
    Undeliverable,
    earlier_replies,
)
from adapters.discord.outgoing import send_outgoing
from adapters.discord.private import DirectReplies
from adapters.discord.translate import interaction_incoming, to_incoming
from adapters.startup import keep_trying, origin
from bot.messages import (
    ChatKind,
    CommandSpec,
    ConversationCore,
    Incoming,
    Outgoing,
    Reply,
    SendResult,
    StartupError,
)
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

STOP_GRACE = 30.0  # seconds in-flight turns get to finish on stop
REDELIVER_ATTEMPTS = 4  # attempts at an undelivered reply in one run (then: the next start)
RESTARTING = "I'm restarting — please try that again in a minute."
FAILED = "Sorry, something went wrong on my side. Please try again."
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
# At start: worth another try (discord.py already retried 5xx itself a few times).
UNREACHABLE = (aiohttp.ClientError, OSError, asyncio.TimeoutError, discord.DiscordServerError)
DEFAULT_API = "https://discord.com/api/v10"
DEFAULT_GATEWAY = "wss://gateway.discord.gg"


class GatewayFailed(Exception):
    """The gateway connection ended before the client was ready (tried again at start)."""


class DiscordAdapter:
    """bot.messages.Adapter for Discord. Built with (settings, core) by the composition root."""

    name = "discord"

    def __init__(
        self,
        settings: Settings,
        core: ConversationCore,
        *,
        guild_ready_timeout: float = 2.0,
        retry_delay: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`retry_delay`: the wait before the second attempt at an undelivered reply (doubling
        after); `wall`: the time of day, compared with message ids' timestamps."""
        if not settings.discord_bot_token:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        if settings.discord_shard_ids and not settings.discord_shard_count:
            raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total shard count)")
        self._settings = settings
        self._core = core
        self._guild_ready_timeout = guild_ready_timeout
        self._retry_delay = retry_delay
        self._wall = wall
        self._stop_requested = asyncio.Event()  # wakes replies waiting to be tried again
        self._client: discord.Client | None = None
        self._connection: asyncio.Task[None] | None = None
        self._inflight = Tasks()
        self._stopping = False
        self._ended = asyncio.Event()
        self._endpoints = contextlib.ExitStack()
        self._button_key = ButtonKey(settings.discord_bot_token)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Log in and connect, each retried while Discord is unreachable, both within
        STARTUP_TIMEOUT; a failure stops what began (SettingsError or StartupError)."""
        self._endpoints.enter_context(discord_endpoints(self._settings))
        one_line_reconnects()
        loop = asyncio.get_running_loop()
        budget = self._settings.startup_timeout
        began = loop.time()
        try:
            api = origin(self._settings.discord_api_base or DEFAULT_API)
            client, tree = await keep_trying(
                self._login,
                retryable=UNREACHABLE,
                budget=budget,
                what=f"the Discord API at {api}",
                setting="DISCORD_API_BASE",
            )
            await sync_commands(tree, command_guild(self._settings))
            # Before the gateway connects: the core queues a chat's messages in the order their
            # handling starts, so a new message cannot overtake one left from the last run.
            await self._replay_pending()
            gateway = origin(self._settings.discord_gateway_url or DEFAULT_GATEWAY)
            await keep_trying(
                partial(self._connect, client),
                retryable=(GatewayFailed,),
                budget=budget,
                began=began,  # one STARTUP_TIMEOUT for the login and the connection
                what=f"the Discord gateway at {gateway}",
                setting="DISCORD_GATEWAY_URL",
            )
        except BaseException:
            await self.stop()
            raise

    async def _login(self) -> tuple[discord.Client, app_commands.CommandTree[discord.Client]]:
        """A new client per attempt: discord.py's HTTP session is made by the login itself,
        and a failed one is closed with its client."""
        client = self._client = build_client(
            self._settings,
            self._guild_ready_timeout,
            on_message=self._on_message,
            on_ready=self._on_ready,
            on_interaction=self._on_interaction,
        )
        tree = app_commands.CommandTree(client)
        tree.error(self._on_command_error)
        guild = command_guild(self._settings)
        for command in build_commands(self._core.commands, self._on_slash, self._suggest):
            tree.add_command(command, guild=guild)
        try:
            await client.login(self._settings.discord_bot_token or "")
        except BaseException as exc:
            await client.close()
            self._client = None
            if isinstance(exc, discord.LoginFailure):
                raise SettingsError(
                    "DISCORD_BOT_TOKEN was rejected by Discord (401 Unauthorized)"
                ) from None
            if isinstance(exc, discord.HTTPException) and not isinstance(exc, UNREACHABLE):
                raise StartupError(f"Discord refused the login ({exc.status} {exc.text})") from None
            raise
        return client, tree

    async def _connect(self, client: discord.Client) -> None:
        """One gateway connection, until the client is ready (GatewayFailed if it ends first:
        discord.py gives up on a first connection that fails)."""
        self._connection = asyncio.create_task(client.connect(), name="discord-gateway")
        self._connection.add_done_callback(self._connection_ended)
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            await asyncio.wait({ready, self._connection}, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
        if not client.is_ready():
            exc = self._connection.exception()
            # discord.py logs the cause of a failed first connection, then ends it with an
            # AttributeError of its own (its retry reads the sequence of a socket never opened).
            cause = "" if exc is None or isinstance(exc, AttributeError) else f": {exc!r}"
            raise GatewayFailed(f"the connection ended before READY{cause}")

    async def stop(self) -> None:
        if self._stopping:
            await self._ended.wait()
            return
        self._stopping = True
        self._stop_requested.set()
        late = await self._inflight.drain(STOP_GRACE)
        if late:
            log.warning("discord: %d turns still running at shutdown", late)
        if self._client is not None:
            await self._client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connection
        self._endpoints.close()
        self._ended.set()
        log.info("discord adapter stopped")

    async def wait(self) -> None:
        await self._ended.wait()

    @property
    def client(self) -> discord.Client | None:
        """The discord.py client once started (for diagnostics and tests)."""
        return self._client

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def connected(self) -> bool:
        """Ready, and the gateway websocket (every shard's) is open."""
        client = self._client
        if client is None or self._stopping or client.is_closed() or not client.is_ready():
            return False
        if isinstance(client, discord.AutoShardedClient):
            return all(not shard.is_closed() for shard in client.shards.values())
        return client.ws is not None and client.ws.open

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping or task.cancelled() or not (self._client and self._client.is_ready()):
            return  # a first connection that failed is tried again by start()
        log.error("discord: gateway connection ended: %r", task.exception())
        self._ended.set()

    async def send_outgoing(self, item: Outgoing) -> SendResult:
        """bot.messages.OutgoingSender: an alert, reminder or digest into its channel (see
        adapters/discord/outgoing.py); RETRY while not logged in."""
        client = self._client
        if client is None or client.is_closed():
            return SendResult.RETRY
        return await send_outgoing(client, item)

    # -- events ----------------------------------------------------------------------------
    async def _on_ready(self) -> None:
        assert self._client is not None and self._client.user is not None
        log.info(
            "discord: connected as %s (%d guilds)", self._client.user, len(self._client.guilds)
        )

    async def _on_message(self, message: discord.Message) -> None:
        me = self._client.user if self._client else None
        incoming = to_incoming(message, me)
        if incoming is None:
            return
        reference = message.to_reference(fail_if_not_exists=False) if message.guild else None
        replies = self._channel_replies(message.channel, incoming, reference)
        # Recorded at once, beside the turn (which may wait behind a slow turn of the same
        # chat, recording only when it begins): the gateway never delivers a message again,
        # so one that lived only in memory would be lost to a crash.
        self._inflight.spawn(self._accept(incoming))
        await self._inflight.spawn(self._handle(incoming, replies))

    async def _on_slash(
        self, interaction: discord.Interaction, spec: CommandSpec, values: dict[str, Any]
    ) -> None:
        # Guild output is the asking user's business; admin output is private everywhere. In a
        # DM the conversation is private already (and ephemeral files would vanish).
        ephemeral = spec.admin or interaction.guild_id is not None
        try:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except SEND_ERRORS as exc:
            log.warning("discord: could not acknowledge /%s: %s", spec.name, exc)
            return
        await self._run_interaction(interaction, command_line(spec, values), ephemeral)

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """A button press (a MESSAGE_COMPONENT interaction): acknowledged at once (within
        Discord's 3 s), then its command runs like the slash command it stands for - its
        answer private to the presser in a guild. Someone else's button runs nothing and
        gets an ephemeral "not for you"."""
        if interaction.type is not discord.InteractionType.component:
            return
        press = pressed(self._button_key, interaction)
        ephemeral = interaction.guild_id is not None  # as a slash command's answer
        if await self._acknowledge(interaction, press, ephemeral) and press.command:
            await self._run_interaction(interaction, press.command, ephemeral)

    async def _acknowledge(
        self, interaction: discord.Interaction, press: Pressed, ephemeral: bool
    ) -> bool:
        """Within Discord's 3 s: "thinking…" for a press that runs, else its refusal."""
        try:
            if press.command is None:
                await interaction.response.send_message(press.refusal, ephemeral=True)
            else:
                await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except SEND_ERRORS as exc:
            log.warning("discord: could not acknowledge a button press: %s", exc)
            return False
        return True

    async def _run_interaction(
        self, interaction: discord.Interaction, text: str, ephemeral: bool
    ) -> None:
        """An acknowledged slash command or button press: its command line through the core,
        answered by the interaction's response and follow-ups."""
        replies = InteractionReplies(
            interaction, ephemeral=ephemeral, buttons=self._buttons(interaction.user.id)
        )
        if self._stopping:
            await self._send_safely(replies, Reply(RESTARTING))
            return
        incoming = interaction_incoming(interaction, text, ephemeral)
        await self._inflight.spawn(self._handle(incoming, replies))

    def _buttons(self, user_id: int | str) -> Buttons:
        """The buttons of replies to this user: only they may press them."""
        return Buttons(self._button_key, str(user_id))

    async def _suggest(self, interaction: discord.Interaction, typed: str) -> list[str]:
        return await self._core.suggest_tickers("discord", str(interaction.user.id), typed)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.name if interaction.command else "?"
        log.error("discord: /%s failed: %r", name, error)
        if interaction.response.is_done():
            await self._send_safely(InteractionReplies(interaction, ephemeral=True), Reply(FAILED))
        else:
            with contextlib.suppress(*SEND_ERRORS):
                await interaction.response.send_message(FAILED, ephemeral=True)

    # -- turns -----------------------------------------------------------------------------
    def _channel_replies(
        self,
        channel: discord.abc.Messageable,
        incoming: Incoming,
        reference: discord.MessageReference | None = None,
    ) -> ChannelReplies:
        """Replies in a channel; in a shared one, private replies go to the author's DMs."""
        assert self._client is not None and self._client.user is not None
        client, me = self._client, self._client.user.id
        private = None
        if incoming.chat_kind is ChatKind.GROUP:
            author = discord.Object(id=int(incoming.platform_user_id))
            private = DirectReplies(
                lambda: client.create_dm(author),
                incoming.message_id,
                me,
                self._buttons(incoming.platform_user_id),
            )
        return ChannelReplies(
            channel,
            incoming.message_id,
            reference=reference,
            typing=TypingIndicator(channel),
            private=private,
            earlier=earlier_replies(channel, incoming.message_id, me),
            wall=self._wall,
            buttons=self._buttons(incoming.platform_user_id),
        )

    async def _handle(self, incoming: Incoming, replies: Replies, attempt: int = 0) -> None:
        if self._stopping:
            # Recorded now, answered by the next start (the gateway never redelivers).
            await self._core.accept(incoming)
            log.info("discord: message %s kept for after the restart", incoming.message_id)
            return
        # Nothing is awaited before the core's generator starts: it takes its per-chat FIFO
        # lock on the first step, which keeps a burst of messages in order.
        replies.begin()
        try:
            # A reply that failed ends the turn unacknowledged: the message stays pending, to
            # be tried again later (or at the next start).
            delivered = await deliver_turn(
                self._core.handle(incoming), partial(self._show, replies, incoming.message_id)
            )
            if delivered:
                await replies.finish()
        finally:
            await replies.stop_working()
        if not delivered:
            self._retry_later(incoming, replies, attempt + 1)

    def _retry_later(self, incoming: Incoming, replies: Replies, attempt: int) -> None:
        if attempt >= REDELIVER_ATTEMPTS:
            log.error(
                "discord: reply to %s not delivered after %d attempts; kept for the next start",
                incoming.message_id,
                attempt,
            )
            return
        self._inflight.spawn(self._redeliver(incoming, replies, attempt))

    async def _redeliver(self, incoming: Incoming, replies: Replies, attempt: int) -> None:
        await pause(self._retry_delay * 2 ** (attempt - 1), self._stop_requested)
        if self._stopping:
            return  # still pending: the next start answers it
        log.info("discord: trying the reply to %s again (attempt %d)", incoming.message_id, attempt)
        await self._handle(incoming, replies, attempt)

    async def _accept(self, incoming: Incoming) -> None:
        try:
            await self._core.accept(incoming)
        except Exception as exc:  # the turn records it too, when it begins
            log.warning("discord: could not record message %s yet: %r", incoming.message_id, exc)

    async def _show(self, replies: Replies, message_id: str, reply: Reply) -> bool:
        """Show one reply; False if it failed in a way worth trying again."""
        try:
            if reply.typing:
                replies.working()
            elif reply.partial:
                await replies.partial(reply.text)
            else:
                await replies.final(reply)
        except Undeliverable as exc:
            # Retrying cannot help (no access, channel or interaction gone): let the core
            # close the message.
            log.warning("discord: reply to %s cannot be delivered: %s", message_id, exc)
        except SEND_ERRORS as exc:
            log.warning("discord: reply to %s failed, kept for retry: %r", message_id, exc)
            return False
        return True

    async def _send_safely(self, replies: Replies, reply: Reply) -> None:
        with contextlib.suppress(Undeliverable, *SEND_ERRORS):
            await replies.final(reply)

    async def _replay_pending(self) -> None:
        """Start answering the messages recorded but never answered (a crash or a stop
        mid-turn), oldest first, each as a turn stop() waits for."""
        assert self._client is not None
        try:
            items = await self._core.pending(self.name)
        except Exception:
            log.exception("discord: could not read the messages left from the last run")
            return
        if items:
            log.info("discord: answering %d messages left from the last run", len(items))
        for incoming in items:
            replies: Replies
            if incoming.extra.get("interaction"):
                replies = DroppedReplies(incoming.message_id)
            else:
                channel = self._client.get_partial_messageable(int(incoming.chat_id))
                replies = self._channel_replies(channel, incoming)
            self._inflight.spawn(self._handle(incoming, replies))
