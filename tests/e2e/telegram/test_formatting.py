"""The model's Markdown on Telegram: message entities (never parse_mode), offsets and lengths in
UTF-16 code units, cut with the text when a reply is split, valid in every streamed edit while
the Markdown is half-written; command replies quoting user input stay literal. Real PTB against
the Bot API emulator, which checks entities as the Bot API documents them (a bad one is 400
"can't parse entities"); the whole turn through the real core and the real OpenAI client against
the LLM emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, MessageEntity
from telegram.error import BadRequest

from adapters.telegram.delivery import STREAM_AFTER, TurnWriter
from adapters.telegram.sender import EDIT_INTERVAL, Sender, Target
from adapters.text import TELEGRAM_LIMIT, utf16_len
from bot.messages import Reply, ReplyFile
from bot.settings import Settings
from testkit.emulators.llm import LLMEmulator, Say
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import Clock
from tests.e2e.telegram.conftest import ADMIN, GROUP, TOKEN, USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e

ANSWER = (
    "**Hi** 👋 世界 _you_ `x=1`\n\n"
    "```python\nprint('🐍')\n```\n\n"
    "- one [link](https://example.com/a_b)\n\n"
    "> quoted *text*"
)
SHOWN = "Hi 👋 世界 you x=1\n\nprint('🐍')\n\n• one link\n\nquoted text"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[RunningBot, LLMEmulator]]:
    async with TelegramApiEmulator(TOKEN) as tg, LLMEmulator() as llm:
        env = bot_env(tg, tmp_path) | {
            "OPENROUTER_API_KEY": "sk-or-test-key",
            "LLM_BASE_URL": llm.base_url,
            "LLM_MODEL": "test/model",
        }
        async for bot in start_bot(Settings.from_env(env, dotenv_path=None), tg):
            yield bot, llm


def _entities(message: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (e["type"], e["offset"], e["length"], e.get("url"), e.get("language"))
        for e in message.get("entities", [])
    ]


def _formatted(text: str, entity: dict[str, Any]) -> str:
    """The characters an entity covers, counted in UTF-16 units as Telegram does."""
    units = text.encode("utf-16-le")
    start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
    return units[start:end].decode("utf-16-le")


async def test_an_answer_in_markdown_is_sent_as_entities_with_utf16_offsets(
    running: tuple[RunningBot, LLMEmulator],
) -> None:
    bot, llm = running
    llm.script(Say(ANSWER))
    assert await bot.ask(USER, USER, "format something") == [SHOWN]
    (message,) = bot.tg.bot_messages(USER)
    assert _entities(message) == [
        ("bold", 0, 2, None, None),
        ("italic", 9, 3, None, None),  # 👋 is two UTF-16 units, 世界 two
        ("code", 13, 3, None, None),
        ("pre", 18, 11, None, "python"),
        ("text_link", 37, 4, "https://example.com/a_b", None),
        ("blockquote", 43, 11, None, None),
        ("italic", 50, 4, None, None),
    ]
    covered = [_formatted(SHOWN, e) for e in message["entities"]]
    assert covered == ["Hi", "you", "x=1", "print('🐍')", "link", "quoted text", "text"]
    (call,) = bot.tg.calls_to("sendMessage")
    assert "parse_mode" not in call.params


async def test_a_long_markdown_answer_is_split_with_its_entities_cut_at_the_split(
    running: tuple[RunningBot, LLMEmulator],
) -> None:
    bot, llm = running
    words = " ".join(f"😀字{n}" for n in range(700))  # ~4,800 UTF-16 units: two parts
    llm.script(Say(f"Start **{words}** and `end`"))
    parts = await bot.ask(USER, USER, "a long one")
    assert len(parts) == 2 and all(utf16_len(p) <= TELEGRAM_LIMIT for p in parts)
    first, second = bot.tg.bot_messages(USER)
    # The bold text runs over the cut: each part carries its own piece of it, valid alone.
    assert _entities(first) == [("bold", 6, utf16_len(parts[0]) - 6, None, None)]
    bold_rest = utf16_len(parts[1]) - len(" and end")
    assert _entities(second) == [
        ("bold", 0, bold_rest, None, None),
        ("code", bold_rest + len(" and "), 3, None, None),
    ]
    assert _formatted(parts[1], second["entities"][1]) == "end"
    assert all(c.status == 200 for c in bot.tg.calls if c.method == "sendMessage")


async def test_streamed_edits_of_half_written_markdown_are_valid_every_time() -> None:
    clock, chat = Clock(), Target(chat_id=USER, user_id=USER, group=False)
    steps = [
        "Here",  # the stream begins only once the answer has been coming for STREAM_AFTER
        "Here is **bo",  # an unclosed ** stays as it is
        "Here is **bold** 😀 and `co",
        "Here is **bold** 😀 and `code`:\n```py\nprint(1",  # an open fence runs to the end
    ]
    final = "Here is **bold** 😀 and `code`:\n```py\nprint(1)\n```"
    async with TelegramApiEmulator(TOKEN) as tg, Bot(TOKEN, base_url=tg.base_url) as bot:
        writer = TurnWriter(Sender(bot, "switchboard_test_bot", clock=clock), chat)
        for text in steps:
            await writer.write(Reply(text, partial=True, markdown=True))
            clock.now += STREAM_AFTER + EDIT_INTERVAL
        await writer.write(Reply(final, markdown=True))
    calls = [c for c in tg.calls if c.method in ("sendMessage", "editMessageText")]
    assert [c.status for c in calls] == [200] * 4
    assert [c.params["text"] for c in calls] == [
        "Here is **bo",
        "Here is bold 😀 and `co",
        "Here is bold 😀 and code:\n\nprint(1",
        "Here is bold 😀 and code:\n\nprint(1)",
    ]
    assert "entities" not in calls[0].params
    kinds = [
        [(e["type"], e["offset"], e["length"]) for e in c.params["entities"]] for c in calls[1:]
    ]
    assert kinds == [
        [("bold", 8, 4)],
        [("bold", 8, 4), ("code", 20, 4), ("pre", 27, 7)],
        [("bold", 8, 4), ("code", 20, 4), ("pre", 27, 8)],
    ]
    (message,) = tg.bot_messages(USER)
    assert [e["type"] for e in message["entities"]] == ["bold", "code", "pre"]


async def test_a_private_markdown_answer_asked_in_a_group_is_formatted_only_in_private() -> None:
    group = Target(chat_id=GROUP, user_id=USER, group=True, reply_to=1)
    async with TelegramApiEmulator(TOKEN) as tg, Bot(TOKEN, base_url=tg.base_url) as bot:
        writer = TurnWriter(Sender(bot, "switchboard_test_bot", clock=Clock()), group)
        await writer.write(Reply("Your **secret** code", private=True, markdown=True))
    (private,) = tg.bot_messages(USER)
    assert private["text"] == "Your secret code" and _entities(private) == [
        ("bold", 5, 6, None, None)
    ]
    assert tg.shown(GROUP) == ["I sent you the answer in a private chat."]
    assert all("secret" not in str(c.params) for c in tg.calls if c.params.get("chat_id") == GROUP)


async def test_a_markdown_caption_goes_with_its_caption_entities() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (800).to_bytes(4, "big") * 2
    chart = ReplyFile("chart.png", png, mime_type="image/png")
    chat = Target(chat_id=USER, user_id=USER, group=False)
    async with TelegramApiEmulator(TOKEN) as tg, Bot(TOKEN, base_url=tg.base_url) as bot:
        writer = TurnWriter(Sender(bot, "switchboard_test_bot", clock=Clock()), chat)
        await writer.write(Reply("**NVDA** 😀 over `6mo`", file=chart, markdown=True))
    (call,) = tg.calls_to("sendPhoto")
    assert call.params["caption"] == "NVDA 😀 over 6mo"
    found = [(e["type"], e["offset"], e["length"]) for e in call.params["caption_entities"]]
    assert found == [("bold", 0, 4), ("code", 13, 3)]


async def test_formatting_telegram_refuses_costs_the_formatting_not_the_message() -> None:
    chat = Target(chat_id=USER, user_id=USER, group=False)
    async with TelegramApiEmulator(TOKEN) as tg, Bot(TOKEN, base_url=tg.base_url) as bot:
        tg.fail_next("sendMessage", status=400, description="Bad Request: ENTITIES_TOO_LONG")
        writer = TurnWriter(Sender(bot, "switchboard_test_bot", clock=Clock()), chat)
        await writer.write(Reply("**many** [links](https://example.com)", markdown=True))
    refused, sent = tg.calls_to("sendMessage", ok_only=False)
    assert refused.status == 400 and "entities" in refused.params
    assert sent.status == 200 and "entities" not in sent.params
    assert tg.shown(USER) == ["many links"]


async def test_a_command_reply_quoting_the_user_stays_literal(bot: RunningBot) -> None:
    (answer,) = await bot.ask(USER, USER, "/**bold**_x_")
    assert answer.startswith("I don't know /**bold**_x_.")
    (call,) = bot.tg.calls_to("sendMessage")
    assert "entities" not in call.params and "parse_mode" not in call.params


async def test_an_admin_view_quoting_a_user_s_message_stays_literal(bot: RunningBot) -> None:
    await bot.ask(USER, USER, "**not bold** _x_ `y`")
    (answer,) = await bot.ask(ADMIN, ADMIN, f"/history telegram:{USER}")
    assert "user: **not bold** _x_ `y`" in answer
    assert "entities" not in bot.tg.calls_to("sendMessage")[-1].params


async def test_the_emulator_refuses_entities_telegram_would_refuse(tg: TelegramApiEmulator) -> None:
    """The checks the tests above rely on, as the Bot API documents them."""
    bad = [
        [MessageEntity("bold", 0, 99)],  # past the end
        [MessageEntity("bold", 0, 4), MessageEntity("italic", 2, 4)],  # intersecting
        [MessageEntity("code", 0, 6), MessageEntity("bold", 1, 2)],  # inside code
        [MessageEntity("text_link", 0, 2)],  # a link without url
    ]
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        for entities in bad:
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
                await bot.send_message(USER, "abcdef", entities=entities)
        sent = await bot.send_message(USER, "😀 bold", entities=[MessageEntity("bold", 3, 4)])
    assert sent.parse_entities() == {MessageEntity("bold", 3, 4): "bold"}
