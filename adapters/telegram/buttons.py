"""A reply's actions as a Telegram inline keyboard, and a press (a callback query) as an Incoming.

`callback_data` holds 1-64 bytes (Bot API, InlineKeyboardButton): the command and its tag
(adapters/buttons.py) bound to the user the reply was for. A press becomes the command line as
an `Incoming` from the presser in the chat of the message the button is under, so the core runs
it like a typed command, in that user's order in that chat. Its `message_id` is the callback
query's id: a redelivered update is recorded once and not run twice. A press that is not the
presser's own button (or whose long command was kept by a run before a restart) gives no
`Incoming`: it is answered with why, and nothing runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    Update,
)

from adapters.buttons import NOT_FOR_YOU, ButtonKey, rows
from adapters.telegram.translate import PLATFORM
from bot.messages import Action, ChatKind, Incoming

__all__ = ["NOT_FOR_YOU", "Press", "keyboard", "press_of"]
log = logging.getLogger(__name__)

CALLBACK_DATA_LIMIT = 64  # bytes
LABEL_LIMIT = 64
PER_ROW = 3
PRESS_PREFIX = "cb:"  # inbox ids of presses: never mistaken for an update id


def keyboard(
    key: ButtonKey, actions: tuple[Action, ...], user_id: int
) -> InlineKeyboardMarkup | None:
    """The inline keyboard for `actions`, bound to `user_id`; None when there is none."""
    buttons = key.buttons(
        actions, str(user_id), data_limit=CALLBACK_DATA_LIMIT, label_limit=LABEL_LIMIT
    )
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in rows(buttons, PER_ROW)
        ]
    )


@dataclass(frozen=True, slots=True)
class Press:
    """A callback query: answered in any case (with `refusal` when it runs nothing);
    `incoming` is what it runs."""

    query_id: str
    incoming: Incoming | None
    refusal: str = ""


def press_of(update: Update, key: ButtonKey) -> Press | None:
    """The press an update carries, or None when it is no callback query."""
    query = update.callback_query
    if query is None:
        return None
    if query.message is None or query.from_user.is_bot:
        return Press(query.id, None)  # a button under an inline-mode message: never ours
    pressed = key.press(query.data or "", str(query.from_user.id))
    if pressed.command is None:
        log.info("telegram: press %s runs nothing: %s", query.id, pressed.refusal)
        return Press(query.id, None, pressed.refusal)
    return Press(query.id, _incoming(query, query.message, pressed.command))


def _incoming(
    query: CallbackQuery, message: MaybeInaccessibleMessage, command: str
) -> Incoming | None:
    user = query.from_user
    private = message.chat.type == Chat.PRIVATE
    if private and message.chat.id != user.id:
        log.warning("telegram: press %s refused: a private chat not the presser's", query.id)
        return None
    extra: dict[str, int] = {"reply_to": message.message_id}
    if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
        extra["thread_id"] = message.message_thread_id
    return Incoming(
        platform=PLATFORM,
        platform_user_id=str(user.id),
        chat_id=str(message.chat.id),
        message_id=PRESS_PREFIX + query.id,
        text=command,
        display_name=user.full_name,
        username=user.username,
        chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP,
        extra=extra,
    )
