"""kill -9 the bot at random points of a 300-message stream, restart, ten times (issue 8, Crashes).

30 users chat with `python -m bot` (Telegram adapter, offline model) through the Bot API
emulator; each user sends the next of their 10 messages once the bot has answered the previous
one. A seeded RNG picks ten kill points among the requests the bot makes: the k-th
sendMessage as it reaches Telegram (the reply left, the bot never saw it accepted), the next
batch of messages as Telegram hands it out (their turns about to begin, nothing recorded or
sent), or the next getUpdates (which confirms the batch before). Each point is hit exactly, from
the emulator's hooks, so a run is reproducible. After each kill the process is restarted; after
the tenth, it runs until everything is answered and is stopped with SIGTERM. Then:

- the database passes its integrity check (SQLite integrity/foreign keys; PostgreSQL amcheck),
- every update the emulator delivered is in history exactly once, in the order it was sent,
- every message was answered: no inbox row is left, and each turn's final text is what the user
  now sees in the chat,
- no half-written turn: counters agree with events, state is exactly the fold of the deltas,
  every invocation has one final event, last, not an error,
- duplicate replies only in Telegram's unavoidable window: per chat, at most one extra message
  per kill that found a turn of that chat in flight. The figures are printed (pytest -s).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from storage import Event, open_store
from testkit.emulators.telegram_api import Call, TelegramApiEmulator
from tests.reliability.conftest import (
    APP,
    TOKEN,
    BotProcess,
    Database,
    consistency_problems,
    integrity_problems,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SEED = 20261125
USERS = 30
PER_USER = 10
KILLS = 10
FIRST_CHAT = 710_001
CYCLE_TIMEOUT = 60.0  # generous: a cycle takes a few seconds; this only bounds a hang
NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Guido",
    "Ken",
    "Dennis",
    "Bjarne",
    "Niklaus",
    "Tony",
    "Frances",
    "Radia",
    "Leslie",
    "Whitfield",
    "Hedy",
    "Katherine",
    "John",
    "Sophie",
    "Tim",
    "Vint",
    "Shafi",
    "Judea",
    "Yukihiro",
    "Anders",
    "Rasmus",
    "Larry",
]
DELIVERY = "delivery"  # the phase hit from the emulator's on_deliver hook, not a request
PHASES = ("sendMessage", DELIVERY, "getUpdates")


def ticker(user: int, k: int) -> str:
    return f"Q{chr(65 + user // 26)}{chr(65 + user % 26)}{'XYZ'[k]}"


def script(user: int) -> list[str]:
    """One user's ten messages: name, jokes, a fact, watchlist edits, small talk."""
    return [
        f"Hi, my name is {NAMES[user]}",
        "tell me a joke about python",
        f"add {ticker(user, 0)} to my watchlist",
        "tell me a nerdy fact about space",
        "tell me a joke about databases",
        f"add {ticker(user, 1)} to my watchlist",
        "what's my name?",
        "tell me a joke about git",
        f"add {ticker(user, 2)} to my watchlist",
        "show my watchlist",
    ]


@dataclass
class Stream:
    """The users: each sends their next message once the bot started answering the last."""

    tg: TelegramApiEmulator
    sent: list[list[int]] = field(default_factory=lambda: [[] for _ in range(USERS)])

    @staticmethod
    def chat(user: int) -> int:
        return FIRST_CHAT + user

    def pump(self) -> None:
        for user in range(USERS):
            ids = self.sent[user]
            if len(ids) < PER_USER and len(self.tg.bot_messages(self.chat(user))) >= len(ids):
                text = script(user)[len(ids)]
                ids.append(self.tg.private_text(self.chat(user), text, first_name=NAMES[user]))

    def all_sent(self) -> bool:
        return all(len(ids) == PER_USER for ids in self.sent)


@dataclass
class Killer:
    """Kills the bot from the emulator's request hook when its armed point arrives."""

    bot: BotProcess
    sends: int = 0
    target: int = 0
    phase: str = ""
    fired: bool = True
    points: list[str] = field(default_factory=list)

    def arm(self, target: int, phase: str) -> None:
        self.target, self.phase, self.fired = target, phase, False

    def on_call(self, call: Call) -> None:
        if call.method == "sendMessage":
            self.sends += 1
        if self.fired or self.sends < self.target or call.method != self.phase:
            return
        self.fired = True
        self.points.append(f"{self.phase}@{self.sends}")
        self.bot.kill()

    def on_deliver(self, update_ids: list[int]) -> None:
        self.on_call(Call(DELIVERY, {"update_ids": update_ids}))


async def in_flight_chats(db: Database) -> set[int]:
    """Chats with a message recorded but not answered: where a turn was in flight at the kill
    (or waiting behind one). Read while the bot is down."""
    async with await open_store(db.url) as store:
        pending = await store.inbox_pending("telegram")
    return {int(item.payload["chat_id"]) for item in pending}


async def test_kill_9_ten_times_during_300_messages(
    tg: TelegramApiEmulator, bot: BotProcess, database: Database
) -> None:
    rng = random.Random(SEED)
    stream = Stream(tg)
    killer = Killer(bot)
    tg.on_call = killer.on_call
    tg.on_deliver = killer.on_deliver
    # Kill points spread over the run: after the k-th reply began (≈ one per turn).
    targets = sorted(rng.sample(range(5, USERS * PER_USER - 10), KILLS))
    began = time.monotonic()
    in_flight: list[set[int]] = []

    def progressed() -> bool:
        stream.pump()
        return killer.fired

    for target in targets:
        killer.arm(target, rng.choice(PHASES))
        await bot.start(wait_polling=False)
        await bot.until(progressed, CYCLE_TIMEOUT)
        assert await bot.wait() == -9
        in_flight.append(await in_flight_chats(database))

    # The last run: everything gets answered, then a clean stop.
    await bot.start()
    async with await open_store(database.url) as store:

        async def finished() -> bool:
            stream.pump()
            return (
                stream.all_sent()
                and all(len(tg.bot_messages(stream.chat(u))) >= PER_USER for u in range(USERS))
                and not await store.inbox_pending("telegram")
            )

        await bot.until(finished, CYCLE_TIMEOUT * 2)
        assert await bot.terminate() == 0, bot.tail()
        elapsed = time.monotonic() - began

        problems = await integrity_problems(database)
        assert not problems, problems
        assert not await store.inbox_pending("telegram")

        delivered = set(tg.delivered())
        pushed = {update for ids in stream.sent for update in ids}
        assert delivered == pushed
        duplicates = 0
        for user in range(USERS):
            chat = stream.chat(user)
            user_id = await store.find_user("telegram", str(chat))
            assert user_id is not None
            events = await store.history(APP, user_id, limit=10_000)
            asked = [e for e in events if e.author == "user"]
            # Every delivered message exactly once, in the order the user sent it.
            expected = [f"telegram:{u}:u" for u in stream.sent[user]]
            assert sorted(e.id for e in asked) == sorted(expected), "not exactly once"
            assert [e.id for e in asked] == expected, "not in the order sent"
            assert [e.text for e in asked] == script(user)
            assert not await consistency_problems(store, user_id, events)
            [info] = await store.list_sessions(APP, user_id)
            session = await store.get_session(APP, user_id, info.session_id, recent_events=0)
            assert session is not None
            state = session.state
            assert state["user:name"] == NAMES[user]
            assert state["user:stock_watchlist"] == [ticker(user, k) for k in range(3)]
            # Each turn's final answer is what the user sees now (after edits).
            shown = tg.shown(chat)
            finals = [e for e in events if e.final]
            assert len(finals) == PER_USER
            for final in finals:
                assert final.text in shown, _story(events, final.invocation_id, shown)
            jokes = [f for f, text in zip(finals, script(user), strict=True) if "joke" in text]
            bad = [(f.author, f.text) for f in jokes if f.author != "funny_nerd"]
            assert not bad, bad
            # Telegram's window: a reply that left just before a kill may go out again.
            extra = len(tg.sent(chat)) - PER_USER
            allowed = sum(chat in chats for chats in in_flight)
            assert 0 <= extra <= allowed, (chat, extra, allowed)
            duplicates += extra

    log = bot.log.read_text(errors="replace")
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "Traceback" not in log, bot.tail(80)
    counts = Counter(c.method for c in tg.calls)
    print(
        f"\n[{database.kind}] {USERS * PER_USER} messages, {KILLS} kills at "
        f"{', '.join(killer.points)}; {bot.starts} starts (to polling: "
        f"{max(bot.start_times):.1f}s max); chats awaiting an answer at the kills: "
        f"{sum(len(c) for c in in_flight)}; duplicate replies: {duplicates}; lost: 0; "
        f"turns run twice: {log.count('was answered by another run')}; "
        f"sendMessage {counts['sendMessage']}, edits {counts['editMessageText']}; "
        f"{elapsed:.1f}s"
    )


def _story(events: list[Event], invocation_id: str, shown: list[str]) -> str:
    """What a failing chat looked like: the invocation's stored events and the chat."""
    lines = [f"invocation {invocation_id}:"]
    for e in events:
        if e.invocation_id == invocation_id:
            lines.append(f"  {e.id} {e.author} final={e.final} {dict(e.content)!r:.150}")
    lines += ["chat:", *(f"  {text!r:.100}" for text in shown)]
    return "\n".join(lines)
