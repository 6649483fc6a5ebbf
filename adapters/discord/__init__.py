"""The Discord adapter (discord.py): see adapters/discord/adapter.py."""
