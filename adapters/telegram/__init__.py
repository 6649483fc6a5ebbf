"""The Telegram adapter (python-telegram-bot): see adapters/telegram/adapter.py."""
