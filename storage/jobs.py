"""Jobs and outbox rows as both backends read and write them, and their part of /export.

Backend-neutral: the column lists, value <-> row conversion and the export entries live here
once, so the two backends store, return and export the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.types import JOB_KINDS, Job, OutboxItem

# The definition's columns (what an "add" writes), then the bookkeeping a read returns too.
JOB_DEFINITION = (
    "id, user_id, kind, platform, chat_id, platform_user_id, created_at,"
    " symbol, op, value, text, due_at, at, zone"
)
JOB_COLUMNS = f"{JOB_DEFINITION}, armed, fired_day, version"
OUTBOX_COLUMNS = (
    "id, user_id, platform, chat_id, platform_user_id, text, created_at, attempts, tried"
)


def job_values(job: Job, user_id: str) -> tuple[Any, ...]:
    """The values of JOB_DEFINITION for `job` of `user_id`."""
    if job.kind not in JOB_KINDS:
        raise ValueError(f"job kind must be one of {JOB_KINDS}, got {job.kind!r}")
    return (
        job.id,
        user_id,
        job.kind,
        job.platform,
        job.chat_id,
        job.platform_user_id,
        float(job.created_at),
        job.symbol,
        job.op,
        job.value,
        job.text,
        job.due_at,
        job.at,
        job.zone,
    )


def job_from_row(row: Sequence[Any]) -> Job:
    (jid, user, kind, platform, chat, puid, created, symbol, op, value, text) = row[:11]
    (due, at, zone, armed, fired_day, version) = row[11:17]
    return Job(
        id=jid,
        kind=kind,
        platform=platform,
        chat_id=chat,
        platform_user_id=puid,
        created_at=created,
        symbol=symbol,
        op=op,
        value=value,
        text=text,
        due_at=due,
        at=at,
        zone=zone,
        user_id=user,
        armed=bool(armed),
        fired_day=fired_day,
        version=int(version),
    )


def outbox_values(item: OutboxItem) -> tuple[Any, ...]:
    """The values of OUTBOX_COLUMNS."""
    return (
        item.id,
        item.user_id,
        item.platform,
        item.chat_id,
        item.platform_user_id,
        item.text,
        float(item.created_at),
        item.attempts,
        "\n".join(item.tried),
    )


def outbox_from_row(row: Sequence[Any]) -> OutboxItem:
    (oid, user, platform, chat, puid, text, created, attempts, tried) = row[:9]
    tried_ids = tuple(key for key in (tried or "").split("\n") if key)
    return OutboxItem(oid, user, platform, chat, puid, text, created, int(attempts), tried_ids)


def add_to_export(
    document: dict[str, Any], jobs: Sequence[Job], outbox: Sequence[OutboxItem]
) -> dict[str, Any]:
    """The user's jobs (definitions, no bookkeeping) and unsent messages, in /export."""
    document["jobs"] = [_exported(job) for job in jobs]
    document["outbox"] = [
        {"id": o.id, "platform": o.platform, "chat_id": o.chat_id, "text": o.text} for o in outbox
    ]
    return document


def _exported(job: Job) -> dict[str, Any]:
    shown = {
        "kind": job.kind,
        "platform": job.platform,
        "chat_id": job.chat_id,
        "created_at": job.created_at,
        "symbol": job.symbol,
        "condition": job.op,
        "value": job.value,
        "text": job.text or None,
        "due_at": job.due_at,
        "at": job.at,
        "zone": job.zone,
    }
    return {key: value for key, value in shown.items() if value is not None}
