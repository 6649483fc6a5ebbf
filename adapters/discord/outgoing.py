"""Messages the bot sends on its own (alerts, reminders, the digest) into a Discord channel.

The scheduler hands over an `Outgoing` and learns what became of it (`SendResult`):
- SENT once Discord took every part of it;
- CHAT_GONE when Discord refuses the channel for good (404 Unknown Channel, 403 Missing Access
  or Missing Permissions, 50007 DMs closed): the scheduler falls back to the private chat;
- RETRY on 5xx, network errors and a 429 discord.py gave up on, and when a send takes longer
  than OUTGOING_TIMEOUT (discord.py retries a 502 itself for up to ~25 s; the scheduler sends
  one message after another and retries with its own backoff): nothing was lost. Cutting a
  send short is safe: if its POST did land, the resend's nonce returns that message.

`None` as the chat, or a private reply, goes to the user's DM channel. Each part carries a nonce
derived from the outgoing id with `enforce_nonce` (through `ChannelReplies`), so a resend of
the same id after a crash hands back the message Discord already has: no duplicate, within
Discord's nonce window of a few minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import aiohttp
import discord

from adapters.discord.delivery import ChannelReplies, Undeliverable, refusals_are_final
from bot.messages import Outgoing, SendResult

log = logging.getLogger(__name__)

# 20 hex digits of a hash (80 bits): the nonce "o<digits>:<part>" stays within Discord's 25.
NONCE_DIGITS = 20
_TRANSIENT = (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError)
OUTGOING_TIMEOUT = 10.0  # seconds one outgoing message may take, all its parts


def nonce_key(outgoing_id: str) -> str:
    """The stable stem of an outgoing message's nonces (any id length fits)."""
    return "o" + hashlib.sha256(outgoing_id.encode()).hexdigest()[:NONCE_DIGITS]


async def send_outgoing(
    client: discord.Client, item: Outgoing, *, timeout: float = OUTGOING_TIMEOUT
) -> SendResult:
    """Send `item` into its channel (or the user's DMs) with idempotent parts."""
    try:
        async with asyncio.timeout(timeout):
            channel = await _channel(client, item)
            await ChannelReplies(channel, nonce_key(item.id)).final(item.reply)
    except Undeliverable as exc:
        log.info("discord: outgoing %s refused (%s)", item.id, exc)
        return SendResult.CHAT_GONE
    except _TRANSIENT as exc:
        log.warning("discord: outgoing %s not sent yet (%r); retried later", item.id, exc)
        return SendResult.RETRY
    return SendResult.SENT


async def _channel(client: discord.Client, item: Outgoing) -> discord.abc.Messageable:
    """The channel it was set in; the DM channel for None or a private reply, which must
    never reach a shared channel."""
    if item.chat_id is not None and not item.reply.private:
        return client.get_partial_messageable(int(item.chat_id))
    with refusals_are_final():
        return await client.create_dm(discord.Object(id=int(item.platform_user_id)))
