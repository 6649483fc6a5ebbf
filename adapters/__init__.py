"""Platform front ends: each translates its platform's messages to `bot.messages.Incoming`
and the core's `Reply` back, and nothing else (docs/architecture.md, "Parts").

- telegram/, discord/: the platform adapters (packages, each exporting its Adapter class).
- console.py: the terminal chat (`python -m bot chat`).
- delivery.py: what every adapter does with a turn (the acknowledgement, tasks, retry pause).
- text.py: platform length units and splitting long replies.
"""
