"""Many events into one session in a handful of statements (imports, benchmarks).

The result is the same as appending the events one by one: new events are those whose id the
session does not hold yet (first occurrence wins within the batch); their state deltas, folded
in order (last write per key wins, None deletes), are applied once per scope; counters grow by
what was new. The session row is locked for the transaction, so concurrent appends wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.postgres_codec import event_params, split_for_sql
from storage.types import Event, Session

_LOCK_SESSION = """
SELECT sid FROM sessions WHERE app_name = $1 AND user_id = $2 AND session_id = $3 FOR UPDATE
"""

# Columns as in event_params, as arrays; unnest keeps their order, so `seq` does too.
_INSERT = """
INSERT INTO events (sid, id, invocation_id, author, ts, content, state_delta,
                    transfer_to_agent, prompt_tokens, completion_tokens, final, error)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::jsonb[],
                         $7::jsonb[], $8::text[], $9::bigint[], $10::bigint[], $11::bool[],
                         $12::text[])
ON CONFLICT (sid, id) DO NOTHING
RETURNING id
"""

_BUMP = """
UPDATE sessions SET state = (state || $2::jsonb) - $3::text[],
                    updated_at = greatest(updated_at, $4::double precision),
                    events = events + $5, turns = turns + $6,
                    prompt_tokens = prompt_tokens + $7, completion_tokens = completion_tokens + $8
WHERE sid = $1
"""

MERGE_APP = """
INSERT INTO app_state AS a (app_name, state) VALUES ($1, $2::jsonb)
ON CONFLICT (app_name) DO UPDATE SET state = (a.state || EXCLUDED.state) - $3::text[]
"""

MERGE_USER = """
INSERT INTO user_state AS u (app_name, user_id, state) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (app_name, user_id) DO UPDATE SET state = (u.state || EXCLUDED.state) - $4::text[]
"""


async def bulk_append(conn: asyncpg.Connection, session: Session, events: Sequence[Event]) -> int:
    """Inside the caller's transaction. Returns how many events were new; raises LookupError
    when the session does not exist."""
    sid = await conn.fetchval(_LOCK_SESSION, session.app_name, session.user_id, session.session_id)
    if sid is None:
        raise LookupError(session.session_id)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    if not unique:
        return 0
    rows = [event_params(event) for event in unique.values()]
    columns = [[row[i] for row in rows] for i in range(len(rows[0]))]
    inserted = {record["id"] for record in await conn.fetch(_INSERT, sid, *columns)}
    fresh = [event for event in unique.values() if event.id in inserted]
    if not fresh:
        return 0
    delta: dict[str, Any] = {}
    for event in fresh:
        delta.update(event.actions.state_delta)
    app_set, app_del, user_set, user_del, own_set, own_del = split_for_sql(delta)
    await conn.execute(
        _BUMP,
        sid,
        own_set,
        own_del,
        max(event.timestamp for event in fresh),
        len(fresh),
        sum(event.author == "user" for event in fresh),
        sum(event.usage.prompt_tokens for event in fresh if event.usage),
        sum(event.usage.completion_tokens for event in fresh if event.usage),
    )
    if app_set != "{}" or app_del:
        await conn.execute(MERGE_APP, session.app_name, app_set, app_del)
    if user_set != "{}" or user_del:
        await conn.execute(MERGE_USER, session.app_name, session.user_id, user_set, user_del)
    return len(fresh)
