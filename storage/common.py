"""Rules both backends follow, in one place so that they cannot drift apart.

Both backends call these; a backend only decides how its rows hold the result. Rows copied from
one backend to the other (storage.transfer) stay comparable because of that: an audit hash, a
user id or a link code means the same thing in both (docs/architecture.md, "Storage").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from storage.types import Event

# What an erased user's id becomes in the audit details that named it.
DELETED_USER = "<deleted user>"

# No 0/O, 1/I/L: codes are read off one screen and typed on another. 31^8 codes: a collision
# is rare, and the backends just draw again.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_link_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    """Codes are typed by people: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_user_id() -> str:
    """Our own user id (12 hex characters), made on an identity's first sight."""
    return secrets.token_hex(6)


def hash_actor(salt: bytes, actor: str) -> str:
    """An audit entry's actor, keyed with the database's own salt (meta.audit_salt) so that a
    small id space (chat ids) cannot be looked up. The transfer copies the salt along."""
    return hmac.new(salt, actor.encode(), hashlib.sha256).hexdigest()[:16]


def dumps(value: Any) -> str:
    """Strict JSON (no NaN/Infinity: JSONB and other clients reject them); compact."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value is not JSON-serialisable: {exc}") from exc


def check_storable(event: Event) -> None:
    """Refuse, before anything is written, an event no backend may store: partial (streaming)
    events are only ever yielded, and the idempotent append needs an id."""
    if event.partial:
        raise ValueError("partial (streaming) events are never stored")
    if not event.id:
        raise ValueError("an event needs an id")
