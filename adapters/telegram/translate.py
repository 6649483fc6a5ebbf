"""Telegram `Update` -> neutral `Incoming`: who wrote, where, and whether the bot was addressed.

Private chat: every message is for the bot. Group: only a mention of @botname (stripped from the
text), a reply to one of the bot's messages, or a command (`/cmd@botname` or plain `/cmd`).
Other group chatter is dropped here, never recorded: with Telegram's privacy mode on the bot does
not even receive it, and storing strangers' group messages would be wrong anyway.
`Incoming.message_id` is the `update_id`, because that is what Telegram delivers again after a
crash (the message id alone is only unique per chat).

Refused here, before anything is recorded: automatic forwards from a linked channel and messages
sent on behalf of a chat (`sender_chat`): their `from` is a pseudo-user shared by every channel
and group (777000, GroupAnonymousBot), so they would all write into one memory. And a "private"
update whose chat is not its sender's: Telegram never sends one, so it is forged (a webhook POST
with an admin's id and the attacker's chat would otherwise send the admin's data there).
"""

from __future__ import annotations

import logging
import re

from telegram import Chat, Message, MessageEntity, Update

from bot.messages import ChatKind, Incoming

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# Non-text content, checked in this order (an animation also carries a `document`).
_KINDS = (
    "sticker",
    "photo",
    "voice",
    "video_note",
    "video",
    "audio",
    "animation",
    "document",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
)
_MENTION_TAIL = (",", ":", ";")
_SPACES = re.compile(r"[ \t]{2,}")


def to_incoming(update: Update, bot_id: int, bot_username: str) -> Incoming | None:
    """The Incoming for a new message, or None for anything the bot should not answer
    (edits, channel posts, service messages, other bots, group chatter not addressed to it)."""
    message = update.message
    if message is None or not _from_a_person(update.update_id, message):
        return None
    if message.from_user is None or message.from_user.is_bot:
        return None
    kind = message_kind(message)
    if kind is None:
        return None
    private = message.chat.type == Chat.PRIVATE
    if private and message.chat.id != message.from_user.id:
        log.warning(
            "telegram: update %s refused: a private chat that is not its sender's (forged?)",
            update.update_id,
        )
        return None
    text, addressed = _address(message, bot_id, bot_username.lower())
    if not (private or addressed):
        return None
    extra: dict[str, int] = {"reply_to": message.message_id}
    if message.is_topic_message and message.message_thread_id is not None:
        extra["thread_id"] = message.message_thread_id
    return Incoming(
        platform=PLATFORM,
        platform_user_id=str(message.from_user.id),
        chat_id=str(message.chat.id),
        message_id=str(update.update_id),
        text=text,
        display_name=message.from_user.full_name,
        username=message.from_user.username,
        chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP,
        addressed=True,
        kind=kind,
        timestamp=message.date.timestamp(),
        extra=extra,
    )


def _from_a_person(update_id: int, message: Message) -> bool:
    if message.is_automatic_forward or message.sender_chat is not None:
        log.debug("telegram: update %s ignored: sent on behalf of a chat", update_id)
        return False
    return True


def message_kind(message: Message) -> str | None:
    if message.text is not None:
        return "text"
    for kind in _KINDS:
        if getattr(message, kind, None):
            return kind
    return None  # a service message: someone joined, a pin, a topic created, ...


def _address(message: Message, bot_id: int, username: str) -> tuple[str, bool]:
    """The text with the bot's mention / command suffix removed, and whether it was addressed."""
    text = message.text if message.text is not None else message.caption or ""
    entities = message.entities if message.text is not None else message.caption_entities
    addressed = _replies_to_bot(message, bot_id)
    units = text.encode("utf-16-le")  # entity offsets count UTF-16 code units
    cuts: list[tuple[int, int]] = []
    for entity in entities:
        start, end = 2 * entity.offset, 2 * (entity.offset + entity.length)
        value = units[start:end].decode("utf-16-le")
        if entity.type == MessageEntity.MENTION and value.lower() == f"@{username}":
            addressed = True
            if units[end : end + 2].decode("utf-16-le", "ignore") in _MENTION_TAIL:
                end += 2  # "@bot, tell me" -> "tell me"
            cuts.append((start, end))
        elif entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            _, at, target = value.partition("@")
            if not at or target.lower() == username:
                addressed = True
                if at:  # "/help@bot args" -> "/help args"
                    cuts.append((start + 2 * len(value.partition("@")[0]), end))
    for start, end in sorted(cuts, reverse=True):
        units = units[:start] + units[end:]
    if cuts:
        text = _SPACES.sub(" ", units.decode("utf-16-le")).strip()
    return text, addressed


def _replies_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None:
        return False
    # In forum topics every message "replies" to the topic's service message: not a real reply.
    return replied.from_user.id == bot_id and replied.forum_topic_created is None
