"""Jobs and unsent outbox rows go along when an SQLite store is copied into PostgreSQL
(storage/transfer.py), bookkeeping included, and a second copy adds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import open_app
from storage import open_store
from storage.transfer import copy_store
from testkit.emulators.quotes import QuotesEmulator
from testkit.helpers import Clock
from tests.core.conftest import make_settings

from .conftest import POLL, RecordingSender, say, scheduler

pytestmark = pytest.mark.postgres
APP = "Multi-Agent System"


async def test_jobs_and_outbox_are_copied_once(
    tmp_path: Path, postgres_db_url: str, market: QuotesEmulator, clock: Clock
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'bot.db'}"
    settings = make_settings(sqlite_url, QUOTES_BASE_URL=market.base_url)
    async with open_app(settings, clock=clock) as app:
        await say(app, "/tz Europe/Berlin")
        await say(app, "/alert AAPL above 100")  # fires: disarmed, version 1
        await say(app, "/remind in 1m sent soon")
        await say(app, "/remind in 2h later")
        await say(app, "/digest 08:00", user="7")
        clock.now += POLL
        await scheduler(app, clock, RecordingSender()).fire_due(clock.now)
        await scheduler(app, clock, RecordingSender()).poll_alerts(clock.now)
        user = await app.store.find_user("telegram", "42")
        assert user is not None
        jobs = await app.store.jobs(APP, user)
        outbox = await app.store.pending_outbox(APP, clock.now)
        export = await app.store.export_user(APP, user)
    assert len(jobs) == 2 and len(outbox) == 2 and not jobs[0].armed

    report = await copy_store(sqlite_url, postgres_db_url)
    assert report.added["jobs"] == 3 and report.added["outbox"] == 2
    async with await open_store(postgres_db_url) as pg:
        assert await pg.jobs(APP, user) == jobs
        assert await pg.pending_outbox(APP, clock.now) == outbox
        copied = await pg.export_user(APP, user)
        assert copied["jobs"] == export["jobs"] and copied["outbox"] == export["outbox"]
    again = await copy_store(sqlite_url, postgres_db_url)
    assert again.added["jobs"] == 0 and again.added["outbox"] == 0
