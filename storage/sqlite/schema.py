"""SQLite schema: versioned migrations applied at open, and the connection pragmas.

Every migration is a list of statements run inside one `BEGIN IMMEDIATE` transaction together
with the version bump, so a crash mid-upgrade leaves the old schema intact (SQLite DDL is
transactional). Never edit a released migration: add the next one.
"""

from __future__ import annotations

import sqlite3

from storage.types import SchemaTooNew

# Version 1: the first released layout (sessions, events, scoped state, identities, inbox).
_V1 = [
    """CREATE TABLE sessions (
        pk INTEGER PRIMARY KEY,
        app_name TEXT NOT NULL,
        user_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (app_name, user_id, session_id)
    )""",
    # `pk` is assigned in commit order by the single writer, so it is the event order.
    """CREATE TABLE events (
        pk INTEGER PRIMARY KEY,
        session_pk INTEGER NOT NULL,
        id TEXT NOT NULL,
        invocation_id TEXT NOT NULL,
        author TEXT NOT NULL,
        timestamp REAL NOT NULL,
        content TEXT NOT NULL,
        state_delta TEXT,
        transfer_to_agent TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        final INTEGER NOT NULL DEFAULT 0,
        error TEXT
    )""",
    # Loading the last N events is an index range scan: cost independent of history length.
    "CREATE INDEX events_session_seq ON events (session_pk, pk)",
    # Idempotent append: an event id is stored at most once per session.
    "CREATE UNIQUE INDEX events_session_id ON events (session_pk, id)",
    """CREATE TABLE app_state (
        app_name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (app_name, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE user_state (
        app_name TEXT NOT NULL, user_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (app_name, user_id, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE session_state (
        session_pk INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (session_pk, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE identities (
        platform TEXT NOT NULL,
        platform_user_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        display_name TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (platform, platform_user_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX identities_user ON identities (user_id)",
    """CREATE TABLE inbox (
        platform TEXT NOT NULL,
        message_id TEXT NOT NULL,
        user_id TEXT,
        payload TEXT NOT NULL,
        received_at REAL NOT NULL,
        done_at REAL,
        PRIMARY KEY (platform, message_id)
    )""",
]

# Version 2: per-session counters (turns, events, tokens) and delegation counts so admin views
# never scan the events table; one-time link codes; the audit log and its hashing salt.
_V2 = [
    "ALTER TABLE sessions ADD COLUMN turns INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN events INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0",
    """UPDATE sessions SET
        turns = (SELECT count(*) FROM events e WHERE e.session_pk = sessions.pk
                 AND e.author = 'user'),
        events = (SELECT count(*) FROM events e WHERE e.session_pk = sessions.pk),
        prompt_tokens = (SELECT coalesce(sum(prompt_tokens), 0) FROM events e
                         WHERE e.session_pk = sessions.pk),
        completion_tokens = (SELECT coalesce(sum(completion_tokens), 0) FROM events e
                             WHERE e.session_pk = sessions.pk)""",
    "CREATE INDEX sessions_recent ON sessions (app_name, updated_at)",
    """CREATE TABLE delegations (
        session_pk INTEGER NOT NULL, agent TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (session_pk, agent)
    ) WITHOUT ROWID""",
    """INSERT INTO delegations (session_pk, agent, n)
        SELECT session_pk, transfer_to_agent, count(*) FROM events
        WHERE transfer_to_agent IS NOT NULL GROUP BY session_pk, transfer_to_agent""",
    """CREATE TABLE link_codes (
        code TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at REAL NOT NULL
    )""",
    "CREATE INDEX link_codes_user ON link_codes (user_id)",
    """CREATE TABLE audit (
        pk INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL,
        command TEXT NOT NULL, detail TEXT NOT NULL
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('audit_salt', lower(hex(randomblob(16))))",
    "CREATE INDEX inbox_pending ON inbox (received_at) WHERE done_at IS NULL",
    "CREATE INDEX inbox_user ON inbox (user_id)",
]

# Version 3: notices waiting for an identity's next private message (e.g. "a new account was
# linked to yours"), and an index to count one actor's recent audit entries (failed /link codes).
_V3 = [
    """CREATE TABLE notices (
        pk INTEGER PRIMARY KEY, platform TEXT NOT NULL, platform_user_id TEXT NOT NULL,
        text TEXT NOT NULL, created_at REAL NOT NULL
    )""",
    "CREATE INDEX notices_identity ON notices (platform, platform_user_id)",
    "CREATE INDEX audit_actor ON audit (actor, command, at)",
]

# Compaction: what a turn loads starts at the session's latest summary event (author 'summary');
# this partial index finds it without reading the history in between.
_SUMMARIES = [
    "CREATE INDEX events_summaries ON events (session_pk, pk) WHERE author = 'summary'",
]

# Memories: short facts about a user, changed by events (`events.memory_changes` keeps what each
# event did). `memory_terms` is their full-text index, one row per memory (rowid = memories.pk),
# holding owner-keyed hashed terms (storage.common.memory_terms): a search only meets the user's
# own rows, and the index never holds plain words.
_MEMORIES = [
    "ALTER TABLE events ADD COLUMN memory_changes TEXT",
    """CREATE TABLE memories (
        pk INTEGER PRIMARY KEY,
        app_name TEXT NOT NULL,
        user_id TEXT NOT NULL,
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        event_id TEXT NOT NULL,
        UNIQUE (app_name, user_id, id)
    )""",
    "CREATE INDEX memories_recent ON memories (app_name, user_id, updated_at)",
    "CREATE VIRTUAL TABLE memory_terms USING fts5(terms, detail=none)",
]

# Proactive messages (issue 15): `jobs` holds what users set (alerts, reminders, the digest;
# changed by events' schedule_changes) beside the scheduler's bookkeeping (armed, fired_day,
# version: changed only by claims); `outbox` holds each message the scheduler sends, written
# before the send and deleted once the platform took it.
_PROACTIVE = [
    """CREATE TABLE jobs (
        app_name TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        platform TEXT NOT NULL,
        chat_id TEXT,
        platform_user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        symbol TEXT,
        op TEXT,
        value REAL,
        text TEXT NOT NULL DEFAULT '',
        due_at REAL,
        at TEXT,
        zone TEXT NOT NULL DEFAULT 'UTC',
        armed INTEGER NOT NULL DEFAULT 1,
        fired_day TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (app_name, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX jobs_user ON jobs (app_name, user_id, created_at)",
    "CREATE INDEX jobs_due ON jobs (app_name, due_at) WHERE due_at IS NOT NULL",
    "CREATE INDEX jobs_symbol ON jobs (app_name, symbol) WHERE kind = 'alert'",
    """CREATE TABLE outbox (
        app_name TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        chat_id TEXT,
        platform_user_id TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (app_name, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX outbox_user ON outbox (app_name, user_id)",
]

# Usernames (Telegram @name, Discord user name) kept with each identity, so admins can name
# a user by them; one account holds a username at a time.
_USERNAMES = [
    "ALTER TABLE identities ADD COLUMN username TEXT",
    "CREATE INDEX identities_username ON identities (username) WHERE username IS NOT NULL",
]

# Admin /stats draws turns per day: the user events of a window, found by time.
_TURN_TIMES = ["CREATE INDEX events_user_time ON events (timestamp) WHERE author = 'user'"]

# An outbox row remembers the identities whose private chat refused it (newline-separated
# platform:id), so the fallback tries every other linked identity once, whatever their age.
_OUTBOX_TRIED = ["ALTER TABLE outbox ADD COLUMN tried TEXT NOT NULL DEFAULT ''"]

MIGRATIONS: tuple[list[str], ...] = (
    _V1,
    _V2,
    _V3,
    _SUMMARIES,
    _MEMORIES,
    _PROACTIVE,
    _USERNAMES,
    _TURN_TIMES,
    _OUTBOX_TRIED,
)
LATEST = len(MIGRATIONS)


def configure_writer(db: sqlite3.Connection, busy_timeout_ms: int, synchronous: str) -> None:
    """Pragmas of the one writer connection. WAL lets readers run beside the writer."""
    if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk (WAL fsynced) before any caller's await returns. Group commit
    # pays that fsync once per batch instead of once per append.
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA temp_store = MEMORY")
    db.execute("PRAGMA cache_size = -32000")
    # Deleted content is overwritten with zeros, so an erased user's text does not linger in
    # free pages of the file (see checkpoint_truncate for the WAL). Some builds (Debian's) have
    # it on by default, many do not; with it off the privacy test finds the text in the file.
    db.execute("PRAGMA secure_delete = ON")


def checkpoint_truncate(db: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and truncate it to zero bytes; True when a reader
    kept it from finishing (the next erase, or SQLite's own checkpoints, finish the job)."""
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(busy)


def configure_reader(db: sqlite3.Connection, busy_timeout_ms: int) -> None:
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA query_only = ON")
    db.execute("PRAGMA cache_size = -32000")


def schema_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, target: int = LATEST) -> int:
    """Bring the database up to `target` in one transaction; return the version found."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(db)
        if found > LATEST:
            raise SchemaTooNew(found, LATEST)
        for version in range(found + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found
