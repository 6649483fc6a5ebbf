"""`python -m bot admin migrate-sqlite-to-postgres SRC DST`: a progress bar, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import open_app

from .conftest import make_settings, say

ROOT = Path(__file__).resolve().parents[2]


def migrate(tmp_path: Path, src: str, dst: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_API_KEY"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", "admin", "migrate-sqlite-to-postgres", src, dst],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.postgres
async def test_migrate_copies_a_sqlite_chat_into_postgres(
    tmp_path: Path, db_url: str, postgres_db_url: str
) -> None:
    app_name, user = "migrate", "4242"
    async with open_app(make_settings(db_url, APP_NAME=app_name)) as app:
        await say(app, "My name is Ada", user=user)
        await say(app, "/watchlist add AAPL", user=user)
    first = migrate(tmp_path, db_url, postgres_db_url)
    assert first.returncode == 0, first.stderr
    assert "copied" in first.stdout and "row" in first.stderr  # the summary and the tqdm bar
    again = migrate(tmp_path, db_url, postgres_db_url)
    assert again.returncode == 0 and "(+0)" in again.stdout
    async with open_app(make_settings(postgres_db_url, APP_NAME=app_name)) as app:
        assert "Name: Ada" in await say(app, "/prefs", user=user)
        assert "Watchlist: AAPL" in await say(app, "/prefs", user=user)
        user_id = await app.store.find_user("telegram", user)
        assert user_id is not None


def test_migrate_refuses_a_missing_source(tmp_path: Path) -> None:
    proc = migrate(tmp_path, f"sqlite:///{tmp_path}/nope.db", "postgresql://127.0.0.1:1/x")
    assert proc.returncode == 2 and "Cannot migrate" in proc.stderr
    assert "Traceback" not in proc.stderr
