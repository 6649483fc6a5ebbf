"""/chart through Telegram: a PNG sent with sendPhoto that decodes to at least 800x450, from the
quotes emulator's chart endpoint; no prices -> a clear message and no photo; the same chart
asked again is served from the cache; an image reply meant to be private never reaches a group.
Real PTB against the Bot API emulator."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from matplotlib.image import imread
from telegram import Bot

from adapters.telegram.delivery import TurnWriter
from adapters.telegram.sender import Sender, Target
from bot.commands import USAGE
from bot.messages import Reply, ReplyFile
from bot.settings import Settings
from testkit.emulators.quotes import QuotesEmulator
from testkit.emulators.telegram_api import TelegramApiEmulator
from testkit.helpers import wait_until
from tests.e2e.telegram.conftest import (
    GROUP,
    TIMEOUT,
    TOKEN,
    USER,
    RunningBot,
    bot_env,
    start_bot,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bot(
    tg: TelegramApiEmulator, market: QuotesEmulator, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    env = bot_env(tg, tmp_path) | {"QUOTES_BASE_URL": market.base_url}
    async for running in start_bot(Settings.from_env(env, dotenv_path=None), tg):
        yield running


async def photo_after(bot: RunningBot, text: str) -> tuple[dict, bytes]:
    before = len(bot.tg.calls_to("sendPhoto"))
    bot.tg.private_text(USER, text)
    await wait_until(lambda: len(bot.tg.calls_to("sendPhoto")) > before, timeout=TIMEOUT)
    await wait_until(bot.settled, timeout=TIMEOUT)
    call = bot.tg.calls_to("sendPhoto")[-1]
    return call.params, call.files["photo"].data


async def test_chart_arrives_as_a_photo_that_decodes(
    bot: RunningBot, market: QuotesEmulator
) -> None:
    params, png = await photo_after(bot, "/chart aapl 6mo")
    height, width = imread(io.BytesIO(png), format="png").shape[:2]
    assert width >= 800 and height >= 450
    assert int(params["chat_id"]) == USER
    assert params["caption"].startswith("AAPL 6mo: 187.42 USD, +")
    assert market.requests == [("AAPL", {"range": "6mo", "interval": "1d"})]
    [message] = [m for m in bot.tg.bot_messages(USER) if "photo" in m]
    assert message["photo"][0]["width"] == width  # what the emulator read from the upload


async def test_the_same_chart_again_makes_no_second_request(
    bot: RunningBot, market: QuotesEmulator
) -> None:
    _, first = await photo_after(bot, "/chart MSFT")
    _, again = await photo_after(bot, "/chart $msft 1mo")
    assert again == first
    assert market.requests == [("MSFT", {"range": "1mo", "interval": "1d"})]
    await photo_after(bot, "/chart MSFT 5d")  # another range is another chart
    assert [q["range"] for _, q in market.requests] == ["1mo", "5d"]


@pytest.mark.parametrize(
    ("setup", "text", "expected"),
    [
        ("empty", "/chart AAPL 1d", "No chart: there are no prices for AAPL over 1d."),
        ("ok", "/chart ZZZZ", "No chart: I couldn't find a quote for ZZZZ."),
        ("error", "/chart AAPL", "No chart: quotes are unavailable right now."),
        ("ok", "/chart AAPL 2y", USAGE["chart"]),
    ],
)
async def test_no_prices_no_chart(
    bot: RunningBot, market: QuotesEmulator, setup: str, text: str, expected: str
) -> None:
    if setup == "empty":
        market.empty.add("AAPL")
    else:
        market.mode = setup
    [answer] = await bot.ask(USER, USER, text)
    assert answer == expected
    assert not bot.tg.calls_to("sendPhoto")


async def test_the_watchlist_compares_as_percent_change(
    bot: RunningBot, market: QuotesEmulator
) -> None:
    assert await bot.ask(USER, USER, "/chart watchlist") == [
        "Your watchlist is empty — add one with /watchlist add AAPL"
    ]
    await bot.ask(USER, USER, "/watchlist add AAPL")
    await bot.ask(USER, USER, "/watchlist add MSFT")
    await bot.ask(USER, USER, "/watchlist add TSLA")
    market.empty.add("MSFT")
    params, png = await photo_after(bot, "/chart watchlist 6mo")
    height, width = imread(io.BytesIO(png), format="png").shape[:2]
    assert (width, height) >= (800, 450)
    caption = params["caption"]
    assert caption.startswith("Watchlist 6mo (% change): AAPL +") and ", TSLA +" in caption
    assert caption.endswith("; no prices for MSFT")
    assert sorted(s for s, q in market.requests if q["range"] == "6mo") == ["AAPL", "MSFT", "TSLA"]


async def test_the_analyst_attaches_a_chart_when_asked(
    bot: RunningBot, market: QuotesEmulator
) -> None:
    params, png = await photo_after(bot, "show me TSLA over 6 months")
    height, width = imread(io.BytesIO(png), format="png").shape[:2]
    assert (width, height) >= (800, 450)
    assert params["caption"].startswith("Here is the chart: TSLA 6mo: 251.03 USD")
    assert market.requests == [("TSLA", {"range": "6mo", "interval": "1d"})]  # drawn once


async def test_a_private_image_reply_never_reaches_the_group(tg: TelegramApiEmulator) -> None:
    png = (Path(__file__).parents[3] / "docs" / "chart.png").read_bytes()
    target = Target(chat_id=GROUP, user_id=USER, group=True, reply_to=1)
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        writer = TurnWriter(Sender(bot, "switchboard_test_bot"), target)
        await writer.write(Reply("SECRET", file=ReplyFile("c.png", png, "image/png"), private=True))
    [photo] = tg.calls_to("sendPhoto")
    assert int(photo.params["chat_id"]) == USER
    assert tg.shown(GROUP) == ["I sent you the answer in a private chat."]
    assert all("SECRET" not in str(c.params) for c in tg.calls if c.params.get("chat_id") == GROUP)
