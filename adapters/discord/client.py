"""Building the discord.py client: endpoints, intents, sharding, slash command sync."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import discord
import yarl
from discord import app_commands

from bot.settings import Settings

log = logging.getLogger(__name__)

# discord.py takes only coroutine functions as event handlers.
Handler = Callable[..., Coroutine[Any, Any, None]]


@contextlib.contextmanager
def discord_endpoints(settings: Settings) -> Iterator[None]:
    """Point discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL while the adapter runs.

    discord.py has no per-client endpoint option; these class attributes are the switch. They
    are put back afterwards, so nothing else in the process keeps talking to a test server.
    """
    route, websocket = discord.http.Route, discord.gateway.DiscordWebSocket
    saved = route.BASE, websocket.DEFAULT_GATEWAY
    if settings.discord_api_base:
        route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        websocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    try:
        yield
    finally:
        route.BASE, websocket.DEFAULT_GATEWAY = saved


def build_client(
    settings: Settings,
    guild_ready_timeout: float,
    *,
    on_message: Handler,
    on_ready: Handler,
    on_interaction: Handler | None = None,
) -> discord.Client:
    """A Client, or an AutoShardedClient when DISCORD_SHARD_COUNT is set (all shards, or the
    ones DISCORD_SHARD_IDS names, in this process)."""
    # Intents.default() has no privileged intent: DMs and messages that mention the bot carry
    # their content anyway. Reading every guild message would need message_content.
    intents = discord.Intents.default()
    intents.typing = False
    # The bot never joins voice: the warnings about missing voice libraries are noise.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    options: dict[str, Any] = {
        "intents": intents,
        "allowed_mentions": discord.AllowedMentions.none(),
        "guild_ready_timeout": guild_ready_timeout,
        "activity": discord.CustomActivity(name="DM me or @mention me · /help"),
    }
    client: discord.Client
    if settings.discord_shard_count:
        if settings.discord_shard_ids:  # left out: every shard runs here
            options["shard_ids"] = list(settings.discord_shard_ids)
        client = discord.AutoShardedClient(shard_count=settings.discord_shard_count, **options)
    else:
        client = discord.Client(**options)
    client.event(_named("on_message", on_message))
    client.event(_named("on_ready", on_ready))
    if on_interaction is not None:  # every interaction; button presses are the adapter's
        client.event(_named("on_interaction", on_interaction))
    return client


def _named(name: str, func: Handler) -> Handler:
    """discord.py finds event handlers by function name."""

    async def handler(*args: Any) -> None:
        await func(*args)

    handler.__name__ = name
    return handler


def command_guild(settings: Settings) -> discord.Object | None:
    """The guild slash commands go to (DISCORD_GUILD_ID: instant, for development), or None
    for global commands."""
    guild_id = settings.discord_guild_id
    return discord.Object(id=guild_id) if guild_id else None


async def sync_commands(tree: app_commands.CommandTree, guild: discord.Object | None) -> None:
    """Replace the registered commands with ours (one bulk request); a failure keeps the old
    ones and is only logged — chat still works."""
    where = f"to guild {guild.id}" if guild else "globally (clients may take a while to show)"
    try:
        synced = await tree.sync(guild=guild)
    except discord.HTTPException as exc:
        log.warning("discord: slash command sync failed (%s); old commands stay", exc.status)
        return
    log.info("discord: %d slash commands synced %s", len(synced), where)


def one_line_reconnects() -> None:
    """discord.py logs each gateway reconnect with the network error's whole traceback (an
    ERROR); a WARNING line with the error says the same. Idempotent."""
    logging.getLogger("discord.client").addFilter(_reconnect_in_one_line)


def _reconnect_in_one_line(record: logging.LogRecord) -> bool:
    if record.exc_info and str(record.msg).startswith("Attempting a reconnect"):
        error = record.exc_info[1]
        record.msg = f"gateway: {record.getMessage()} after {type(error).__name__}: {error}"
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True
