"""The PostgreSQL schema as numbered migrations, applied in order at open.

An old database upgrades in place: `schema_version` records the last migration applied. Several
workers may start at once, so the upgrade runs under a transaction-scoped advisory lock.
Append new migrations to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import asyncpg

from storage.types import SchemaTooNew

# Events point at their session through a surrogate key (`sid`), so moving a session to another
# user (/link) is a one-row update. Counters on the session row keep the admin views from
# counting whole histories. `seq` orders events; (sid, seq) makes "last N events" an index range.
_V1 = """
CREATE TABLE sessions (
    sid bigserial PRIMARY KEY,
    app_name text NOT NULL,
    user_id text NOT NULL,
    session_id text NOT NULL,
    state jsonb NOT NULL DEFAULT '{}',
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    turns bigint NOT NULL DEFAULT 0,
    events bigint NOT NULL DEFAULT 0,
    prompt_tokens bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    UNIQUE (app_name, user_id, session_id)
);
CREATE INDEX sessions_by_activity ON sessions (app_name, updated_at DESC);
CREATE INDEX sessions_by_user_activity ON sessions (app_name, user_id, updated_at DESC);

CREATE TABLE events (
    seq bigserial NOT NULL,
    sid bigint NOT NULL REFERENCES sessions (sid) ON DELETE CASCADE,
    id text NOT NULL,
    invocation_id text NOT NULL DEFAULT '',
    author text NOT NULL,
    ts double precision NOT NULL,
    content jsonb NOT NULL,
    state_delta jsonb NOT NULL DEFAULT '{}',
    transfer_to_agent text,
    prompt_tokens bigint,
    completion_tokens bigint,
    final boolean NOT NULL DEFAULT false,
    error text,
    -- Deliberately no index on seq alone: given one, the planner may answer "last N events of
    -- a session" by walking it backwards through everyone's newer events.
    CONSTRAINT events_by_session PRIMARY KEY (sid, seq)
);
-- Idempotent append: an event id is stored at most once per session (as in SQLite).
CREATE UNIQUE INDEX events_session_id ON events (sid, id);
CREATE INDEX events_transfers ON events (sid) WHERE transfer_to_agent IS NOT NULL;

CREATE TABLE app_state (
    app_name text PRIMARY KEY,
    state jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE user_state (
    app_name text NOT NULL,
    user_id text NOT NULL,
    state jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (app_name, user_id)
);

CREATE TABLE identities (
    platform text NOT NULL,
    platform_user_id text NOT NULL,
    user_id text NOT NULL,
    display_name text,
    created_at double precision NOT NULL,
    PRIMARY KEY (platform, platform_user_id)
);
CREATE INDEX identities_by_user ON identities (user_id);

CREATE TABLE link_codes (
    code text PRIMARY KEY,
    user_id text NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX link_codes_by_user ON link_codes (user_id);

CREATE TABLE inbox (
    seq bigserial NOT NULL,
    platform text NOT NULL,
    message_id text NOT NULL,
    payload jsonb NOT NULL,
    user_id text,
    received_at double precision NOT NULL,
    done_at double precision,
    PRIMARY KEY (platform, message_id)
);
CREATE INDEX inbox_pending ON inbox (received_at, seq) WHERE done_at IS NULL;
CREATE INDEX inbox_by_user ON inbox (user_id);

CREATE TABLE audit (
    seq bigserial PRIMARY KEY,
    at double precision NOT NULL,
    actor text NOT NULL,
    command text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_time ON audit (at);

-- audit_salt: actors are stored as salted hashes, the salt never leaves the database.
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta (key, value) VALUES ('audit_salt', replace(gen_random_uuid()::text, '-', ''));
"""

# Notices waiting for an identity's next private message (e.g. "a new account was linked to
# yours"), and an index to count one actor's recent audit entries (failed /link codes).
_V2 = """
CREATE TABLE notices (
    seq bigserial PRIMARY KEY,
    platform text NOT NULL,
    platform_user_id text NOT NULL,
    text text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX notices_by_identity ON notices (platform, platform_user_id);
CREATE INDEX audit_by_actor ON audit (actor, command, at);
"""

# Compaction: what a turn loads starts at the session's latest summary event (author 'summary');
# this partial index finds it without reading the history in between.
_SUMMARIES = """
CREATE INDEX events_summaries ON events (sid, seq) WHERE author = 'summary';
"""

# Memories: short facts about a user, changed by events (`events.memory_changes` keeps what each
# event did). `terms` holds owner-keyed hashed terms (storage.common.memory_terms), so a GIN
# lookup only meets the user's own rows and the index never holds plain words; fastupdate off
# keeps a search from scanning a pending list.
_MEMORIES = """
ALTER TABLE events ADD COLUMN memory_changes jsonb;
CREATE TABLE memories (
    seq bigserial NOT NULL,
    app_name text NOT NULL,
    user_id text NOT NULL,
    id text NOT NULL,
    text text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    event_id text NOT NULL,
    terms tsvector NOT NULL,
    PRIMARY KEY (app_name, user_id, id)
);
CREATE INDEX memories_recent ON memories (app_name, user_id, updated_at DESC);
CREATE INDEX memories_terms ON memories USING gin (terms) WITH (fastupdate = off);
"""

# Proactive messages (issue 15): `jobs` holds what users set (alerts, reminders, the digest;
# changed by events' schedule_changes) beside the scheduler's bookkeeping (armed, fired_day,
# version: changed only by claims); `outbox` holds each message the scheduler sends, written
# before the send and deleted once the platform took it.
_PROACTIVE = """
CREATE TABLE jobs (
    app_name text NOT NULL,
    id text NOT NULL,
    user_id text NOT NULL,
    kind text NOT NULL,
    platform text NOT NULL,
    chat_id text,
    platform_user_id text NOT NULL,
    created_at double precision NOT NULL,
    symbol text,
    op text,
    value double precision,
    text text NOT NULL DEFAULT '',
    due_at double precision,
    at text,
    zone text NOT NULL DEFAULT 'UTC',
    armed boolean NOT NULL DEFAULT true,
    fired_day text,
    version integer NOT NULL DEFAULT 0,
    PRIMARY KEY (app_name, id)
);
CREATE INDEX jobs_user ON jobs (app_name, user_id, created_at);
CREATE INDEX jobs_due ON jobs (app_name, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_symbol ON jobs (app_name, symbol) WHERE kind = 'alert';
CREATE TABLE outbox (
    app_name text NOT NULL,
    id text NOT NULL,
    user_id text NOT NULL,
    platform text NOT NULL,
    chat_id text,
    platform_user_id text NOT NULL,
    text text NOT NULL,
    created_at double precision NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_try double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (app_name, id)
);
CREATE INDEX outbox_user ON outbox (app_name, user_id);
"""

# Usernames (Telegram @name, Discord user name) kept with each identity, so admins can name
# a user by them; one account holds a username at a time.
_USERNAMES = """
ALTER TABLE identities ADD COLUMN username TEXT;
CREATE INDEX identities_by_username ON identities (username) WHERE username IS NOT NULL;
"""

# Admin /stats draws turns per day: the user events of a window, found by time.
_TURN_TIMES = """
CREATE INDEX events_user_time ON events (ts) WHERE author = 'user';
"""

# An outbox row remembers the identities whose private chat refused it (newline-separated
# platform:id), so the fallback tries every other linked identity once, whatever their age.
_OUTBOX_TRIED = """
ALTER TABLE outbox ADD COLUMN tried text NOT NULL DEFAULT '';
"""

MIGRATIONS: tuple[str, ...] = (
    _V1,
    _V2,
    _SUMMARIES,
    _MEMORIES,
    _PROACTIVE,
    _USERNAMES,
    _TURN_TIMES,
    _OUTBOX_TRIED,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Any constant works as long as no other code uses it for pg_advisory_xact_lock.
_MIGRATION_LOCK = 0x5377_6974_6368_4D67  # "SwitchMg"


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        found = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(found, SCHEMA_VERSION)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        return found
