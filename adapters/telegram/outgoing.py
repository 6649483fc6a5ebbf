"""Messages the bot sends on its own (alerts, reminders, the digest) into a Telegram chat.

The scheduler hands over an `Outgoing` and learns what became of it (`SendResult`):
- SENT once Telegram took every part of it;
- CHAT_GONE when Telegram refuses the chat for good (403: the bot was blocked or removed; 400:
  the chat does not exist, or the group moved): the scheduler falls back to the user's
  private chat;
- RETRY when Telegram could not be reached, answered 5xx or kept rate-limiting (PTB's rate
  limiter retries a 429 itself): nothing was lost, the scheduler tries again later. Each call
  is tried once here (OUTGOING_ATTEMPTS): the scheduler sends its messages one after another
  and retries them with its own backoff, so a Telegram that is down costs one attempt per
  message per pass, not the sender's whole backoff for each.

`None` as the chat, or a private reply, goes to the user's private chat with the bot, whose id
is the user's id. Telegram takes no idempotency key, so a send in flight at a crash may arrive
twice (the at-most-one duplicate the outbox allows); within one run, the parts of a long message
that already went out are not sent again when the rest is retried.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from adapters.telegram.delivery import CAPTION_LIMIT
from adapters.telegram.sender import DeliveryFailed, Sender, Target
from adapters.text import TELEGRAM_LIMIT, split_message, utf16_len
from bot.messages import Outgoing, Reply, SendResult

log = logging.getLogger(__name__)

REMEMBERED = 1024  # messages whose sent parts are kept while their rest waits for a retry
OUTGOING_ATTEMPTS = 1  # per Bot API call (the scheduler retries): see the module's doc


def target_of(item: Outgoing) -> Target:
    """The chat it was set in; the private chat (id = the user's id) for None or a private
    reply, which must never reach a shared chat."""
    user = int(item.platform_user_id)
    private = item.chat_id is None or item.reply.private
    chat = user if private else int(item.chat_id or user)
    return Target(chat_id=chat, user_id=user, group=chat != user)


class OutgoingSends:
    """Sends `Outgoing` messages through a `Sender` of their own (OUTGOING_ATTEMPTS tries per
    call); one per adapter."""

    def __init__(self, sender: Sender, remembered: int = REMEMBERED) -> None:
        self._sender = sender
        self._remembered = remembered
        self._parts_sent: OrderedDict[str, int] = OrderedDict()  # item id -> parts gone out

    async def send(self, item: Outgoing) -> SendResult:
        target = target_of(item)
        try:
            await self._parts(self._sender, target, item)
        except DeliveryFailed as exc:
            log.warning("telegram: outgoing %s not sent yet (%s); retried later", item.id, exc)
            return SendResult.RETRY
        except (Forbidden, BadRequest, ChatMigrated) as exc:
            log.info("telegram: chat %s refused outgoing %s (%s)", target.chat_id, item.id, exc)
            self._parts_sent.pop(item.id, None)
            return SendResult.CHAT_GONE
        except TelegramError as exc:  # anything else of PTB's: not a refusal of the chat
            log.warning("telegram: outgoing %s failed (%s); retried later", item.id, exc)
            return SendResult.RETRY
        self._parts_sent.pop(item.id, None)
        return SendResult.SENT

    async def _parts(self, sender: Sender, target: Target, item: Outgoing) -> None:
        """Each part not sent by an earlier attempt in this run, strict about refusals."""
        done = self._parts_sent.get(item.id, 0)
        for index, part in enumerate(_parts(item.reply)):
            if index < done:
                continue
            if isinstance(part, str):
                await sender.send_text(target, part, strict=True)
            else:
                assert item.reply.file is not None
                await sender.send_file(target, item.reply.file, part.caption, strict=True)
            self._note(item.id, index + 1)

    def _note(self, item_id: str, parts: int) -> None:
        self._parts_sent[item_id] = parts
        self._parts_sent.move_to_end(item_id)
        while len(self._parts_sent) > self._remembered:
            self._parts_sent.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _File:
    """The file part of a reply, with its caption (None when the text follows as messages)."""

    caption: str | None


def _parts(reply: Reply) -> list[str | _File]:
    """The messages one reply takes: a file (captioned when the text fits), then the text
    split at Telegram's limit."""
    text = reply.text
    if reply.file is None:
        return list(split_message(text or "…", TELEGRAM_LIMIT, utf16_len))
    if text and utf16_len(text) <= CAPTION_LIMIT:
        return [_File(text)]
    rest = split_message(text, TELEGRAM_LIMIT, utf16_len) if text else []
    return [_File(None), *rest]
