"""The project's test kit: what tests/ and bench/ both use to run the real bot against local
stand-ins, never a network. Not part of the installed application (pyproject installs only bot,
adapters, storage and agents), and it imports nothing from tests/ or bench/.

- `testkit.emulators`: the Telegram Bot API, Discord (gateway and REST), an OpenAI-compatible
  LLM and the quotes provider, each an aiohttp server on 127.0.0.1 that records every call.
- `testkit.databases`: a fresh PostgreSQL database per test (TEST_POSTGRES_URL) and raw row
  dumps of either backend.
- `testkit.bot_process`: `python -m bot` as a real process against the emulators.
- `testkit.workers`: N webhook-mode worker processes on one database and the traffic Telegram
  would send them.
- `testkit.helpers`: `wait_until` (the only way tests wait) and a clock stepped by hand.
"""
