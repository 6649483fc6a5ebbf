"""The Discord adapter on discord.py 2.

- adapter.py: `DiscordAdapter`, the lifecycle, gateway messages and slash commands as turns,
  replay of what was left unanswered, in-run retries of undelivered replies.
- client.py: building the discord.py client (endpoints, intents, sharding, command sync).
- commands.py: the core's commands as slash commands with typed options.
- translate.py: a message or an interaction -> `Incoming`.
- delivery.py: replies into a channel (streamed by edits, idempotent by nonce) or a slash
  command's response, and "typing…".
- private.py: private replies to messages in shared channels, by DM.
"""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
