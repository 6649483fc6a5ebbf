"""A Telegram webhook worker as `python -m bot` composes it, with PTB's overall rate limiter off,
for bench/workers.py to measure the bot's own capacity (Telegram's ~30 calls/s per bot would
otherwise be the figure). Configured by the environment like `python -m bot`; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.telegram.adapter import TelegramAdapter
from bot.app import open_app
from bot.logging_setup import setup_logging
from bot.settings import Settings


async def main() -> None:
    settings = Settings.from_env(dotenv_path=None)
    setup_logging(settings.log_level, settings.secrets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_app(settings) as app:
        adapter = TelegramAdapter(settings, app.core, overall_max_rate=0)
        await adapter.start()
        try:
            await stop.wait()
        finally:
            await adapter.stop()


if __name__ == "__main__":
    asyncio.run(main())
