"""Memory extraction after a turn (issue 14), after mem0's extract-and-update: an after-turn job
(agents.runner.AfterTurnJob) that shows the model the turn's exchange and the user's memories
most related to it, and lets it decide, in ONE call, which facts to add, update or delete.

Off the turn's path: the core runs it once the answer was delivered. Its output is parsed
strictly (a JSON object; anything else is ignored, as are changes naming a memory it was not
shown or text over the store's limit). Its changes ride on one event, id
f"{invocation_id}:memory", author MEMORY_AUTHOR, appended with them in one transaction: a turn
replayed after a crash cannot add twice. The event carries no text, so agents/history.py never
shows it to a model as conversation. A failing model only logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.memory import MemorySource, UserMemories
from agents.memory_tools import clean_fact
from agents.model import ModelClient, ModelError, ModelRequest, ModelResponse
from agents.observer import Observer, Unobserved
from storage import SessionStore
from storage.types import Event, EventActions, Memory, MemoryChange, Session

log = logging.getLogger(__name__)

MEMORY_AUTHOR = "memory"
AGENT = "memory_extraction"  # the `agent` of its model call (metrics label, request name)
MAX_CHANGES = 10  # per turn: a runaway answer cannot rewrite a user's whole memory
TEXT_CHARS = 2000  # of each message shown to the model
EXTRACTION_INSTRUCTION = """You maintain a user's long-term memory for a chat assistant.
You get the memories already stored that relate to the latest exchange (each with its id) and
that exchange. Decide what to change so the memory holds lasting facts about the user: where
they live or work, family, pets, allergies, diet, likes and dislikes, plans.
- add: a new lasting fact, short, in the third person ("lives in Lisbon").
- update: a stored fact that changed or can be made more precise (give its id and new text).
- delete: a stored fact the user said is wrong or asked to forget (give its id).
Store nothing for small talk, questions, requests or the assistant's own words; never secrets,
passwords, card numbers or other people's private details. Do not add what is already stored.
Answer with JSON only, no prose and no code fence:
{"changes": [{"op": "add", "text": "..."}, {"op": "update", "id": "...", "text": "..."},
{"op": "delete", "id": "..."}]}
With nothing to change, answer {"changes": []}."""


class ExtractionStore(SessionStore, MemorySource, Protocol):
    """The store as the job uses it (storage.Store is one)."""


@dataclass(frozen=True, slots=True)
class MemoryExtraction:
    """The after-turn job: one model call per answered turn, its changes as one event."""

    store: ExtractionStore
    model: ModelClient
    observer: Observer = field(default_factory=Unobserved)  # counted like the turn's calls

    async def run(self, session: Session, invocation_id: str) -> None:
        exchange = _exchange(session, invocation_id)
        if exchange is None:
            return
        asked, answer = exchange
        memories = UserMemories(self.store, session.app_name, session.user_id)
        shown = await memories.search(asked)
        try:
            response = await _complete(self.model, _request(shown, asked, answer))
        except ModelError as exc:
            self.observer.model_call(self.model.model, exc.kind)
            log.warning("memory extraction for %s failed (%s)", invocation_id, exc.kind)
            return
        self._observe(response)
        changes = parse_changes(response.text if response else "", {m.id for m in shown})
        if changes is None:
            log.warning("memory extraction for %s: unusable answer, ignored", invocation_id)
            return
        if changes:
            await self.store.append_event(session, extraction_event(invocation_id, changes))

    def _observe(self, response: ModelResponse | None) -> None:
        model = (response.model if response else None) or self.model.model
        self.observer.model_call(model, "ok")
        if response is not None and response.usage is not None:
            usage = response.usage
            self.observer.tokens(model, AGENT, usage.prompt_tokens, usage.completion_tokens)


def _exchange(session: Session, invocation_id: str) -> tuple[str, str] | None:
    """The turn's message and answer; None when it was extracted already, is out of view, or
    failed (nothing to learn from)."""
    own = [e for e in session.events if e.invocation_id == invocation_id]
    asked = next((e for e in own if e.id == f"{invocation_id}:u"), None)
    answer = next((e for e in own if e.final), None)
    done = any(e.id == f"{invocation_id}:memory" for e in own)
    if done or asked is None or answer is None or answer.error:
        return None
    return asked.text, answer.text


def extraction_event(invocation_id: str, changes: Sequence[MemoryChange]) -> Event:
    return Event(
        author=MEMORY_AUTHOR,
        content={"memory_changes": len(changes)},  # no text: never conversation
        invocation_id=invocation_id,
        id=f"{invocation_id}:memory",
        actions=EventActions(memory_changes=tuple(changes)),
    )


def _request(shown: Sequence[Memory], asked: str, answer: str) -> ModelRequest:
    stored = [{"id": m.id, "text": m.text} for m in shown]
    exchange = {"user": asked[:TEXT_CHARS], "assistant": answer[:TEXT_CHARS]}
    body = {"stored_memories": stored, "latest_exchange": exchange}
    return ModelRequest(
        agent_name=AGENT,
        system=EXTRACTION_INSTRUCTION,
        messages=({"role": "user", "content": json.dumps(body, ensure_ascii=False)},),
    )


async def _complete(model: ModelClient, request: ModelRequest) -> ModelResponse | None:
    response: ModelResponse | None = None
    stream = model.stream(request)
    try:
        async for chunk in stream:
            if isinstance(chunk, ModelResponse):
                response = chunk
    finally:
        await stream.aclose()
    return response


def parse_changes(text: str, known_ids: set[str]) -> list[MemoryChange] | None:
    """The changes in the model's answer; None when it is not the JSON asked for. A change
    that is malformed, names a memory not shown, or holds unusable text is dropped alone."""
    try:
        data = json.loads(text.strip())
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        return None
    parsed = (_change(item, known_ids) for item in data["changes"][:MAX_CHANGES])
    return [c for c in parsed if c is not None]


def _change(item: Any, known_ids: set[str]) -> MemoryChange | None:
    if not isinstance(item, Mapping):
        return None
    op, memory_id = item.get("op"), item.get("id")
    if op in ("update", "delete") and memory_id not in known_ids:
        return None
    if op == "delete":
        return MemoryChange("delete", memory_id=str(memory_id))
    text = clean_fact(item.get("text")) if isinstance(item.get("text"), str) else None
    if not isinstance(text, str):
        return None
    if op == "add":
        return MemoryChange("add", text=text)
    return MemoryChange("update", text=text, memory_id=str(memory_id)) if op == "update" else None
