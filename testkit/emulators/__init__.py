"""Local emulators of the services the bot talks to, driven by the real client libraries
(python-telegram-bot, discord.py, the openai SDK, aiohttp): `telegram_api`, `discord_api`, `llm`,
`quotes`. Each records every request so a test can wait on what the bot did, and can inject the
failures the real service produces (429 with retry-after, 5xx, hangs, cut streams)."""
