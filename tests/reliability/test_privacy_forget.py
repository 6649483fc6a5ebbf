"""Privacy: after /forgetme (and an admin's /forget) no row anywhere (events, state, sessions,
inbox, identities, link codes, audit) mentions the user — on SQLite and on PostgreSQL. Audit
entries keep only hashed ids. Other users' data is untouched."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from bot.app import App
from testkit.databases import Row, audit_log, dump_rows, sqlite_path
from tests.reliability.fault_fixtures import (
    ADMIN_TG,
    ask,
    message,
    rows_mentioning,
    running_app,
)

TG_ID = "881234567"
DC_ID = "991234567"
TG_NAME = "Zephyrine"
DC_NAME = "Zephydisc"
SECRET = "quokka-saffron-77"
OTHER = "551234567"
OTHER_SECRET = "walrus-cobalt-12"


async def everything_about_someone(app: App) -> str:
    """A user with every kind of row: chats on both platforms (linked), a group, a reset, a
    watchlist, a remembered name, an export, link codes, inbox rows. Returns the user id."""
    tg = {"user": TG_ID, "name": TG_NAME}
    dc = {"user": DC_ID, "name": DC_NAME, "platform": "discord"}
    await ask(app, message(f"Hi, my name is {TG_NAME}", **tg))
    await ask(app, message(f"remember my secret: {SECRET}", **tg))
    await ask(app, message("/watchlist add TSLA", **tg))
    await ask(app, message("Tell me a joke about Python", group=True, **tg))
    # Group chatter not meant for the bot: recorded (no user id yet), never answered.
    await ask(app, message(f"psst, {SECRET}", group=True, addressed=False, **tg))
    await ask(app, message("/reset", **tg))
    code = (await ask(app, message("/link", **tg))).text.split("Your link code: ")[1].split()[0]
    await ask(app, message(f"remember this too: {SECRET}", **dc))
    await ask(app, message(f"/link {code}", **dc))
    linked = await ask(app, message(f"/link {code} confirm", **dc))
    assert linked.text.startswith("Linked"), linked.text
    await ask(app, message("/link", **dc))  # an unused code left behind
    assert (await ask(app, message("/export", **tg))).final[-1].file is not None
    await ask(app, message("what's AAPL at?", **dc))
    user_id = await app.store.find_user("telegram", TG_ID)
    assert user_id and user_id == await app.store.find_user("discord", DC_ID)
    # Someone else, who must keep everything.
    await ask(app, message(f"remember my secret: {OTHER_SECRET}", user=OTHER, name="Otto"))
    return user_id


def traces(user_id: str) -> tuple[str, ...]:
    return (user_id, TG_ID, DC_ID, TG_NAME, DC_NAME, SECRET)


def assert_forgotten(rows: list[Row], user_id: str) -> None:
    left = {trace: rows_mentioning(rows, trace) for trace in traces(user_id)}
    left = {trace: found for trace, found in left.items() if found}
    assert not left, f"rows still mention the user: {left}"
    assert rows_mentioning(rows, OTHER_SECRET), "another user's data was erased"


async def test_forgetme_leaves_no_row_about_the_user(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        user_id = await everything_about_someone(app)
        assert rows_mentioning(await dump_rows(any_db_url), SECRET)
        asked = await ask(app, message("/forgetme", user=TG_ID, name=TG_NAME))
        assert "confirm" in asked.text
        done = await ask(app, message("/forgetme confirm", user=TG_ID, name=TG_NAME))
        assert done.final and done.text
        assert_forgotten(await dump_rows(any_db_url), user_id)
        # A later message starts from nothing: a new user id, no memory.
        prefs = await ask(app, message("/prefs", user=TG_ID, name=TG_NAME))
        assert TG_NAME not in prefs.text and "TSLA" not in prefs.text
        assert await app.store.find_user("telegram", TG_ID) != user_id


@pytest.mark.parametrize("target", ["platform id", "user id"])
async def test_admin_forget_leaves_no_row_about_the_user(
    any_db_url: str,
    target: str,
) -> None:
    async with running_app(any_db_url) as app:
        user_id = await everything_about_someone(app)
        ref = f"discord:{DC_ID}" if target == "platform id" else user_id
        await ask(app, message("/stats", user=ADMIN_TG))
        await ask(app, message(f"/user {ref}", user=ADMIN_TG))
        await ask(app, message(f"/history {ref} 5", user=ADMIN_TG))
        forgot = await ask(app, message(f"/forget {ref}", user=ADMIN_TG))
        assert forgot.final and forgot.final[0].private
        rows = await dump_rows(any_db_url)
        assert_forgotten(rows, user_id)
        entries = await audit_log(any_db_url)
        assert any(e["command"] == "/forget" for e in entries)
        # The admin is audited too, but only as a hash.
        assert not rows_mentioning([("audit", tuple(e.values())) for e in entries], ADMIN_TG)


@pytest.mark.parametrize("checkpointed", [False, True], ids=["in the WAL", "in the file"])
async def test_forgetme_leaves_no_trace_in_the_sqlite_files(
    db_url: str, checkpointed: bool
) -> None:
    """Not only the tables: the bytes of the database file and its WAL, while the bot runs.
    The text is either still in the WAL (which kept it after the erase until some later
    checkpoint) or already in the database file, as SQLite's automatic checkpoints put it there
    in a long run (deleted cells kept their bytes there without secure_delete). PostgreSQL keeps
    dead rows in its files until VACUUM: docs/reliability.md says so; nothing to grep there."""
    path = sqlite_path(db_url)
    async with running_app(db_url) as app:
        await everything_about_someone(app)
        if checkpointed:
            with contextlib.closing(sqlite3.connect(path)) as other:
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            assert SECRET.encode() in path.read_bytes()
        await ask(app, message("/forgetme", user=TG_ID, name=TG_NAME))
        await ask(app, message("/forgetme confirm", user=TG_ID, name=TG_NAME))
        files = {p.name: p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))}
        for name, data in files.items():
            for trace in (SECRET, TG_NAME, DC_NAME):
                assert trace.encode() not in data, f"{trace!r} is still in {name}"
        assert any(OTHER_SECRET.encode() in data for data in files.values())
