"""The Telegram front end on python-telegram-bot 22: polling (default) or webhook.

Lifecycle in-process: initialize() -> updater.start_polling()/start_webhook() -> start(), stop in
reverse. `concurrent_updates` is on, and the handler only starts a tracked task for the turn and
returns: a message waiting behind others of its chat holds none of PTB's concurrency slots, so
one user's flood cannot keep everyone else's updates waiting. Tasks start in creation order and
the core queues a chat's turns on the first step of `handle`, so arrival order is kept.

Nothing is lost across a crash: PTB confirms a fetched batch with the *next* getUpdates (and a
webhook POST is confirmed by our 200), before any handler ran. So every update is recorded in the
core's inbox (`core.accept`) as it enters the update queue — before that confirmation — and the
inbox rows never answered are replayed at start. A failure to record is raised as a NetworkError,
so PTB backs off and fetches the batch again (or Telegram retries the webhook POST).

Webhook mode is PTB's "custom webhook" way (its customwebhookbot example): our own aiohttp server
on WEBHOOK_LISTEN:PORT takes Telegram's POST, checks the secret header, puts the update into the
update queue (recording it) and only then answers 200; setWebhook is ours. The same server
serves bot/health.py's /healthz /readyz /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import FloodLimit
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, TypeHandler

from adapters.buttons import ButtonKey
from adapters.delivery import Tasks, deliver_turn, pause
from adapters.startup import keep_trying, origin
from adapters.telegram.buttons import Press, press_of
from adapters.telegram.delivery import Progress, TurnWriter, Typing
from adapters.telegram.http import AiohttpRequest
from adapters.telegram.outgoing import OUTGOING_ATTEMPTS, OutgoingSends
from adapters.telegram.sender import DeliveryFailed, Sender, Target
from adapters.telegram.translate import PLATFORM, to_incoming
from bot.health import Health
from bot.messages import (
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

REDELIVER_STEPS = 30  # an undelivered reply is tried again 30 retry delays later (30 s)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A webhook POST holds one update; a bigger body is refused (413) before it is read.
WEBHOOK_MAX_BODY = 1024 * 1024
# These log request URLs, which contain the token: keep them at WARNING whatever LOG_LEVEL says.
_URL_LOGGERS = ("httpx", "httpcore")
# Messages, and presses of the buttons under the bot's replies.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


class _RecordingQueue(asyncio.Queue[object]):
    """PTB's update queue, recording each update durably before PTB may confirm it.
    `record` says whether the item goes on to the handlers (not an update for the bot)."""

    def __init__(self, record: Callable[[object], Awaitable[bool]]) -> None:
        super().__init__()
        self._record = record

    async def put(self, item: object) -> None:
        if await self._record(item):
            await super().put(item)


class TelegramAdapter:
    """bot.messages.Adapter for Telegram. Built with (settings, core) by the composition root."""

    name = PLATFORM

    def __init__(
        self,
        settings: Settings,
        core: ConversationCore,
        *,
        retry_delay: float = 1.0,
        overall_max_rate: float = FloodLimit.MESSAGES_PER_SECOND,
        health: Health | None = None,
    ) -> None:
        """`retry_delay` is the first backoff step of a failed send (doubling); a reply that
        still could not be sent is tried again REDELIVER_STEPS steps later while running.
        `overall_max_rate` is PTB's cap on Bot API calls per second for the whole bot
        (Telegram's ~30/s; 0 = none, for a benchmark of the bot's own capacity). `health`: its
        endpoints are served on the webhook server too (webhook mode)."""
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self._settings = settings
        self._core = core
        self._retry_delay = retry_delay
        self._overall_max_rate = overall_max_rate
        self._health = health
        self._webhook: web.AppRunner | None = None  # webhook mode: our server on PORT
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._sender: Sender | None = None
        self._polling: AiohttpRequest | None = None  # getUpdates' transport
        self._bot_id = 0
        self._username = ""
        self._tasks = Tasks()  # turns, and what they spawn (a reply to try again)
        self._stopped = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()  # wakes replies waiting to be tried again
        self._recorded = 0  # the last update id recorded, all before it in its batch too
        self._recording: asyncio.Future[None] | None = None
        # Per message being tried again: the parts of its reply that already went out.
        self._progress: dict[str, Progress] = {}
        self._buttons = ButtonKey(settings.telegram_bot_token)
        self._outgoing: OutgoingSends | None = None  # alerts, reminders: set by start()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        for name in _URL_LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        app = self._build()
        await self._initialize(app)
        self._app = app
        self._bot_id, self._username = app.bot.id, app.bot.username
        self._sender = Sender(app.bot, self._username, retry_delay=self._retry_delay)
        self._outgoing = OutgoingSends(Sender(app.bot, self._username, attempts=OUTGOING_ATTEMPTS))
        await self._register_commands()
        # Fetched before polling starts, so it holds only what an earlier run left unanswered.
        # Each one starts now, oldest first, before polling can deliver newer messages: the
        # core queues a chat's messages in the order their handling starts, so a newer message
        # cannot overtake one left from the last run (answered one by one, it could).
        pending = await self._core.pending(PLATFORM)
        if pending:
            log.info("telegram: replaying %d message(s) left unanswered", len(pending))
            for incoming in pending:
                self._tasks.spawn(self._run_turn(incoming))
        if self._settings.telegram_mode == "webhook":
            await self._start_webhook(app)
        else:
            await app.updater.start_polling(  # type: ignore[union-attr]
                allowed_updates=ALLOWED_UPDATES,
                bootstrap_retries=3,
                error_callback=self._on_poll_error,
            )
        await app.start()
        log.info("telegram: @%s is running (%s)", self._username, self._settings.telegram_mode)

    async def stop(self) -> None:
        if self._app is None:
            self._stopped.set()
            return
        if self._stopping:  # a second caller waits for the first to finish
            await self._stopped.wait()
            return
        self._stopping = True
        self._stop_requested.set()
        app = self._app
        try:
            if self._webhook is not None:  # first: no more POSTs (those in flight finish)
                await self._webhook.cleanup()
                self._webhook = None
                await self._confirm_recorded(app)  # waits for a recording cut off by the close
            if app.updater is not None and app.updater.running:
                await app.updater.stop()  # stop taking updates (confirms the fetched batch)
                await self._confirm_recorded(app)
            if app.running:
                await app.stop()  # waits for the updates in flight
            await self._tasks.drain()
            await app.shutdown()
        finally:
            self._stopped.set()
            log.info("telegram: stopped")

    async def wait(self) -> None:
        await self._stopped.wait()

    @property
    def connected(self) -> bool:
        """Polling: the last getUpdates did not fail to reach the Bot API; webhook: the server
        is up."""
        app = self._app
        # app.running: set by app.start(), the last step of start() (after setWebhook).
        if app is None or self._stopping or not app.running:
            return False
        if self._webhook is not None:
            return True
        if app.updater is None or not app.updater.running:
            return False
        polling = self._polling
        return polling is not None and not polling.failing

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        base = self._settings.telegram_api_base
        self._polling = AiohttpRequest(connection_pool_size=1)
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file"
        app = (
            ApplicationBuilder()
            .token(self._settings.telegram_bot_token or "")
            .base_url(base)
            .base_file_url(file_base)
            .concurrent_updates(True)
            .rate_limiter(AIORateLimiter(overall_max_rate=self._overall_max_rate, max_retries=3))
            .update_queue(_RecordingQueue(self._record))
            # aiohttp, not PTB's default httpx: a Bot API call costs far less CPU (see http.py).
            .request(AiohttpRequest(connect_timeout=10.0, read_timeout=15.0, write_timeout=20.0))
            .get_updates_request(self._polling)
            .build()
        )
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        return app

    async def _initialize(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """getMe: an unreachable Bot API is retried for STARTUP_TIMEOUT; a rejected token fails
        at once. A failure closes the HTTP sessions, which PTB leaves open."""
        where = f"the Telegram Bot API at {origin(self._settings.telegram_api_base)}"
        try:
            await keep_trying(
                app.initialize,
                retryable=(NetworkError, RetryAfter),  # TimedOut is a NetworkError
                budget=self._settings.startup_timeout,
                what=where,
                setting="TELEGRAM_API_BASE",
            )
            return
        except InvalidToken as exc:  # 401, or 404: a token of the right shape that is no bot's
            error: Exception = SettingsError(
                f"TELEGRAM_BOT_TOKEN was rejected by {where} ({self._reason(exc.__cause__)})"
            )
        except TelegramError as exc:
            error = StartupError(f"{where} refused getMe ({self._reason(exc)})")
        except BaseException:
            await app.bot.shutdown()
            raise
        await app.bot.shutdown()
        raise error from None

    def _reason(self, exc: BaseException | None) -> str:
        """The server's words, without the token (PTB quotes it in InvalidToken's own text,
        and the start's last line is printed outside the log redaction)."""
        text = exc.message if isinstance(exc, TelegramError) else "Unauthorized"
        return text.replace(self._settings.telegram_bot_token or "", "***")

    async def _start_webhook(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        url = self._settings.webhook_url or ""
        secret = self._settings.webhook_secret
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            # Telegram would refuse it at setWebhook with a vaguer error.
            raise ValueError("WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        server = web.Application(client_max_size=WEBHOOK_MAX_BODY)
        server.router.add_post("/" + urlparse(url).path.lstrip("/"), partial(self._on_post, app))
        if self._health is not None:
            self._health.add_routes(server.router)
        runner = web.AppRunner(server, access_log=None, shutdown_timeout=10.0)
        await runner.setup()
        try:
            # Listening before setWebhook, so Telegram's first POST finds us.
            await web.TCPSite(runner, self._settings.webhook_listen, self._settings.port).start()
            await keep_trying(
                partial(
                    app.bot.set_webhook,
                    url=url,
                    secret_token=secret,
                    allowed_updates=ALLOWED_UPDATES,
                ),
                retryable=(NetworkError, RetryAfter),
                budget=self._settings.startup_timeout,
                what=f"the Telegram Bot API at {origin(self._settings.telegram_api_base)}",
                setting="TELEGRAM_API_BASE",
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._webhook = runner
        log.info(
            "telegram: webhook server on %s:%d (also /healthz /readyz /metrics)",
            self._settings.webhook_listen,
            self._settings.port,
        )

    async def _on_post(
        self, app: Application[Any, Any, Any, Any, Any, Any], request: web.Request
    ) -> web.Response:
        """One update from Telegram: 200 only once it is recorded (the queue put returned)."""
        secret = (self._settings.webhook_secret or "").encode()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not secret or not hmac.compare_digest(given, secret):
            log.warning("telegram: webhook POST without the right secret refused")
            return web.Response(status=403)
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, app.bot)
        except web.HTTPException:
            raise  # the body is too big (413)
        except Exception:  # not an update: sending it again will not help
            log.warning("telegram: webhook POST that is not an update refused")
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        try:
            await app.update_queue.put(update)  # _RecordingQueue.put: recorded on return
        except Exception:  # logged by _record; Telegram will post it again
            return web.Response(status=500)
        return web.Response()

    async def _register_commands(self) -> None:
        """The menu: user commands for everyone; admins see the admin ones in their own chat."""
        assert self._app is not None
        bot = self._app.bot
        user = [_bot_command(c) for c in self._core.commands if not c.admin]
        everything = [_bot_command(c) for c in self._core.commands]
        try:
            await bot.set_my_commands(user, scope=BotCommandScopeDefault())
        except TelegramError as exc:
            log.warning("telegram: could not register the command menu: %s", exc)
        if len(everything) == len(user):
            return
        for admin in sorted(self._settings.admin_ids):
            platform, _, user_id = admin.partition(":")
            if platform != PLATFORM or not user_id.lstrip("-").isdigit():
                continue
            try:
                await bot.set_my_commands(everything, scope=BotCommandScopeChat(int(user_id)))
            except TelegramError as exc:  # e.g. the admin has not started a chat with the bot
                log.info("telegram: admin menu for %s not set: %s", user_id, exc)

    async def send_outgoing(self, item: Outgoing) -> SendResult:
        """bot.messages.OutgoingSender: an alert, reminder or digest into its chat (see
        adapters/telegram/outgoing.py); RETRY until the adapter has started."""
        if self._outgoing is None:
            return SendResult.RETRY
        return await self._outgoing.send(item)

    # -- updates -----------------------------------------------------------------------------
    async def _record(self, item: object) -> bool:
        if not isinstance(item, Update):
            return True  # PTB's own stop signal
        incoming = self._translate(item)
        if incoming is not None:
            # PTB cancels the batch being recorded when it stops (without waiting); this write
            # finishes anyway and _confirm_recorded waits for it, so what is in the inbox is
            # exactly what gets confirmed.
            self._recording = asyncio.ensure_future(self._accept(incoming, item.update_id))
            try:
                await asyncio.shield(self._recording)
            except Exception as exc:
                log.error("telegram: could not record update %s: %s", item.update_id, exc)
                # A TelegramError makes PTB back off and fetch the batch again (unconfirmed).
                raise NetworkError("could not record the update; it will be fetched again") from exc
        self._recorded = max(self._recorded, item.update_id)
        # What is not for the bot (translate said why) stops here; a press is answered anyway.
        return incoming is not None or item.callback_query is not None

    async def _accept(self, incoming: Incoming, update_id: int) -> None:
        await self._core.accept(incoming)
        self._recorded = max(self._recorded, update_id)

    async def _confirm_recorded(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Tell Telegram to forget every update recorded. PTB confirms a batch only once all of
        it went into the queue, and a stop while a batch is being recorded cancels that, which
        would confirm nothing: the recorded part (in the inbox, answered now or at the next
        start) would be delivered again, the rest is rightly left to Telegram."""
        if self._recording is not None:
            with contextlib.suppress(Exception):
                await self._recording
        if self._settings.telegram_mode != "polling" or not self._recorded:
            return
        try:
            await app.bot.get_updates(
                offset=self._recorded + 1, timeout=0, allowed_updates=ALLOWED_UPDATES
            )
        except TelegramError as exc:
            log.warning("telegram: could not confirm the last updates (%s); deduped later", exc)

    def _translate(self, update: Update) -> Incoming | None:
        try:
            if update.callback_query is not None:
                press = press_of(update, self._buttons)
                return press.incoming if press is not None else None
            return to_incoming(update, self._bot_id, self._username)
        except Exception:  # a malformed update must not stop the others
            log.exception("telegram: cannot read update %s; skipped", update.update_id)
            return None

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        press = press_of(update, self._buttons)
        if press is not None:  # the button's spinner stops; a press running nothing says why
            self._tasks.spawn(self._answer_press(press))
        incoming = press.incoming if press is not None else self._translate(update)
        if incoming is None:
            return
        # The turn runs in a task of its own: waiting for its chat's earlier turns, it holds
        # no PTB slot (PTB's `stop()` no longer waits for it; our `stop()` does).
        self._tasks.spawn(self._run_turn(incoming))

    async def _serve(self, incoming: Incoming) -> None:
        """Run one message through the core and send what it yields."""
        assert self._sender is not None
        target = Target.of(incoming)
        progress = self._progress.pop(incoming.message_id, Progress())
        writer = TurnWriter(self._sender, target, progress, buttons=self._buttons)
        typing = Typing(self._sender, target)
        try:
            await deliver_turn(self._core.handle(incoming), partial(_show, writer, typing))
        except DeliveryFailed as exc:
            # The turn stopped before the core marked it answered: it stays pending (replayed
            # at the next start) and is tried again later in this run, without the parts that
            # went out.
            log.error("telegram: reply to update %s not delivered: %s", incoming.message_id, exc)
            self._progress[incoming.message_id] = progress
            self._tasks.spawn(self._serve_later(incoming))
        finally:
            await typing.aclose()

    async def _answer_press(self, press: Press) -> None:
        """answerCallbackQuery, once: a redelivered press is answered again in vain (Telegram
        refuses an old query), which only costs a log line."""
        assert self._sender is not None
        text = press.refusal or None
        try:
            await self._sender.bot.answer_callback_query(press.query_id, text=text)
        except TelegramError as exc:
            log.info("telegram: press %s not answered: %s", press.query_id, exc)

    async def _serve_later(self, incoming: Incoming) -> None:
        await pause(REDELIVER_STEPS * self._retry_delay, self._stop_requested)
        if self._stopping:
            self._progress.pop(incoming.message_id, None)
            return
        log.info("telegram: trying the reply to update %s again", incoming.message_id)
        await self._serve(incoming)

    async def _run_turn(self, incoming: Incoming) -> None:
        try:
            await self._serve(incoming)
        except Exception:
            log.exception("telegram: message %s failed", incoming.message_id)

    def _on_poll_error(self, exc: TelegramError) -> None:
        hint = " (another instance polling with this token?)" if isinstance(exc, Conflict) else ""
        log.warning("telegram: polling failed: %s%s; retrying", exc, hint)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = update.update_id if isinstance(update, Update) else "?"
        log.error("telegram: update %s failed", uid, exc_info=context.error)


async def _show(writer: TurnWriter, typing: Typing, reply: Reply) -> bool:
    """One reply into the chat; a reply that cannot be sent raises DeliveryFailed."""
    if reply.typing:  # the core says the answer is taking a while
        typing.start()
    else:
        if not reply.partial:
            typing.halt()  # the answer goes out next: "typing…" must not outlive it
        await writer.write(reply)
    return True


def _bot_command(spec: CommandSpec) -> BotCommand:
    # Telegram wants 1-256 characters of description; names are lowercase a-z, 0-9 and _.
    return BotCommand(spec.name.lower(), (spec.description or spec.name)[:256])
