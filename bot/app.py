"""The composition root: builds every part, hands them to each other, runs the adapters.

Lifetimes nest with `async with` (the store outlives the quote provider and the model, which
outlive the adapters), as in discord.py's examples/advanced_startup.py. Platform adapters are
imported lazily: a console-only install never imports a platform library.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import agents
from agents.charts import Charts
from agents.compaction import Compaction, summariser_for
from agents.memory_extraction import MemoryExtraction
from agents.model import ModelClient
from agents.runner import AfterTurnJob, Runner
from agents.tracing import Tracer
from bot.conversation import Conversation
from bot.health import Health, serving
from bot.logging_setup import setup_logging
from bot.messages import Adapter, OutgoingSender, StartupError
from bot.metrics import Metrics
from bot.scheduler import Scheduler
from bot.settings import Settings, SettingsError
from bot.tracing import open_tracing
from storage import Store, StoreError, open_store
from storage.common import DEFAULT_MEMORY_LIMIT

log = logging.getLogger(__name__)

OFFLINE_NOTICE = (
    "No LLM key set (OPENROUTER_API_KEY or OPENAI_API_KEY): using the offline model, "
    "deterministic and without network"
)


@dataclass(frozen=True, slots=True)
class App:
    settings: Settings
    store: Store
    core: Conversation
    runner: Runner
    model_description: str
    metrics: Metrics = field(default_factory=Metrics)
    quotes: agents.QuoteProvider | None = None  # what the scheduler polls alerts with

    @property
    def offline(self) -> bool:
        return self.settings.llm_api_key is None


async def open_database(database_url: str, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Store:
    try:
        return await open_store(database_url, memory_limit=memory_limit)
    except (StoreError, OSError) as exc:
        # Store errors redact the password from any URL they quote; OSError names a path.
        raise StartupError(f"Cannot open the database (DATABASE_URL): {exc}") from exc


@contextlib.asynccontextmanager
async def open_app(
    settings: Settings, *, tracer: Tracer | None = None, clock: Callable[[], float] = time.time
) -> AsyncIterator[App]:
    """Store, quote provider, model, agent team, runner and core, closed in reverse order.
    `tracer`: spans go there instead of where OTEL_EXPORTER_OTLP_ENDPOINT says (tests).
    `clock`: the core's wall time, which reminders and digests are set from (tests step it)."""
    async with contextlib.AsyncExitStack() as stack:
        if tracer is None:  # before the database opens: a missing package costs nothing
            tracer = await stack.enter_async_context(open_tracing(settings.otel_endpoint))
        async with _open_app(settings, tracer, clock) as app:
            yield app


@contextlib.asynccontextmanager
async def _open_app(
    settings: Settings, tracer: Tracer, clock: Callable[[], float]
) -> AsyncIterator[App]:
    store = await open_database(settings.database_url, settings.memory_limit)
    metrics = Metrics()  # this app's own registry: counted by the core, runner and quotes
    async with store, agents.QuoteProvider(settings.quotes_base_url, observer=metrics) as quotes:
        model = agents.make_model(
            settings.llm_api_key,
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_timeout,
            settings.llm_max_retries,
            max_tokens=settings.llm_max_tokens,
        )
        charts = Charts(quotes)  # one cache for /chart and the analyst's show_chart
        try:
            runner = Runner(
                store,
                agents.build_team(
                    model, quotes, charts=charts, memory=settings.memory_extraction != "off"
                ),
                app_name=settings.app_name,
                history_window=settings.history_window,
                observer=metrics,
                tracer=tracer,
                memory_prompt_chars=settings.memory_prompt_chars,
                after_turn=after_turn_jobs(settings, store, model, metrics),
            )
            core = Conversation(
                store,
                runner,
                app_name=settings.app_name,
                admin_ids=settings.admin_ids,
                rate_limit=settings.user_rate_limit,
                queue_limit=settings.user_queue_limit,
                observer=metrics,
                tracer=tracer,
                charts=charts,
                clock=clock,
                quotes=quotes,
            )
            # Closed first: post-turn jobs in flight finish while the model and store are open.
            async with contextlib.aclosing(core):
                yield App(settings, store, core, runner, model.description, metrics, quotes)
        finally:
            await model.aclose()


def after_turn_jobs(
    settings: Settings, store: Store, model: ModelClient, metrics: Metrics
) -> list[AfterTurnJob]:
    """What runs after each answered turn, in order: memory extraction (MEMORY_EXTRACTION=auto
    with a real LLM; it reads the turn's events, which a compaction would fold away), then
    compaction (unless COMPACT_AFTER=0)."""
    jobs: list[AfterTurnJob] = []
    if settings.memory_extraction == "auto" and settings.llm_api_key is not None:
        jobs.append(MemoryExtraction(store, model, metrics))
    if settings.compact_after:
        summariser = summariser_for(model, settings.llm_api_key is None, metrics)
        jobs.append(Compaction(store, summariser, settings.compact_after))
    return jobs


def scheduler_for(
    app: App, senders: Sequence[OutgoingSender], *, clock: Callable[[], float] = time.time
) -> Scheduler:
    """The process's one scheduler, sending through the adapters (bot/scheduler.py)."""
    assert app.quotes is not None  # open_app always sets it
    return Scheduler(
        app.store,
        app.settings.app_name,
        app.quotes,
        senders,
        poll_seconds=app.settings.alert_poll_seconds,
        lease_seconds=app.settings.outbox_lease_seconds,
        clock=clock,
        observer=app.metrics,
    )


def platform_adapters(app: App) -> list[Adapter]:
    """An adapter for every platform whose token is set."""
    adapters: list[Adapter] = []
    if app.settings.telegram_bot_token:
        from adapters.telegram.adapter import TelegramAdapter

        # Webhook mode serves /healthz /readyz /metrics on its server; readiness sees the list
        # as it fills (every platform).
        health = Health(app.store, adapters, app.metrics)
        adapters.append(TelegramAdapter(app.settings, app.core, health=health))
    if app.settings.discord_bot_token:
        from adapters.discord.adapter import DiscordAdapter

        adapters.append(DiscordAdapter(app.settings, app.core))
    return adapters


def console_adapter(
    app: App, user: str | None, stdin: TextIO | None, stdout: TextIO | None
) -> Adapter:
    from adapters.console import ConsoleAdapter

    return ConsoleAdapter(
        app.core,
        user or _default_user(),
        stdin or sys.stdin,
        stdout or sys.stdout,
        # Which model answers, said once at the start (the log is quiet in a terminal).
        notice=OFFLINE_NOTICE if app.offline else f"model: {app.model_description}",
    )


async def run(
    settings: Settings,
    *,
    console: bool | None = None,
    user: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or the console's end of input); returns the exit code."""
    platforms = not console and bool(settings.telegram_bot_token or settings.discord_bot_token)
    level = settings.log_level if platforms else terminal_log_level(settings)
    setup_logging(level, settings.secrets, fmt=settings.log_format)
    async with open_app(settings) as app:
        log.info("model: %s; database: %s", app.model_description, _db_kind(settings))
        adapters = platform_adapters(app) if platforms else []
        if not adapters:
            adapters = [console_adapter(app, user, stdin, stdout)]
        # Every adapter sends proactive messages too (bot.messages.OutgoingSender).
        senders = [a for a in adapters if isinstance(a, OutgoingSender)]
        async with health_endpoints(app, adapters):
            return await _serve(adapters, scheduler_for(app, senders))


@contextlib.asynccontextmanager
async def health_endpoints(app: App, adapters: list[Adapter]) -> AsyncIterator[None]:
    """/healthz /readyz /metrics on HEALTH_PORT while the adapters run (unset: none). Telegram's
    webhook server serves them anyway (on PORT): there HEALTH_PORT is not needed, but works."""
    port = app.settings.health_port
    webhook = app.settings.telegram_mode == "webhook"
    if port is not None and webhook and any(a.name == "telegram" for a in adapters):
        log.info("HEALTH_PORT is not needed in webhook mode: PORT serves the endpoints too")
    async with contextlib.AsyncExitStack() as stack:
        try:
            if port is not None:
                await stack.enter_async_context(
                    serving(Health(app.store, adapters, app.metrics), port)
                )
        except OSError as exc:  # in use, or not allowed
            # asyncio words it with the address; the errno's own text ends the one line.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(f"Cannot listen on HEALTH_PORT {port}: {reason}") from None
        yield


def terminal_log_level(settings: Settings) -> str:
    """Log lines would interleave with the chat (or an admin command's answer) in the
    terminal: only errors, unless DEBUG was asked for. (What a warning would say, e.g. the
    offline model, the chat says itself.)"""
    return (
        "DEBUG"
        if settings.log_level == "DEBUG"
        else max(settings.log_level, "ERROR", key=logging.getLevelName)
    )


async def _serve(adapters: list[Adapter], scheduler: Scheduler | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread / Windows
            loop.add_signal_handler(sig, stop.set)
    started: list[Adapter] = []
    waiters: list[asyncio.Task[object]] = []
    try:
        for adapter in adapters:
            await adapter.start()
            started.append(adapter)
            log.info("%s adapter running", adapter.name)
        if scheduler is not None:  # once the adapters can send what it fires
            await scheduler.start()
        waiters = [asyncio.create_task(a.wait()) for a in started]
        waiters.append(asyncio.create_task(stop.wait()))
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("signal received: finishing in-flight turns, then stopping")
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        for task in failed:
            log.error("an adapter ended with an error", exc_info=task.exception())
        return 1 if failed else 0
    except (SettingsError, StartupError):
        raise  # one line for the operator (bot/__main__.py), once the others are stopped
    except Exception:
        log.exception("an adapter failed to start")
        return 1
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if scheduler is not None:
            await scheduler.stop()
        await _stop_all(started)
        for task in waiters:
            task.cancel()


async def _stop_all(adapters: list[Adapter]) -> None:
    # Reverse start order; one adapter failing to stop must not keep the others running.
    for adapter in reversed(adapters):
        try:
            await adapter.stop()
        except Exception:
            log.exception("%s adapter did not stop cleanly", adapter.name)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "you"


def _db_kind(settings: Settings) -> str:
    # Only the scheme: a PostgreSQL URL may carry a password.
    return settings.database_url.split(":", 1)[0]
