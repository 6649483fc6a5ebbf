"""The core's post-turn jobs (bot/after_turn.py): run in the background once the answer was
delivered and the message marked answered, never on the turn's path, under the session lock,
one at a time per session, finished or cancelled at stop; a failing job is only logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

import agents
from agents.compaction import Compaction, OfflineSummariser, summary_event
from agents.runner import AfterTurnJob, Runner
from bot.admin_commands import describe_event
from bot.after_turn import AfterTurn
from bot.conversation import Conversation
from bot.messages import Incoming
from storage import Event, InboxStatus, Session, Store, open_store
from storage.types import SUMMARY_AUTHOR
from testkit.helpers import wait_until

from .conftest import NO_NETWORK, AppFactory, incoming, say

APP = "after-turn"


class Gate:
    """An after-turn job that waits for the test to let it finish, and says what it saw."""

    def __init__(self, store: Store, *, fail: bool = False) -> None:
        self.store = store
        self.fail = fail
        self.release = asyncio.Event()
        self.seen: list[tuple[str, InboxStatus | None, int]] = []
        self.active = 0
        self.most_active = 0
        self.cancelled = 0

    async def run(self, session: Session, invocation_id: str) -> None:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        platform, message_id = invocation_id.split(":", 1)
        status = await self.store.inbox_status(platform, message_id)
        self.seen.append((invocation_id, status, len(session.events)))
        try:
            await self.release.wait()
            if self.fail:
                raise RuntimeError("the job broke")
            after = await self.store.get_context(
                APP, session.user_id, session.session_id, max_events=100
            )
            assert after is not None and len(after.events) == len(session.events)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


@contextlib.asynccontextmanager
async def runner_with(url: str, *jobs: AfterTurnJob) -> AsyncIterator[tuple[Store, Runner]]:
    """The composition root's parts (bot.app.open_app) with these after-turn jobs."""
    store = await open_store(url)
    async with store, agents.QuoteProvider(NO_NETWORK) as quotes:
        model = agents.make_model(None, NO_NETWORK, "offline", 5, 0)
        team = agents.build_team(model, quotes)
        yield store, Runner(store, team, app_name=APP, history_window=100, after_turn=jobs)


@contextlib.asynccontextmanager
async def core_with(url: str, *jobs: AfterTurnJob) -> AsyncIterator[tuple[Store, Conversation]]:
    async with runner_with(url, *jobs) as (store, runner):
        core = Conversation(store, runner, app_name=APP, typing_after=None)
        async with contextlib.aclosing(core):
            yield store, core


async def answered(core: Conversation, message: Incoming) -> list[str]:
    return [r.text async for r in core.handle(message) if not (r.partial or r.typing)]


async def test_jobs_run_after_the_answer_off_the_turns_path(db_url: str) -> None:
    async with await open_store(db_url) as probe:
        gate = Gate(probe)
        async with core_with(db_url, gate) as (store, core):
            first = incoming("hello", message_id="m1")
            # The whole turn ends while its job still waits: the job is not on its path.
            assert len(await answered(core, first)) == 1
            await wait_until(lambda: gate.seen)
            # It started once the message was marked answered, with the turn's two events.
            assert gate.seen == [("telegram:m1", InboxStatus.DONE, 2)]
            # The next message of the chat waits for the session lock the job holds.
            second = asyncio.create_task(answered(core, incoming("hello again", message_id="m2")))
            await wait_until(lambda: store.inbox_status("telegram", "m2"))
            assert not second.done()
            gate.release.set()
            assert len(await second) == 1
            await core.after_turn_idle()
            assert [s[0] for s in gate.seen] == ["telegram:m1", "telegram:m2"]
            assert gate.seen[1][2] == 4  # m2's job sees both turns
            assert gate.most_active == 1


async def test_one_job_at_a_time_per_session_in_turn_order(db_url: str) -> None:
    async with await open_store(db_url) as probe:
        gate = Gate(probe)
        gate.release.set()
        async with core_with(db_url, gate) as (_, core):
            messages = [incoming(f"hello {i}", message_id=f"m{i}") for i in range(5)]
            await asyncio.gather(*(answered(core, m) for m in messages))
            await core.after_turn_idle()
    assert [s[0] for s in gate.seen] == [f"telegram:m{i}" for i in range(5)]
    assert gate.most_active == 1


async def test_a_failing_job_is_only_logged(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with await open_store(db_url) as probe:
        gate = Gate(probe, fail=True)
        gate.release.set()
        async with core_with(db_url, gate) as (_, core):
            assert len(await answered(core, incoming("hello", message_id="m1"))) == 1
            await core.after_turn_idle()
            assert len(await answered(core, incoming("hello", message_id="m2"))) == 1
            await core.after_turn_idle()
    assert len(gate.seen) == 2
    assert any("after-turn job Gate failed" in r.getMessage() for r in caplog.records)


async def test_stop_waits_for_a_job_then_cancels_it(db_url: str) -> None:
    async with await open_store(db_url) as probe:
        gate = Gate(probe)
        async with runner_with(db_url, gate) as (store, jobs):
            finishing = AfterTurn(store, jobs, APP, stop_wait=5.0)
            await store.create_session(APP, "u1", "telegram:1")
            finishing.start("u1", "telegram:1", "telegram:a")
            await wait_until(lambda: gate.seen)
            gate.release.set()
            await finishing.close()  # waited for: it finished
            assert gate.cancelled == 0 and gate.active == 0
            gate.release.clear()
            stopping = AfterTurn(store, jobs, APP, stop_wait=0.05)
            stopping.start("u1", "telegram:1", "telegram:b")
            await wait_until(lambda: len(gate.seen) == 2)
            await stopping.close()  # never released: cancelled once its time is up
            assert gate.cancelled == 1 and gate.active == 0


async def test_a_conversation_is_compacted_in_the_background(any_db_url: str) -> None:
    async with await open_store(any_db_url) as probe:
        compaction = Compaction(probe, OfflineSummariser(), after=6)
        async with core_with(any_db_url, compaction) as (store, core):
            for i in range(4):
                await answered(core, incoming(f"tell me a joke about cats {i}", message_id=f"m{i}"))
            await core.after_turn_idle()
            user = await store.find_user("telegram", "42")
            assert user is not None
            session = await store.get_context(APP, user, "telegram:42", max_events=100)
            assert session is not None and session.events[0].author == SUMMARY_AUTHOR
            assert "Requests: tell me a joke about cats 0" in session.events[0].content["summary"]
            # The turn after it loads the summary and answers as usual.
            assert len(await answered(core, incoming("hello", message_id="m9"))) == 1


def test_the_admin_history_names_a_summary_and_what_it_covers() -> None:
    events = [Event("user", {"text": f"m{i}"}, f"i{i}", id=f"e{i}") for i in range(3)]
    line = describe_event(summary_event("telegram:9", "Ada asked about cats.", events))
    assert line.endswith("summary: summary of 3 events: Ada asked about cats.")


async def test_the_app_compacts_after_answers_and_its_stop_waits_for_it(
    app_factory: AppFactory,
) -> None:
    """Through the composition root (bot.app): COMPACT_AFTER wires the offline summariser; the
    app's stop waits for the jobs in flight, so the summary is there after a restart."""
    settings = {"COMPACT_AFTER": "4", "HISTORY_WINDOW": "12"}
    async with app_factory(**settings) as app:
        for topic in ("cats", "space", "rust"):
            assert await say(app, f"tell me a joke about {topic}")
    async with app_factory(**settings) as app:
        user = await app.store.find_user("telegram", "42")
        assert user is not None
        app_name = app.settings.app_name
        session = await app.store.get_context(app_name, user, "telegram:42", max_events=12)
        assert session is not None and session.events[0].author == SUMMARY_AUTHOR
        lines = session.events[0].content["summary"].splitlines()
        assert "Topics: cats, space, rust" in lines
        assert await say(app, "hello")  # the next turn loads it and answers as usual
