"""Rules both backends follow, in one place so that they cannot drift apart.

Both backends call these; a backend only decides how its rows hold the result. Rows copied from
one backend to the other (storage.transfer) stay comparable because of that: an audit hash, a
user id or a link code means the same thing in both (docs/architecture.md, "Storage").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from typing import Any

from storage.types import Event, MemoryChange

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


_USERNAME = re.compile(r"[a-z0-9_.]{2,32}")


def normalize_username(name: str | None) -> str | None:
    """A platform username as stored and looked up: no leading "@", lower case (Telegram's are
    case-insensitive, Discord's lower case); None for anything that cannot be one."""
    if not name:
        return None
    bare = name.strip().removeprefix("@").lower()
    return bare if _USERNAME.fullmatch(bare) else None


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


# -- memories (docs/architecture.md, "Data model": Memories) -------------------------------------
MEMORY_TEXT_MAX = 300  # characters of one memory: the tools refuse longer text, the store cuts it
DEFAULT_MEMORY_LIMIT = 200  # memories per user (MEMORY_LIMIT); beyond it the stalest goes
_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")
# Words too common to say what a memory is about: searching for them would rank everything.
_STOPWORDS = frozenset(
    _WORD.findall(
        "a an and are as at be but by do does did for from has have had he her him his how i"
        " in is it its me my of on or our she so that the their them they this to was we were"
        " what when where which who why will with you your"
    )
)
_MAX_QUERY_TERMS = 32


# A surrogate code point on its own (JSON can carry one, "\\ud800"): no UTF-8 database stores it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """Text either backend can store: lone surrogates become U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def memory_text(text: str) -> str:
    """What the store keeps of a memory's text: without NUL (PostgreSQL text cannot hold it, and
    both backends must keep the same), stripped, cut at MEMORY_TEXT_MAX characters."""
    return storable_text(text.replace("\x00", "")).strip()[:MEMORY_TEXT_MAX].rstrip()


def normalise_memory(text: str) -> str:
    """The form near-duplicates are compared in: casefolded, whitespace collapsed, no trailing
    punctuation ("Has a cat." and "has a  cat" are the same memory)."""
    folded = _SPACES.sub(" ", text.casefold()).strip()
    end = len(folded)
    while end and (folded[end - 1].isspace() or unicodedata.category(folded[end - 1])[0] == "P"):
        end -= 1
    return folded[:end]


def near_duplicate(first: str, second: str) -> bool:
    """Normalised texts that are equal, or one of which holds the other as whole words."""
    if not first or not second:
        return False
    return first == second or f" {first} " in f" {second} " or f" {second} " in f" {first} "


def memory_id(event_id: str, index: int, session_id: str = "") -> str:
    """A memory's id (12 hex characters), fixed by the event that adds it and the change's index
    in it (event ids are unique per session, hence the session): a replay cannot add twice."""
    raw = "\x1f".join((session_id, event_id, str(index))).encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


def memory_terms(app_name: str, user_id: str, text: str, limit: int | None = None) -> list[str]:
    """The full-text index's terms for a text: each word (casefolded, no stop words) hashed with
    its owner, so an index lookup only ever meets that user's memories (cost independent of
    other users') and the index holds no plain words (nothing of an erased user stays readable
    in index pages not yet merged). Query words go through the same function."""
    owner = f"{app_name}\x1f{user_id}\x1f".encode()
    terms: list[str] = []
    for word in _WORD.findall(text.casefold()):
        if word in _STOPWORDS:
            continue
        term = hashlib.blake2b(owner + _stem(word).encode(), digest_size=6).hexdigest()
        if term not in terms:
            terms.append(term)
            if limit is not None and len(terms) >= limit:
                break
    return terms


def _stem(word: str) -> str:
    """A plural or third-person "s" off, so "where do I live?" finds "lives in Lisbon" and "my
    cats" finds "has a cat"; nothing cleverer (both sides of a search go through it)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def recall_terms(app_name: str, user_id: str, query: str) -> list[str]:
    """A query's terms: user text, never syntax; bounded, so a long message costs no more."""
    return memory_terms(app_name, user_id, query, _MAX_QUERY_TERMS)


def memory_changes_to_json(changes: tuple[MemoryChange, ...]) -> list[dict[str, str]]:
    """An event's memory changes as stored with it (both backends, and the export)."""
    out = []
    for change in changes:
        item = {"op": change.op}
        if change.text:
            item["text"] = storable_text(change.text)
        if change.memory_id:
            item["memory_id"] = change.memory_id
        out.append(item)
    return out


def memory_changes_from_json(value: Any) -> tuple[MemoryChange, ...]:
    """The stored form back; rows written before memories existed hold nothing (None)."""
    if not value:
        return ()
    return tuple(
        MemoryChange(item["op"], item.get("text", ""), item.get("memory_id", "")) for item in value
    )
