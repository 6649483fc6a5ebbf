"""Telegram end to end: the real PTB Application, the real core, the Bot API emulator."""
