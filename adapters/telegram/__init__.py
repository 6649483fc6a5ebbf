"""The Telegram adapter on python-telegram-bot 22.

- adapter.py: `TelegramAdapter`, the lifecycle (polling or webhook), recording each update
  before Telegram forgets it, replaying what was left unanswered, one task per turn.
- translate.py: an `Update` -> `Incoming` (who, where, whether the bot was addressed).
- delivery.py: one turn's replies into a chat ("typing…", streaming edits, split messages,
  files, private answers to group messages, the parts a retried turn already sent).
- sender.py: the Bot API calls (retries with backoff, refusals, edit pacing) and `Target`.
- http.py: PTB's Bot API transport on aiohttp.
"""

from adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
