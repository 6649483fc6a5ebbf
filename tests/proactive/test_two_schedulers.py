"""Two schedulers (two apps: their own pools, as two worker processes) on one PostgreSQL
database, ticking at the same moments: every due reminder and every crossed alert is claimed by
exactly one of them and sent exactly once, and only one of them polls the quotes each interval."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import open_app
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import Clock
from tests.core.conftest import make_settings

from .conftest import POLL, RecordingSender, say, scheduler

pytestmark = pytest.mark.postgres

USERS = 30


async def test_every_job_fires_exactly_once_across_two_schedulers(
    postgres_db_url: str, market: QuotesEmulator, clock: Clock
) -> None:
    settings = make_settings(postgres_db_url, QUOTES_BASE_URL=market.base_url)
    async with open_app(settings, clock=clock) as one, open_app(settings, clock=clock) as two:
        for n in range(USERS):
            app = one if n % 2 else two
            await say(app, f"/remind in 1m job {n}", user=str(n))
            await say(app, f"/remind in 2m second {n}", user=str(n))
            await say(app, "/alert AAPL above 190", user=str(n))
        senders = [RecordingSender(), RecordingSender()]
        schedulers = [scheduler(one, clock, senders[0]), scheduler(two, clock, senders[1])]
        market.set_price("AAPL", 180.0)
        market.requests.clear()
        for price in (180.0, 195.0, 196.0, 197.0):  # crossed at the second poll
            market.set_price("AAPL", price)
            clock.now += POLL
            await asyncio.gather(*(s.tick() for s in schedulers))
            await asyncio.gather(*(s.tick() for s in schedulers))
        sent = [item for sender in senders for item in sender.sent]
        ids = [item.id for item in sent]
        assert len(ids) == len(set(ids)) == 3 * USERS
        texts = sorted(item.reply.text for item in sent)
        assert texts.count('⏰ Reminder: "job 0"') == 1
        assert sum("AAPL above 190" in t for t in texts) == USERS
        # One poll per interval between them: one request for the one symbol, not one each.
        assert len(market.requests) == 4
