"""A turn cut off at every point between two stored events resumes to the real answer.

The process dies (here: the store stops taking writes, as if killed, after k events of a turn)
and a fresh runner on the same database replays the invocation, as the core does at restart.
For every k the resumed turn must end with the answer the uncut turn gives: the agent that was
answering finishes it (not the manager, which once answered "Done!" after its handover), the
user's message is stored once, tools whose result was stored are not run again, and the state
is exactly the fold of the stored deltas. Real runner, real team, offline model, real store
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from agents import JokeBook, OfflineModel, QuoteProvider, build_team
from agents.runner import Runner
from storage import Event, Session, Store, open_store
from tests.reliability.conftest import APP, NO_NETWORK, Database, consistency_problems

TURNS = {
    "joke": ("tell me a joke about python", "funny_nerd", "Here's one about python"),
    "name and joke": (
        "Hi, my name is Grace, tell me a joke about databases",
        "funny_nerd",
        "Here's one about databases",
    ),
    "watchlist": ("add QRST to my watchlist", "stock_analyst", "QRST"),
}


class Killed(Exception):
    """The process died: nothing after this point happened."""


class DiesAfter:
    """The real store, until `writes` events of the turn are stored; then the process is gone."""

    def __init__(self, store: Store, writes: int) -> None:
        self._store = store
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_event(self, session: Session, event: Event) -> bool:
        if self._writes <= 0:
            raise Killed()
        self._writes -= 1
        return await self._store.append_event(session, event)


def runner(store: Any, quotes: QuoteProvider) -> Runner:
    return Runner(
        store, build_team(OfflineModel(), quotes, JokeBook(random.Random(3))), app_name=APP
    )


async def run(runner: Runner, user: str, text: str) -> list[Event]:
    inv = f"telegram:{user}"
    return [e async for e in runner.run_async(user, "s", text, invocation_id=inv) if not e.partial]


@pytest.mark.parametrize("turn", TURNS)
async def test_a_turn_killed_between_any_two_events_resumes_to_the_real_answer(
    database: Database, turn: str
) -> None:
    text, agent, answer = TURNS[turn]
    async with await open_store(database.url) as store, QuoteProvider(NO_NETWORK) as quotes:
        whole = await run(runner(store, quotes), "whole", text)
        assert whole[-1].author == agent and answer in whole[-1].text
        # k == len(whole): everything stored, killed before the reply was sent.
        for k in range(1, len(whole) + 1):
            user = f"cut{k}"
            if k < len(whole):
                with pytest.raises(Killed):
                    await run(runner(DiesAfter(store, k), quotes), user, text)
                first_final = None
            else:
                first_final = (await run(runner(store, quotes), user, text))[-1]
            resumed = await run(runner(store, quotes), user, text)
            if first_final is not None:  # answered again from the store, not run again
                assert [e.id for e in resumed] == [first_final.id]
                assert resumed[0].text == first_final.text
            final = resumed[-1]
            assert final.final and not final.error, (k, final)
            assert final.author == agent and answer in final.text, (k, final.author, final.text)
            events = await store.history(APP, user, limit=1000)
            assert [e.text for e in events if e.author == "user"] == [text], k
            assert not await consistency_problems(store, user, events), k
            assert _tool_runs(events) == _tool_runs(whole), k  # a stored result is not redone
            state = (await store.get_session(APP, user, "s", recent_events=0)).state  # type: ignore[union-attr]
            expected = (await store.get_session(APP, "whole", "s", recent_events=0)).state  # type: ignore[union-attr]
            assert _user_scope(state) == _user_scope(expected), k


def _tool_runs(events: list[Event]) -> list[str]:
    return sorted(e.content["tool_result"]["name"] for e in events if "tool_result" in e.content)


def _user_scope(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k.startswith("user:")}


class AnotherRunFirst:
    """The real store; just before this run stores its final answer, another run of the same
    invocation (a second worker, a restarted process) finishes the turn."""

    def __init__(self, store: Store, other_run: Any) -> None:
        self._store = store
        self._other_run = other_run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_event(self, session: Session, event: Event) -> bool:
        if event.final:
            await self._other_run()
        return await self._store.append_event(session, event)


async def test_when_another_run_answered_first_its_stored_answer_is_the_one_given(
    database: Database,
) -> None:
    text = TURNS["joke"][0]
    async with await open_store(database.url) as store, QuoteProvider(NO_NETWORK) as quotes:
        other: list[Event] = []

        async def other_run() -> None:
            other.extend(await run(runner(store, quotes), "u", text))

        mine = await run(runner(AnotherRunFirst(store, other_run), quotes), "u", text)
        session = await store.get_session(APP, "u", "s")
        assert session is not None
        [stored] = [e for e in session.events if e.final]
        assert (mine[-1].id, mine[-1].text, mine[-1].timestamp) == (
            stored.id,
            stored.text,
            stored.timestamp,
        )
        assert other[-1].timestamp == stored.timestamp
