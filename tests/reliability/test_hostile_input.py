"""Hostile and odd input on the core entry point (bot.app.open_app, offline model, real store):
arbitrary Unicode, huge messages, SQL-looking text, markup injection, commands with arguments of
every shape. Always one clean reply (an answer or a refusal), never an internal error, and the
stored text is exactly what was sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.conversation import FAILED, MAX_TEXT, NO_ANSWER, TOO_LONG, storable
from bot.messages import Incoming
from tests.reliability.fault_fixtures import (
    ADMIN_TG,
    APP,
    ask,
    message,
    running_app,
)

EXAMPLES = 250  # per property: bounded so CI stays fast (each example is one real turn)
NASTY = [
    "",
    " ",
    "\x00",
    "hello\x00world",
    "\ud800",  # a lone surrogate (Telegram's and Discord's JSON can carry one as \\ud800)
    "joke \udfff about \ud83d",
    "\u202eRTL override: ‮olleh",
    "שלום, מה המחיר של AAPL?",
    "مرحبا، أخبرني نكتة",
    "zero\u200bwidth\u200djoiner\ufeff",
    "👨‍👩‍👧‍👦🏳️‍🌈 tell me a joke 🐍",
    "'; DROP TABLE events; --",
    "Robert'); DELETE FROM sessions WHERE ('1'='1",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "<b>bold</b> *bold* _it_ `code` [link](http://x) @everyone <@123>",
    "```\n" + "`" * 50 + "\n```",
    "%s %d %(x)s {0} {x} $x ${x}",
    "\\x00 \\u0000 \\\\",
    "line1\r\nline2\rline3\n",
    "\t" * 10,
    "/",
    "//",
    "/ start",
    "/start@",
    "/@",
    "/" + "a" * 300,
    "/watchlist add " + "A" * 500,
    "/history ' OR 1=1 --",
    "/export ../../etc/passwd",
    "/link \x00",
    "/forgetme confirm confirm",
    "/watchlist remove \ud800",
    "a" * MAX_TEXT,
]
COMMANDS = [
    "start",
    "help",
    "prefs",
    "watchlist",
    "reset",
    "export",
    "forgetme",
    "link",
    "history",
    "sessions",
    "stats",
    "user",
    "forget",
    "nope",
    "WATCHLIST",
    "watchlist@switchboard_bot",
]
ARGUMENT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["add", "remove", "confirm", "-1", "0", "99999999999999999999", "1e9"]),
    st.sampled_from(["telegram:", "discord:0", ":", "AAPL", "$TSLA", "😀", "\x00", "\ud800"]),
    st.from_regex(r"[a-f0-9]{12}", fullmatch=True),
)
# Every kind of character, surrogates, controls and format characters included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=200),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]), max_size=50),
    st.sampled_from(NASTY),
)


@contextlib.contextmanager
def app_in(runner: asyncio.Runner, url: str) -> Iterator[App]:
    """Open the app on the runner's loop and keep it for many hypothesis examples."""
    manager = running_app(url)
    app = runner.run(manager.__aenter__())
    try:
        yield app
    finally:
        runner.run(manager.__aexit__(None, None, None))


async def check_one(app: App, incoming: Incoming, caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    answer = await ask(app, incoming)
    # Exactly one clean final reply; never the apology that means an exception was caught.
    assert len(answer.final) >= 1, incoming.text
    assert all(r.text.strip() for r in answer.final), answer.final
    assert FAILED not in answer.text and NO_ANSWER not in answer.text, incoming.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    if incoming.is_command or not incoming.text.strip() or len(incoming.text) > MAX_TEXT:
        return
    # A chat turn: the user's text is stored exactly as sent (lone surrogates, which no UTF-8
    # database can hold, as U+FFFD).
    user_id = await app.store.find_user(incoming.platform, incoming.platform_user_id)
    assert user_id is not None
    invocation = f"{incoming.platform}:{incoming.message_id}"
    events = await app.store.history(APP, user_id, limit=50)
    [stored] = [e for e in events if e.id == f"{invocation}:u"]
    assert stored.text == storable(incoming).text
    if "\ufffd" not in stored.text:
        assert stored.text == incoming.text


def test_any_text_gets_a_clean_reply_and_round_trips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with asyncio.Runner() as runner, app_in(runner, f"sqlite:///{tmp_path / 'h.db'}") as app:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(text=TEXT, user=st.sampled_from(["11", "12"]), group=st.booleans())
        def prop(text: str, user: str, group: bool) -> None:
            runner.run(check_one(app, message(text, user=user, group=group), caplog))

        prop()


def test_commands_with_arguments_of_every_shape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with asyncio.Runner() as runner, app_in(runner, f"sqlite:///{tmp_path / 'c.db'}") as app:
        # Someone with data, so that admin commands have something to show or refuse.
        runner.run(ask(app, message("Hi, my name is Victoria", user="77")))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            name=st.sampled_from(COMMANDS),
            args=st.lists(ARGUMENT, max_size=4),
            user=st.sampled_from(["13", ADMIN_TG]),
            platform=st.sampled_from(["telegram", "discord"]),
            group=st.booleans(),
            ephemeral=st.booleans(),
        )
        def prop(
            name: str, args: list[str], user: str, platform: str, group: bool, ephemeral: bool
        ) -> None:
            text = " ".join([f"/{name}", *args])
            extra = {"ephemeral": True} if ephemeral and platform == "discord" else {}
            incoming = message(text, user=user, platform=platform, group=group, extra=extra)
            runner.run(check_one(app, incoming, caplog))

        prop()


async def test_a_corpus_of_nasty_messages_on_each_backend(
    any_db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same corpus on SQLite and PostgreSQL (NUL and lone surrogates are where they differ)."""
    caplog.set_level(logging.WARNING)
    async with running_app(any_db_url) as app:
        for index, text in enumerate(NASTY):
            user = f"{uuid.uuid4().hex[:8]}"  # one user per text: no command disturbs another
            await check_one(app, message(text, user=user), caplog)
            # A redelivery gets nothing; the next message is served normally.
            same = message(text, user=user, message_id=f"nasty-{index}")
            await ask(app, same)
            assert (await ask(app, same)).final == [], text
            assert (await ask(app, message("/prefs", user=user))).text


async def test_100kb_messages_are_refused_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_app(f"sqlite:///{tmp_path / 'big.db'}") as app:
        for text in ["x" * 100_000, "😀" * 25_000, "'; DROP TABLE x; --" * 5000, "\x00" * 100_000]:
            answer = await ask(app, message(text, user="21"))
            assert answer.text == TOO_LONG
            assert answer.seconds < 5
        big_command = await ask(app, message("/watchlist add " + "A " * 50_000, user="21"))
        assert big_command.text and FAILED not in big_command.text
        assert (await ask(app, message("still there?", user="21"))).text
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors
