"""/chart through Discord: the slash command's options come from USER_COMMANDS, the chart
arrives as a PNG attachment of at least 800x450; no prices -> a message and no attachment.
Real discord.py against the Discord emulator, the quotes emulator as the market-data source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from testkit.emulators.discord_api import DiscordEmulator
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import png_size
from tests.e2e.discord.conftest import USER, RunningBot, bot_env, start_bot

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bot(
    emu: DiscordEmulator, market: QuotesEmulator, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    env = bot_env(emu, tmp_path) | {"QUOTES_BASE_URL": market.base_url}
    async with start_bot(Settings.from_env(env, dotenv_path=None), emu) as running:
        yield running


async def test_chart_command_options_come_from_the_command_list(bot: RunningBot) -> None:
    [chart] = [c for c in bot.emu.commands[None] if c["name"] == "chart"]
    ticker, range_ = chart["options"]
    assert (ticker["name"], ticker.get("required")) == ("ticker", True)
    assert [c["value"] for c in range_["choices"]] == ["1d", "5d", "1mo", "6mo", "1y"]


async def test_chart_arrives_as_a_png_attachment(bot: RunningBot) -> None:
    (reply,) = await bot.command(USER, "chart", {"ticker": "AAPL", "range": "1y"})
    (attachment,) = reply["attachments"]
    assert attachment["filename"] == "AAPL-1y.png"
    size = png_size(bot.emu.attachment_data(attachment))
    assert size is not None and size[0] >= 800 and size[1] >= 450
    assert reply["content"].startswith("AAPL 1y: 187.42 USD, +")


async def test_no_prices_no_attachment(bot: RunningBot, market: QuotesEmulator) -> None:
    market.empty.add("TSLA")
    (reply,) = await bot.command(USER, "chart", {"ticker": "TSLA"})
    assert reply["content"] == "No chart: there are no prices for TSLA over 1mo."
    assert not reply["attachments"]


async def test_the_analyst_attaches_a_chart_when_asked(bot: RunningBot) -> None:
    replies = await bot.say(USER, "show me TSLA over 6 months")
    (reply,) = replies
    (attachment,) = reply["attachments"]
    assert attachment["filename"] == "TSLA-6mo.png"
    size = png_size(bot.emu.attachment_data(attachment))
    assert size is not None and size[0] >= 800 and size[1] >= 450
    assert reply["content"].startswith("Here is the chart: TSLA 6mo: 251.03 USD")
