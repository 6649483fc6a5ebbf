"""Neutral messages between adapters and the conversation core. No platform library here."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from agents.user_schedules import ChatOrigin


class ChatKind(Enum):
    PRIVATE = "private"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message (or slash command) from a platform user.

    `message_id` is unique per platform (Telegram: the update id; Discord: the message or
    interaction id) and is what the inbox dedupes on. `addressed` says the bot was mentioned,
    replied to, or is in a private chat; the core ignores group chatter that is not addressed.
    `text` holds the command line for commands ("/watchlist add AAPL"); adapters of platforms
    with typed options (Discord) render them back into that one line.
    `kind` is "text", or e.g. "sticker"/"photo"/"voice" for a non-text message.
    """

    platform: str
    platform_user_id: str
    chat_id: str
    message_id: str
    text: str
    display_name: str | None = None
    username: str | None = None  # the platform's @username, kept with the identity
    chat_kind: ChatKind = ChatKind.PRIVATE
    addressed: bool = True
    kind: str = "text"
    timestamp: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_command(self) -> bool:
        return self.kind == "text" and self.text.lstrip().startswith("/")

    def to_payload(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in the inbox so a message can be replayed."""
        return {
            "platform": self.platform,
            "platform_user_id": self.platform_user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "text": self.text,
            "display_name": self.display_name,
            "username": self.username,
            "chat_kind": self.chat_kind.value,
            "addressed": self.addressed,
            "kind": self.kind,
            "timestamp": self.timestamp,
            "extra": self.extra,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Incoming:
        return cls(
            platform=data["platform"],
            platform_user_id=data["platform_user_id"],
            chat_id=data["chat_id"],
            message_id=data["message_id"],
            text=data["text"],
            display_name=data.get("display_name"),
            username=data.get("username"),
            chat_kind=ChatKind(data.get("chat_kind", "private")),
            addressed=data.get("addressed", True),
            kind=data.get("kind", "text"),
            timestamp=data.get("timestamp"),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class ReplyFile:
    """A file sent with a reply. An `image/...` one is shown as a picture (Telegram sendPhoto,
    Discord an attachment, the console saves it); anything else as a document."""

    filename: str
    data: bytes
    mime_type: str = "application/json"

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")


@dataclass(frozen=True, slots=True)
class Action:
    """A button under a reply: pressing it runs `command` as if the user typed it.

    Adapters render actions natively (Telegram inline keyboard, Discord buttons) and bind each
    press to the user who got the reply; the console lists the commands."""

    label: str
    command: str  # a command line, e.g. "/watchlist remove AAPL"


@dataclass(frozen=True, slots=True)
class Reply:
    """Something to send back in the chat the message came from.

    `partial` replies carry the text streamed so far (adapters may edit one message with it);
    the non-partial reply that follows carries the whole final text. `private` content may only
    reach a place where the asking user alone sees it (Discord: an ephemeral response or a DM;
    Telegram: the private chat); where that is impossible, the shared chat gets a short note
    without the content. Text is plain unless `markdown` is set: adapters escape plain text for
    their platform (quoted user input never becomes formatting) and split it at their length
    limit. `markdown` marks the model's Markdown (agent answers and their previews): each
    adapter renders it natively (Telegram entities, Discord Markdown, the console plain text).

    A `typing` reply carries no content: the turn holds its lock and its answer is taking a
    while, so the adapter shows its typing indicator until the next non-partial reply. It is
    never yielded for a message still waiting behind others, nor for a quick answer.

    `actions` are buttons under the reply (see `Action`); an adapter that splits a long text
    puts them under its last part.
    """

    text: str
    file: ReplyFile | None = None
    private: bool = False
    partial: bool = False
    typing: bool = False
    actions: tuple[Action, ...] = ()
    markdown: bool = False

    @classmethod
    def working(cls) -> Reply:
        """The `typing` signal."""
        return cls("", typing=True)


@dataclass(frozen=True, slots=True)
class CommandOption:
    """A typed argument of a command, for platforms with typed slash commands (Discord)."""

    name: str
    description: str
    type: str = "str"  # "str" | "int"
    required: bool = False
    choices: tuple[str, ...] = ()
    autocomplete: bool = False  # a ticker: the user's watchlist is offered while typing


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command as menus show it (Telegram setMyCommands, Discord application commands)."""

    name: str
    description: str
    admin: bool = False
    options: tuple[CommandOption, ...] = ()


class ConversationCore(Protocol):
    """The one entry point adapters call (implemented by bot.conversation.Conversation).

    The turn contract. `handle(incoming)` is an async generator: it records the message in the
    inbox unless `accept` already did, takes the session's lock, skips the message if it was
    already answered (a redelivery), runs the command or the agent turn, and yields replies
    (partial ones while the model streams, `Reply.working()` when the answer takes a while).
    Errors become a short honest reply; nothing raises out of `handle`.

    The acknowledgement: the message is marked answered only when the adapter asks for the
    next item after the last reply - i.e. after it sent that reply - and the generator ends.
    So an adapter iterates it to its end once delivery worked, and otherwise leaves the loop
    and closes the generator (`contextlib.aclosing`): the message then stays unanswered, to be
    tried again (`pending`).
    """

    commands: tuple[CommandSpec, ...]

    async def accept(self, incoming: Incoming) -> None:
        """Record the message durably now (before anything else happens to it), for adapters
        that must confirm a fetched batch (Telegram) or may be stopped before the turn
        starts. `handle` then uses what this found: the message costs no second lookup."""
        ...

    def handle(self, incoming: Incoming) -> AsyncGenerator[Reply, None]: ...

    async def suggest_tickers(self, platform: str, platform_user_id: str, typed: str) -> list[str]:
        """Symbols from the user's watchlist starting with `typed` (for an option's
        autocomplete); none for a user we do not know. Records nothing."""
        ...

    async def pending(self, platform: str) -> list[Incoming]:
        """Messages recorded but never answered (e.g. before a crash), all of them, round-robin
        over users (every user's oldest first, then their second, ...); the adapter passes each
        to `handle` again at startup, where the per-user limits do not refuse them."""
        ...


class StartupError(Exception):
    """The bot cannot start (the database cannot be opened, a platform stays unreachable). The
    message is the one line the operator sees: it names the setting, and never a secret."""


class Adapter(Protocol):
    """A platform front end. Built by the composition root with (settings, core, ...)."""

    name: str

    @property
    def connected(self) -> bool:
        """True while the platform connection is up (readiness, bot/health.py)."""
        ...

    async def start(self) -> None:
        """Connect and begin taking messages; returns once running. A platform that rejects
        the configuration raises `bot.settings.SettingsError`; one that stays unreachable for
        `Settings.startup_timeout` raises `StartupError`. Either leaves nothing open."""
        ...

    async def stop(self) -> None:
        """Stop taking messages, let in-flight turns finish, close connections. Idempotent."""
        ...

    async def wait(self) -> None:
        """Return when the adapter ends by itself (the console at end of input).
        Platform adapters only return after `stop`."""
        ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the bot sends on its own (an alert, a reminder, the digest).

    `id` is the deterministic outbox key ("reminder:<job id>:<due>", ...): a resend after a
    crash carries the same id (Discord's nonce is derived from it). `chat_id` is the chat the
    job was set in; None means the user's private chat with the bot (the DM on Discord), which
    goes to `platform_user_id`."""

    id: str
    platform: str
    chat_id: str | None
    platform_user_id: str
    user_id: str
    reply: Reply


class SendResult(Enum):
    SENT = "sent"  # the platform accepted it (or had already: a resend of the same id)
    CHAT_GONE = "chat_gone"  # the chat no longer takes our messages: fall back to a private one
    RETRY = "retry"  # a transient failure (429/5xx/network): try again later, nothing lost


@runtime_checkable  # the composition root picks the adapters that send (all of ours do)
class OutgoingSender(Protocol):
    """What the scheduler sends through: each adapter (bot/app.py hands them over)."""

    name: str  # the platform ("telegram", "discord", "console")

    async def send_outgoing(self, item: Outgoing) -> SendResult: ...


def chat_origin(incoming: Incoming) -> ChatOrigin:
    """Where alerts and reminders set from this message fire: the shared chat it was written
    in, or (None) the user's private chat with the bot - which is also where a job falls back
    to when its chat is gone."""
    shared = incoming.chat_kind is ChatKind.GROUP
    return ChatOrigin(
        incoming.platform, incoming.chat_id if shared else None, incoming.platform_user_id
    )
