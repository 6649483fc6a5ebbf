"""Opening the SQLite store's file: an owner-only file, pragmas and migrations.

The URL forms live in storage.urls; `:memory:` is one connection, nothing persisted. The writer
connection prepares the database (WAL, migrations, housekeeping) before any reader opens it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import aiosqlite

from storage.sqlite import schema
from storage.sqlite.audit import audit_salt
from storage.sqlite.codec import CachingConnection
from storage.sqlite.connection import close_quietly, map_error, run_on
from storage.sqlite.inbox import prune_inbox
from storage.types import StoreError
from storage.urls import MEMORY

# Answered inbox rows are kept this long to recognise redeliveries, then pruned at open.
INBOX_RETENTION_SECONDS = 30 * 24 * 3600


def create_private_file(path: str) -> None:
    """Create the database file owner-only (0600) before SQLite does (it would use the umask);
    SQLite gives its -wal and -shm files the same mode as the database file. Never its folder:
    a mistyped path must be an error, not a new directory tree (the message names the folder)."""
    if Path(path).is_dir():
        example = Path(path) / "switchboard.db"
        raise StoreError(f"{path} is a folder: the URL must name a file, e.g. {example}")
    try:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise StoreError(_cannot_create(Path(path), exc)) from exc


def _cannot_create(path: Path, exc: OSError) -> str:
    """Which folder is wrong, rather than the bare errno of the file inside it."""
    blocking = next((p for p in path.absolute().parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"cannot create the database file {path}: {blocking} is not a folder"
    if not path.parent.exists():
        return f"cannot create the database file {path}: the folder {path.parent} does not exist"
    return f"cannot create the database file {path}: {exc.strerror}"


def prepare(
    db: sqlite3.Connection, timeout_ms: int, synchronous: str, now: float
) -> tuple[int, str]:
    """Pragmas, migrations and housekeeping at open; returns (version found, audit salt)."""
    schema.configure_writer(db, timeout_ms, synchronous)
    found = schema.migrate(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        prune_inbox(db, now - INBOX_RETENTION_SECONDS)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found, audit_salt(db)


async def connect(path: str, busy_timeout: float) -> aiosqlite.Connection:
    # isolation_level=None: no implicit transactions; we issue BEGIN [IMMEDIATE] ourselves.
    return await aiosqlite.connect(
        path, isolation_level=None, timeout=busy_timeout, factory=CachingConnection
    )


async def open_connections(
    path: str, *, busy_timeout: float, synchronous: str
) -> tuple[aiosqlite.Connection, list[aiosqlite.Connection], int, str]:
    """(writer, readers, schema version found, audit salt); readers == [writer] in memory.
    Two readers: one for the turns, one for admin views and exports (connection.Readers)."""
    if path != MEMORY:
        create_private_file(path)
    timeout_ms = int(busy_timeout * 1000)
    writer = await connect(path, busy_timeout)
    conns = [writer]
    try:
        found, salt = await run_on(
            writer, lambda db: prepare(db, timeout_ms, synchronous, time.time())
        )
        if path == MEMORY:  # a second connection would see another, empty database
            return writer, [writer], found, salt
        for _ in range(2):
            conn = await connect(path, busy_timeout)
            conns.append(conn)
            await run_on(conn, lambda db: schema.configure_reader(db, timeout_ms))
    except BaseException as exc:
        for conn in conns:
            await close_quietly(conn)
        if isinstance(exc, sqlite3.Error):
            raise map_error(exc) from exc
        raise
    return writer, conns[1:], found, salt
