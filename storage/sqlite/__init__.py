"""The SQLite backend (aiosqlite): the embedded default store, one process.

store (the Store class: encodes arguments, routes each call to the writer or a reader),
connection (the group-committing writer and the readers), opening (file, pragmas),
schema (migrations), codec (rows <-> values), and one module of statements per concept:
sessions, identities, links, inbox, audit, admin_views, privacy.
"""

from __future__ import annotations

from storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
