"""Private output stays private on Telegram: every command whose answer is private (/link,
/export, /forgetme, every admin command) x {the user's private chat, a group with the user's
private chat open, a group where the bot cannot write to the user (403 "bot can't initiate
conversation with a user")}. The content reaches only the user's private chat; the group only
ever sees a short note. Real PTB against the Bot API emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.conversation import GROUP_ADMIN
from bot.settings import Settings
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import (
    ADMIN,
    GROUP,
    TIMEOUT,
    TOKEN,
    USER,
    RunningBot,
    bot_env,
    start_bot,
)

pytestmark = pytest.mark.e2e

OTHER = 4004  # a user the admin erases
MARKER = "MARKER-PRIVATE-7731"  # in the user's history: must never reach the group
SENT_PRIVATELY = "I sent you the answer in a private chat."
START_FIRST = (
    "I can only answer that privately: open a chat with me "
    "(https://t.me/switchboard_test_bot), press Start and ask again."
)
# (who asks, command); /forget and /forgetme confirm last: they erase.
COMMANDS = (
    (USER, "/link"),
    (USER, "/link list"),
    (USER, "/export"),
    (USER, "/forgetme"),
    (USER, "/alerts"),
    (USER, "/reminders"),
    (USER, "/tz"),
    (USER, "/digest"),
    (ADMIN, f"/history telegram:{USER}"),
    (ADMIN, "/sessions"),
    (ADMIN, "/stats"),
    (ADMIN, f"/user telegram:{USER}"),
    (ADMIN, f"/forget telegram:{OTHER}"),
    (USER, "/forgetme confirm"),
)
LINK_CODE = re.compile(r"Your link code: (\S+)")


@pytest.fixture
async def running(any_db_url: str, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with TelegramApiEmulator(TOKEN) as tg:
        env = bot_env(tg, tmp_path) | {"DATABASE_URL": any_db_url}
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            await bot.ask(USER, USER, f"Please remember this: {MARKER}")
            await bot.ask(USER, USER, f"/remind in 1d {MARKER}")  # /reminders quotes it
            await bot.ask(OTHER, OTHER, "hello")
            await bot.ask(ADMIN, ADMIN, "hello")
            yield bot


async def test_private_answers_in_the_private_chat(running: RunningBot) -> None:
    tg = running.tg
    answers = {text: await running.ask(who, who, text) for who, text in COMMANDS}
    assert LINK_CODE.search(answers["/link"][0])
    assert [d.params["chat_id"] for d in tg.calls_to("sendDocument")] == [USER]
    assert MARKER in answers[f"/history telegram:{USER}"][0]
    assert MARKER in answers["/reminders"][0]
    said = [text for texts in answers.values() for text in texts]
    assert not any(SENT_PRIVATELY in text or START_FIRST in text for text in said)


@pytest.mark.parametrize("dm_open", [True, False], ids=["dm-open", "dm-closed"])
async def test_private_answers_asked_in_a_group_never_reach_it(
    running: RunningBot, dm_open: bool
) -> None:
    tg = running.tg
    if not dm_open:
        for who in (USER, ADMIN):
            tg.close_private_chat(who)
    start = len(tg.calls)
    for who, text in COMMANDS:
        [note] = await running.ask(GROUP, who, text)
        expected = GROUP_ADMIN if who == ADMIN else SENT_PRIVATELY if dm_open else START_FIRST
        assert note == expected, text
    to_group = [c for c in tg.calls if _chat(c) == GROUP]
    assert {c.method for c in to_group} == {"sendMessage"}  # no file, no stream, no edit
    assert not any(MARKER in str(c.params) for c in to_group)
    if dm_open:  # the user got the content privately
        code = LINK_CODE.search(" ".join(tg.texts(USER)))
        assert code and not any(code[1] in str(c.params) for c in to_group)
        assert [d.params["chat_id"] for d in tg.calls_to("sendDocument")] == [USER]
    else:  # nothing got through to anyone's private chat
        refused = [c for c in tg.calls[start:] if c.status == 403]
        assert refused and all(_chat(c) == USER for c in refused)
        assert not tg.calls_to("sendDocument")
    await wait_until(running.settled, timeout=TIMEOUT)


def _chat(call: object) -> int | None:
    chat = getattr(call, "params", {}).get("chat_id")
    return int(chat) if chat is not None else None
