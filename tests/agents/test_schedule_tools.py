"""Alerts and reminders set by chat (issue 15): the offline model reads the request, the
analyst or the manager calls the tool, the job is stored with the tool-result event and fires
into the chat the message came from. Real runner, real team, real store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents import OfflineModel
from agents.openai_model import OpenAIModel
from agents.profile import TIME_ZONE_KEY
from agents.quotes import QuoteProvider
from agents.runner import Runner
from agents.schedules import MAX_ALERTS
from agents.user_schedules import ChatOrigin
from storage import Store
from storage.types import Event, EventActions
from testkit.emulators.llm import LLMEmulator, Say, call
from tests.agents.runner_helpers import APP, make_runner
from tests.transcript import Contains, final_text, transcript

GROUP = ChatOrigin("telegram", "-100500", "2002")
PRIVATE = ChatOrigin("telegram", None, "2002")
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
async def runner(store: Store, quotes: QuoteProvider) -> AsyncIterator[Runner]:
    yield make_runner(store, OfflineModel(), quotes)


async def say(runner: Runner, text: str, origin: ChatOrigin | None = PRIVATE) -> list[Event]:
    events = runner.run_async("u1", "s1", text, origin=origin)
    return [e async for e in events if not e.partial]


async def test_the_analyst_sets_an_alert_in_the_chat_it_was_asked_in(
    runner: Runner, store: Store
) -> None:
    events = await say(runner, "tell me when TSLA drops below 150", GROUP)

    assert transcript(events) == [
        ("user", "tell me when TSLA drops below 150"),
        ("manager", "call transfer_to_agent(agent_name='stock_analyst')"),
        ("manager", "-> stock_analyst"),
        ("stock_analyst", "call set_alert(symbol='TSLA', condition='below', value=150.0)"),
        ("stock_analyst", Contains("set_alert ->")),
        ("stock_analyst", "OK: I'll tell you here when TSLA below 150."),
    ]
    [alert] = await store.jobs(APP, "u1")
    assert (alert.kind, alert.symbol, alert.op, alert.value) == ("alert", "TSLA", "below", 150)
    assert (alert.platform, alert.chat_id, alert.platform_user_id) == (
        "telegram",
        "-100500",
        "2002",
    )


async def test_alerts_listed_and_removed_by_number(runner: Runner, store: Store) -> None:
    await say(runner, "alert me if AAPL goes above 200")
    await say(runner, "let me know when NVDA moves 5%")

    listed = final_text(await say(runner, "show my alerts"))
    assert listed == "Your alerts:\n1. AAPL above 200\n2. NVDA moves 5% in a day"
    assert final_text(await say(runner, "remove alert 1")) == "Removed: AAPL above 200"
    assert [j.symbol for j in await store.jobs(APP, "u1")] == ["NVDA"]
    assert "no alert number 7" in final_text(await say(runner, "remove alert 7"))


async def test_the_manager_sets_a_reminder_in_minutes(runner: Runner, store: Store) -> None:
    before = time.time()
    events = await say(runner, "remind me in 10 minutes to stretch")

    assert transcript(events)[:2] == [
        ("user", "remind me in 10 minutes to stretch"),
        ("manager", "call set_reminder(when='in 10 minutes', text='stretch')"),
    ]
    assert 'I\'ll remind you: "stretch"' in final_text(events)
    [reminder] = await store.jobs(APP, "u1")
    assert reminder.kind == "reminder" and reminder.text == "stretch"
    assert reminder.chat_id is None  # set in the private chat: it fires there
    assert before + 600 <= (reminder.due_at or 0) <= time.time() + 600


async def test_tomorrow_at_9_is_in_the_users_time_zone(runner: Runner, store: Store) -> None:
    await say(runner, "hello")  # the session exists; then the user's zone is set
    session = await store.get_session(APP, "u1", "s1")
    assert session is not None
    zone = Event(
        "system", {"text": "/tz Asia/Tokyo"}, actions=EventActions({TIME_ZONE_KEY: "Asia/Tokyo"})
    )
    await store.append_event(session, zone)

    await say(runner, "remind me tomorrow at 9 to call mom")

    [reminder] = await store.jobs(APP, "u1")
    local = datetime.fromtimestamp(reminder.due_at or 0, TOKYO)
    assert (local.hour, local.minute, reminder.zone) == (9, 0, "Asia/Tokyo")
    assert local.date() > datetime.now(TOKYO).date()
    assert "call mom" in final_text(await say(runner, "what reminders do I have?"))


async def test_limits_and_nonsense_are_short_answers(runner: Runner, store: Store) -> None:
    for n in range(MAX_ALERTS):
        await say(runner, f"tell me when QQ{chr(65 + n)} goes above {100 + n}")
    refused = final_text(await say(runner, "tell me when TSLA goes above 300"))

    assert f"you have {MAX_ALERTS} alerts already" in refused
    assert len(await store.jobs(APP, "u1")) == MAX_ALERTS
    assert "not a time of day" in final_text(await say(runner, "remind me at 25 to sleep"))


async def test_without_a_chat_nothing_is_set(runner: Runner, store: Store) -> None:
    events = await say(runner, "remind me in 10 minutes to stretch", origin=None)

    assert "only be set in a chat" in final_text(events)
    assert await store.jobs(APP, "u1") == []


async def test_a_listing_asked_in_a_group_is_private(runner: Runner) -> None:
    await say(runner, "tell me when TSLA drops below 150", GROUP)

    listed = [e async for e in runner.run_async("u1", "s1", "show my alerts", origin=GROUP)]
    removed = await say(runner, "remove alert 1", GROUP)

    assert listed[-1].content.get("private") is True
    assert not any(e.partial for e in listed)  # no streamed preview of it either
    assert removed[-1].content.get("private") is True


async def test_a_real_llm_sets_an_alert_for_the_caller_only(
    llm: LLMEmulator, openai_model: OpenAIModel, quotes: QuoteProvider, store: Store
) -> None:
    """Through the real openai SDK: the model names the user, the chat and a due time of its
    own choosing; the job belongs to the caller and fires in the caller's chat regardless."""
    llm.script(
        Say(tool_calls=[call("transfer_to_agent", agent_name="stock_analyst")]),
        Say(
            tool_calls=[
                call(
                    "set_alert",
                    symbol="tsla",
                    condition="below",
                    value=150,
                    user_id="alice",
                    chat_id="-1009999",
                    platform_user_id="666",
                )
            ]
        ),
        Say("Done: I'll tell you when TSLA drops below 150."),
    )
    runner = make_runner(store, openai_model, quotes)

    events = [
        e async for e in runner.run_async("u1", "s1", "tell me when TSLA < 150", origin=GROUP)
    ]

    assert (
        final_text([e for e in events if not e.partial])
        == "Done: I'll tell you when TSLA drops below 150."
    )
    [alert] = await store.jobs(APP, "u1")
    assert (alert.symbol, alert.op, alert.value) == ("TSLA", "below", 150)
    assert (alert.chat_id, alert.platform_user_id) == (GROUP.chat_id, GROUP.platform_user_id)
    assert await store.jobs(APP, "alice") == []
    analyst = next(r for r in llm.requests if "set_alert" in r.tool_names)
    assert "stock_analyst" in analyst.system
