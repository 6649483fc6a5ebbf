"""A Telegram Bot API emulator for end-to-end tests (aiohttp on 127.0.0.1, an ephemeral port).

The real python-telegram-bot talks to it exactly as to api.telegram.org: `base_url` is
`emulator.base_url` (".../bot", PTB appends the token). It records every call, long-polls
`getUpdates` with offsets like Telegram (an update is confirmed by the next call whose offset is
past it), answers the send methods with realistic `Message` objects, and can inject failures
(429 with `retry_after`, 5xx) into the next calls of a method, or 429 every send for a while
(`rate_limit_for`). Tests push updates with the helpers (`private_text`, `group_text`,
`sticker`, `automatic_forward`, ...) and wait on `calls` with a timeout. A user who never started
a private chat with the bot (`close_private_chat`) cannot be written to: 403, as Telegram says.
Formatting comes as `entities` (sendMessage, editMessageText) or `caption_entities`: checked as
the Bot API's MessageEntity and "Formatting options" say (offsets and lengths in UTF-16 code
units within the text, text_link with a url, nesting only by containment, nothing inside code)
and kept on the message; anything else is 400 "Bad Request: can't parse entities: ...".
A chat can also be gone for good (`chat_gone`): the user blocked the bot (403 "Forbidden: bot
was blocked by the user"), the bot was removed from a group (403 "Forbidden: bot was kicked from
the supergroup chat"), or the chat no longer exists (400 "Bad Request: chat not found"), with
the Bot API's own wording.

Inline keyboards (Bot API InlineKeyboardMarkup): a message keeps the `reply_markup` it was sent
or edited with (editMessageText without one removes it); each button has a 1-64 byte
`callback_data`, else 400 BUTTON_DATA_INVALID. `press` plays a user pressing a button: a
`callback_query` update carrying the message and the button's data (only data some button of that
message has: a client cannot send other data). answerCallbackQuery answers a query once (text at
most 200 characters); again, or for an unknown id, 400 as Telegram says of a query too old.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

from testkit.helpers import png_size

# Bot API parameters that are plain strings: never JSON-decode them ("42" stays "42").
_STRING_PARAMS = frozenset(
    {"text", "caption", "action", "parse_mode", "url", "secret_token", "description", "emoji"}
)
SEND_METHODS = (
    "sendMessage",
    "editMessageText",
    "sendDocument",
    "sendPhoto",
    "sendChatAction",
    "answerCallbackQuery",
)
CALLBACK_DATA_BYTES = 64
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<!\S)@[A-Za-z0-9_]{5,32}")
# Telegram's fake senders (Bot API, Message.from): automatic forwards from a linked channel come
# from "Telegram" (777000); a group's anonymous admins post as GroupAnonymousBot, channels as
# Channel_Bot, each with the real sender in `sender_chat`.
SERVICE_USER = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram's servers would attach (offsets and lengths in UTF-16 units)."""
    found = [("bot_command", m) for m in _COMMAND.finditer(text)]
    found += [("mention", m) for m in _MENTION.finditer(text)]
    found.sort(key=lambda item: item[1].start())
    return [
        {"type": kind, "offset": _utf16(text[: m.start()]), "length": _utf16(m.group())}
        for kind, m in found
    ]


def _checked_text(text: Any) -> str:
    """Telegram's own checks: a message text is 1-4096 UTF-16 units after trimming."""
    if not isinstance(text, str) or not text.strip():
        raise LookupError("message text is empty")
    if _utf16(text) > 4096:
        raise LookupError("message is too long")
    return text


# Bot API MessageEntity types a bot may send, and the nesting rules of "Formatting options".
_STYLES = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_CODE = frozenset({"code", "pre"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})
MAX_ENTITIES = 100
_ENTITY_TYPES = _STYLES | _CODE | _QUOTES | {
    "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number",
    "text_link", "text_mention", "custom_emoji",
}  # fmt: skip


def checked_entities(text: str, entities: Any) -> list[dict[str, Any]] | None:
    """`entities` as Telegram checks them: each a known type at offset >= 0 with length >= 1
    within the text, both in UTF-16 code units; text_link with a url, pre's language a string.
    Nested only by containment, and then only as "Formatting options" allows."""
    if entities is None:
        return None
    if isinstance(entities, str):
        entities = json.loads(entities)
    if not isinstance(entities, list):
        raise LookupError("can't parse entities: entities must be an Array")
    size = _utf16(text)
    for entity in entities:
        _check_entity(entity, size)
    for n, first in enumerate(entities):
        for second in entities[n + 1 :]:
            _check_nesting(first, second)
    # Telegram keeps a message's first 100 entities and ignores the rest (tdlib maintainers).
    return [dict(e) for e in entities[:MAX_ENTITIES]] or None


def _check_entity(entity: Any, size: int) -> None:
    if not isinstance(entity, dict) or entity.get("type") not in _ENTITY_TYPES:
        raise LookupError("can't parse entities: unsupported entity type")
    offset, length = entity.get("offset"), entity.get("length")
    if not isinstance(offset, int) or not isinstance(length, int):
        raise LookupError("can't parse entities: offset and length must be Integers")
    if offset < 0 or length < 1 or offset + length > size:
        raise LookupError(f"can't parse entities: entity at offset {offset} is out of the text")
    if entity["type"] == "text_link" and not str(entity.get("url") or ""):
        raise LookupError("can't parse entities: text_link without url")
    if not isinstance(entity.get("language", ""), str):
        raise LookupError("can't parse entities: language must be a String")


def _check_nesting(first: dict[str, Any], second: dict[str, Any]) -> None:
    """Entities sharing characters: one holds the other (of two over the same text, the one
    listed first), of kinds that may hold each other."""
    a0, a1 = first["offset"], first["offset"] + first["length"]
    b0, b1 = second["offset"], second["offset"] + second["length"]
    if b0 >= a1 or a0 >= b1:
        return  # apart
    if a0 <= b0 and b1 <= a1:
        outer, inner = first, second
    elif b0 <= a0 and a1 <= b1:
        outer, inner = second, first
    else:
        raise LookupError("can't parse entities: entities intersect")
    if not _may_hold(outer["type"], inner["type"]):
        raise LookupError(f"can't parse entities: {outer['type']} can't contain {inner['type']}")


def _may_hold(outer: str, inner: str) -> bool:
    if outer in _CODE or (inner in _CODE and outer not in _QUOTES):
        return False  # nothing goes into code, and code only into a quote
    if outer in _QUOTES:
        return inner not in _QUOTES
    return outer in _STYLES or inner in _STYLES


def _caption(params: dict[str, Any]) -> dict[str, Any]:
    """A file's caption and its checked caption_entities (the same rules as a text's)."""
    caption = params.get("caption")
    if not isinstance(caption, str):
        return {}
    entities = checked_entities(caption, params.get("caption_entities"))
    return {"caption": caption, "caption_entities": entities}


def _checked_markup(markup: Any) -> dict[str, Any] | None:
    """An inline keyboard as Telegram checks it: rows of buttons with a text each and, for a
    callback button, 1-64 bytes of callback_data."""
    if markup is None:
        return None
    if isinstance(markup, str):
        markup = json.loads(markup)
    keyboard = markup.get("inline_keyboard")
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise LookupError('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for button in (b for row in keyboard for b in row):
        if not str(button.get("text") or "").strip():
            raise LookupError("BUTTON_TEXT_INVALID")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_BYTES:
            raise LookupError("BUTTON_DATA_INVALID")
    return dict(markup)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the bot made: method name, decoded parameters, uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 200


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int
    skip: int = 0  # calls answered normally before the failures begin


class TelegramApiEmulator:
    """Use as `async with TelegramApiEmulator(token) as tg:`; point PTB at `tg.base_url`."""

    def __init__(
        self,
        token: str,
        *,
        bot_id: int = 7_000_001,
        username: str = "switchboard_test_bot",
        first_name: str = "Switchboard",
    ) -> None:
        self.token = token
        self.bot = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[str, list[dict[str, Any]]] = {}  # scope (JSON) -> commands
        self._updates: list[dict[str, Any]] = []
        self._again: deque[dict[str, Any]] = deque()
        self._delivered: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._limited: dict[str, float] = {}  # method -> monotonic end of a 429 window
        self._update_ids = itertools.count(100_001)
        self._message_ids = itertools.count(5_001)
        self._held: set[str] = set()
        self._closed_private: set[int] = set()
        self._queries: dict[str, dict[str, Any]] = {}  # callback query id -> the query
        self.answers: dict[str, dict[str, Any]] = {}  # callback query id -> the answer
        self._gone: dict[str, tuple[int, str]] = {}  # chat id -> (status, description)
        self.holding: list[Call] = []  # requests parked by `hold`, never answered successfully
        # Called with each request as it arrives, before it is answered: a test can kill the bot
        # at an exact point (the request reached Telegram; the bot never saw the answer).
        self.on_call: Callable[[Call], None] | None = None
        # Called with the update ids of each non-empty getUpdates answer, before it is sent: the
        # bot has asked for these messages and will begin their turns as soon as it has them.
        self.on_deliver: Callable[[list[int]], None] | None = None
        self._drop = asyncio.Event()
        self._wake = asyncio.Event()  # replaced after each wake-up, so every poll sees it
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    # -- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_route("GET", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        # Wake pending long polls first, or the runner's cleanup waits for them to time out.
        self._closing = True
        self._notify()
        self.drop_held()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- what the bot did --------------------------------------------------------------------
    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """Successful sendMessage calls (to one chat, or all)."""
        return [
            c
            for c in self.calls_to("sendMessage")
            if chat_id is None or int(c.params["chat_id"]) == chat_id
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [c.params["text"] for c in self.sent(chat_id)]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat as they look now (after edits), oldest first."""
        found = [
            m
            for (chat, _), m in self._messages.items()
            if chat == chat_id and m["from"]["id"] == self.bot["id"]
        ]
        return sorted(found, key=lambda m: m["message_id"])

    def shown(self, chat_id: int) -> list[str]:
        """The texts (or captions) of the bot's messages in a chat, as a user sees them now."""
        return [m.get("text") or m.get("caption") or "" for m in self.bot_messages(chat_id)]

    def delivered(self) -> list[int]:
        """The ids of every update handed out by getUpdates so far, ascending."""
        return sorted(self._delivered)

    def confirmed(self, update_id: int) -> bool:
        """True once the bot asked for updates past `update_id` (Telegram forgets it then)."""
        return any(
            int(c.params.get("offset") or 0) > update_id for c in self.calls_to("getUpdates")
        )

    # -- failures ----------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next `times` calls of `method` with an error (429 carries retry_after),
        once `after` calls of it went through normally."""
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description or (
            f"Too Many Requests: retry after {retry_after}" if status == 429 else "Bad Gateway"
        )
        self._failures.setdefault(method, deque()).append(
            _Failure(status, text, retry_after, times, after)
        )

    def rate_limit_for(self, seconds: float, methods: tuple[str, ...] = SEND_METHODS) -> float:
        """Answer every call of `methods` with 429 for `seconds` from now, each carrying the
        `retry_after` left in the window (whole seconds, rounded up, as Telegram does).
        Returns the window's end on the clock `Call.at` uses (time.monotonic)."""
        until = time.monotonic() + seconds
        for method in methods:
            self._limited[method] = until
        return until

    def hold(self, method: str) -> None:
        """Park every call of `method` without answering (a send in flight when the bot dies);
        `drop_held` answers them with a 502 so nothing waits past the test."""
        self._held.add(method)

    def close_private_chat(self, user_id: int) -> None:
        """The user never pressed Start: the bot cannot write to them privately (403)."""
        self._closed_private.add(user_id)

    def chat_gone(self, chat_id: int, why: str = "blocked") -> None:
        """From now on every send to `chat_id` is refused for good: `blocked` (a user blocked
        the bot), `kicked` (the bot was removed from the group) or `not_found` (deleted)."""
        answers = {
            "blocked": (403, "Forbidden: bot was blocked by the user"),
            "kicked": (403, "Forbidden: bot was kicked from the supergroup chat"),
            "not_found": (400, "Bad Request: chat not found"),
        }
        self._gone[str(chat_id)] = answers[why]

    def drop_held(self) -> None:
        self._held.clear()
        self._drop.set()

    # -- updates pushed by tests -------------------------------------------------------------
    def push(self, update: dict[str, Any]) -> int:
        """Queue a raw update (an `update_id` is assigned when missing) and return its id."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    def deliver_again(self, update_id: int) -> None:
        """Put an already delivered update into the next batch regardless of the offset: what
        Telegram does when the bot crashed before confirming it."""
        self._again.append(self._delivered[update_id])
        self._notify()

    def private_text(
        self, user_id: int, text: str, *, first_name: str = "Ada", username: str | None = None
    ) -> int:
        user = self._user(user_id, first_name) | ({"username": username} if username else {})
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        return self.push({"message": self._message(chat, user, text=text)})

    def group_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        first_name: str = "Ada",
        reply_to: int | None = None,
    ) -> int:
        """A group message; `reply_to` is the id of an earlier message (e.g. the bot's)."""
        user = self._user(user_id, first_name)
        message = self._message(self._group(chat_id), user, text=text)
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat_id, reply_to)]
        return self.push({"message": message})

    def automatic_forward(self, chat_id: int, channel_id: int, text: str) -> int:
        """A linked channel's post, forwarded into its discussion group by Telegram."""
        channel = {"id": channel_id, "type": "channel", "title": "Test channel"}
        message = self._message(self._group(chat_id), SERVICE_USER, text=text)
        message.update(
            sender_chat=channel,
            is_automatic_forward=True,
            forward_origin={
                "type": "channel",
                "date": message["date"],
                "chat": channel,
                "message_id": next(self._message_ids),
            },
        )
        return self.push({"message": message})

    def on_behalf_of_chat(self, chat_id: int, text: str, *, channel_id: int | None = None) -> int:
        """A group message sent as the group (an anonymous admin) or as a channel."""
        if channel_id is None:
            sender, sender_chat = ANONYMOUS_ADMIN, self._group(chat_id)
        else:
            sender = CHANNEL_BOT
            sender_chat = {"id": channel_id, "type": "channel", "title": "Test channel"}
        message = self._message(self._group(chat_id), sender, text=text, sender_chat=sender_chat)
        return self.push({"message": message})

    def sticker(self, chat_id: int, user_id: int, *, first_name: str = "Ada") -> int:
        chat = (
            self._group(chat_id)
            if chat_id < 0
            else {"id": chat_id, "type": "private", "first_name": first_name}
        )
        sticker = {
            "file_id": "CAACAgIAAxkBAAEB",
            "file_unique_id": "AgADAQAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        message = self._message(chat, self._user(user_id, first_name), sticker=sticker)
        return self.push({"message": message})

    async def deliver_webhook(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST an update to the URL the bot registered with setWebhook, as Telegram does."""
        assert self.webhook is not None, "the bot did not call setWebhook"
        update.setdefault("update_id", next(self._update_ids))
        headers = {"Content-Type": "application/json"}
        token = secret if secret is not None else self.webhook.get("secret_token")
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        if self._client is None:
            self._client = aiohttp.ClientSession()
        async with self._client.post(
            self.webhook["url"], data=json.dumps(update), headers=headers
        ) as response:
            return response.status

    def press(
        self, chat_id: int, message_id: int, data: str, from_user: int, *, first_name: str = "Ada"
    ) -> int:
        """A user presses the inline button with `data` under one of the bot's messages: a
        `callback_query` update, queued. Returns the update id."""
        return self.push(self.callback_update(chat_id, message_id, data, from_user, first_name))

    def callback_update(
        self, chat_id: int, message_id: int, data: str, from_user: int, first_name: str = "Ada"
    ) -> dict[str, Any]:
        """The `callback_query` update of a press, not queued (e.g. for `deliver_webhook`)."""
        message = self._messages[(chat_id, message_id)]
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        offered = [b.get("callback_data") for row in keyboard for b in row]
        if data not in offered:
            raise AssertionError(f"no button with {data!r} under message {message_id}")
        update_id = next(self._update_ids)
        # Unique, and as long as Telegram's (19 digits).
        query_id = str(4_300_000_000_000_000_000 + update_id * 1000 + from_user % 1000)
        query: dict[str, Any] = {
            "id": query_id,
            "from": self._user(from_user, first_name),
            "message": message,
            "chat_instance": str(-chat_id if chat_id < 0 else chat_id * 7),
            "data": data,
        }
        self._queries[query_id] = {**query, "update_id": update_id}
        return {"update_id": update_id, "callback_query": query}

    def answer_to(self, update_id: int) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery for the press `update_id` carried (None: not yet)."""
        query = next((q for q in self._queries.values() if q["update_id"] == update_id), None)
        return None if query is None else self.answers.get(query["id"])

    def buttons(self, chat_id: int, message_id: int) -> list[tuple[str, str]]:
        """(label, callback data) of each button under a message, row by row."""
        markup = self._messages[(chat_id, message_id)].get("reply_markup") or {}
        return [
            (b["text"], b.get("callback_data", ""))
            for row in markup.get("inline_keyboard") or []
            for b in row
        ]

    def message_update(self, chat_id: int, user_id: int, text: str) -> dict[str, Any]:
        """A message update (private chat for a positive id) without queueing it."""
        user = self._user(user_id, "Ada")
        chat = (
            self._group(chat_id)
            if chat_id < 0
            else {"id": chat_id, "type": "private", "first_name": "Ada"}
        )
        return {"message": self._message(chat, user, text=text)}

    # -- HTTP --------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await self._read(request)
        if self.on_call is not None:
            self.on_call(Call(method, params, files, status=0))
        if request.match_info["token"] != self.token:
            return self._record(method, params, files, self._error(401, "Unauthorized"))
        gone = self._gone.get(str(params.get("chat_id")))
        if gone is not None and method in SEND_METHODS:
            return self._record(method, params, files, self._error(*gone))
        if method in self._held:
            self.holding.append(Call(method, params, files, status=0))
            await self._drop.wait()
            return self._error(502, "Bad Gateway")
        failure = self._take_failure(method) or self._rate_limited(method)
        if failure is not None:
            return self._record(method, params, files, failure)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._record(method, params, files, self._error(404, "Not Found"))
        if method == "getUpdates":  # record before waiting, so tests see the poll begin
            self.calls.append(Call(method, params, files))
            return self._ok(await handler(params))
        try:
            result = handler(params, files)
        except LookupError as exc:
            return self._record(method, params, files, self._error(400, f"Bad Request: {exc}"))
        except PermissionError as exc:
            return self._record(method, params, files, self._error(403, f"Forbidden: {exc}"))
        return self._record(method, params, files, self._ok(result))

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="file downloads are not emulated")

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        if request.content_type == "application/json":
            return dict(await request.json()), files
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                files[key] = UploadedFile(value.filename, value.content_type, data)
            elif key in _STRING_PARAMS:
                params[key] = value
            else:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value
        return params, files

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile],
        response: web.Response,
    ) -> web.Response:
        self.calls.append(Call(method, params, files, status=response.status))
        return response

    def _take_failure(self, method: str) -> web.Response | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        if failure.skip > 0:
            failure.skip -= 1
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.popleft()
        extra = {"retry_after": failure.retry_after} if failure.retry_after else None
        return self._error(failure.status, failure.description, extra)

    def _rate_limited(self, method: str) -> web.Response | None:
        left = self._limited.get(method, 0.0) - time.monotonic()
        if left <= 0:
            return None
        wait = math.ceil(left)
        return self._error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(
        status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    # -- methods -----------------------------------------------------------------------------
    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        while True:
            if offset:  # confirm: Telegram forgets updates below the offset
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            batch = list(self._again) + self._updates[:limit]
            self._again.clear()
            left = deadline - time.monotonic()
            if batch or self._closing or left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        for update in batch:
            self._delivered[update["update_id"]] = update
        if batch and self.on_deliver is not None:
            self.on_deliver([int(u["update_id"]) for u in batch])
        return batch

    def _m_getMe(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        return {**self.bot, "can_join_groups": True, "can_read_all_group_messages": False}

    def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    def _m_setWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self.webhook = params
        return True

    def _m_setMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        self.commands[scope] = list(params["commands"])
        return True

    def _m_sendChatAction(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        return True

    def _m_sendMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        text = _checked_text(params.get("text"))
        entities = checked_entities(text, params.get("entities"))
        return self._bot_message(params, text=text, entities=entities)

    def _m_answerCallbackQuery(
        self, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._queries or query_id in self.answers:
            raise LookupError(QUERY_TOO_OLD)
        if len(str(params.get("text") or "")) > 200:
            raise LookupError("MESSAGE_TOO_LONG")
        self.answers[query_id] = params
        return True

    def _m_sendDocument(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        upload = files.get("document")
        if upload is None:
            raise LookupError("there is no document in the request")
        document = {
            "file_id": f"doc{len(self.calls)}",
            "file_unique_id": f"u{len(self.calls)}",
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": len(upload.data),
        }
        return self._bot_message(params, document=document, **_caption(params))

    def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        """Bot API sendPhoto: at most 10 MB, width + height at most 10000, a ratio of at most
        20; the message carries `photo`, an array of PhotoSize (here the one size uploaded)."""
        upload = files.get("photo")
        if upload is None:
            raise LookupError("there is no photo in the request")
        size_of = png_size(upload.data)
        if size_of is None:
            raise LookupError("IMAGE_PROCESS_FAILED")
        width, height = size_of
        if len(upload.data) > 10_000_000 or width + height > 10_000:
            raise LookupError("PHOTO_INVALID_DIMENSIONS")
        size = {
            "file_id": f"photo{len(self.calls)}",
            "file_unique_id": f"u{len(self.calls)}",
            "width": width,
            "height": height,
            "file_size": len(upload.data),
        }
        return self._bot_message(params, photo=[size], **_caption(params))

    def _m_editMessageText(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            raise LookupError("message to edit not found")
        message = self._messages[key]
        entities = checked_entities(_checked_text(params.get("text")), params.get("entities"))
        markup = _checked_markup(params.get("reply_markup"))
        shown = (message.get("text"), message.get("entities"), message.get("reply_markup"))
        if shown == (params["text"], entities, markup):
            raise LookupError("message is not modified")
        message.update(text=params["text"], edit_date=int(time.time()))
        if entities is None:
            message.pop("entities", None)
        else:
            message["entities"] = entities
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return message

    # -- building objects --------------------------------------------------------------------
    def _bot_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id in self._closed_private:
            raise PermissionError("bot can't initiate conversation with a user")
        chat = (
            self._group(chat_id)
            if chat_id < 0
            else {"id": chat_id, "type": "private", "first_name": "Ada"}
        )
        markup = _checked_markup(params.get("reply_markup"))
        if markup is not None:
            content["reply_markup"] = markup
        message = self._message(chat, self.bot, **{k: v for k, v in content.items() if v})
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _message(self, chat: dict[str, Any], user: dict[str, Any], **content: Any) -> dict:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            **content,
        }
        text = content.get("text")
        # Telegram finds entities in every user's text, fake senders' included.
        if text and user is not self.bot and (entities := _entities(text)):
            message["entities"] = entities
        self._messages[(int(chat["id"]), message["message_id"])] = message
        return message

    @staticmethod
    def _user(user_id: int, first_name: str) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name}

    @staticmethod
    def _group(chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "type": "supergroup", "title": "Test group"}
