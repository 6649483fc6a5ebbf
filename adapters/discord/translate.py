"""Discord messages -> Incoming: who is addressed, what the text is, what kind of message.

In a guild only a message that mentions the bot (or its managed role) or replies to it is a turn;
`@everyone` is not addressing the bot. The mention is stripped from the text, so
"@Switchboard /watchlist add AAPL" is the command it looks like.
"""

from __future__ import annotations

import logging
import re

import discord

from bot.messages import ChatKind, Incoming

log = logging.getLogger(__name__)


def to_incoming(message: discord.Message, me: discord.ClientUser | None) -> Incoming | None:
    """The Incoming for a message meant for the bot, or None (ignored, with a debug line)."""
    if me is None or message.author.bot or message.webhook_id is not None:
        return None  # ourselves, other bots, webhooks
    if message.type not in (discord.MessageType.default, discord.MessageType.reply):
        return None  # joins, pins, boosts...
    private = message.guild is None
    role = message.guild.self_role if message.guild else None
    mentioned = me.id in message.raw_mentions or (
        role is not None and role.id in message.raw_role_mentions
    )
    if not (private or mentioned or replies_to(message, me.id)):
        log.debug("discord: guild message %s not addressed to us", message.id)
        return None
    text = strip_mentions(message.content, me.id, role.id if role else None)
    return Incoming(
        platform="discord",
        platform_user_id=str(message.author.id),
        chat_id=str(message.channel.id),
        message_id=str(message.id),
        text=text,
        display_name=message.author.display_name,
        username=message.author.name,
        chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP,
        kind=message_kind(message, text),
        timestamp=message.created_at.timestamp(),
        extra={"guild_id": message.guild.id} if message.guild else {},
    )


def replies_to(message: discord.Message, my_id: int) -> bool:
    ref = message.reference
    if ref is None:
        return False
    target = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
    return target is not None and target.author.id == my_id


def strip_mentions(content: str, my_id: int, role_id: int | None) -> str:
    """'<@bot>, tell me a joke' -> 'tell me a joke'; 'hey <@bot>, hi' -> 'hey, hi'."""
    pattern = rf"<@!?{my_id}>" + (rf"|<@&{role_id}>" if role_id else "")
    text = re.sub(rf"[ \t]*(?:{pattern})", "", content).strip()
    return re.sub(r"^[,:;]\s*", "", text)


def message_kind(message: discord.Message, text: str) -> str:
    """'text', or what a message without text carries (the core answers those politely)."""
    if text.strip():
        return "text"
    if message.stickers:
        return "sticker"
    if message.flags.voice:
        return "voice"
    if message.attachments:
        content_type = message.attachments[0].content_type or ""
        return "photo" if content_type.startswith("image/") else "document"
    if message.poll is not None:
        return "poll"
    return "text"


def interaction_incoming(interaction: discord.Interaction, text: str, ephemeral: bool) -> Incoming:
    """A slash command as the core sees it: its command line, from the interaction's user.
    `ephemeral` tells the core the answer is private even in a guild channel."""
    return Incoming(
        platform="discord",
        platform_user_id=str(interaction.user.id),
        chat_id=str(interaction.channel_id),
        message_id=str(interaction.id),
        text=text,
        display_name=interaction.user.display_name,
        username=interaction.user.name,
        chat_kind=ChatKind.GROUP if interaction.guild_id else ChatKind.PRIVATE,
        timestamp=interaction.created_at.timestamp(),
        extra={"ephemeral": ephemeral, "interaction": True, "guild_id": interaction.guild_id},
    )
