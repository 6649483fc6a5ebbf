"""/link is explicit and whole (through the core, on SQLite and PostgreSQL).

Before: `/link CODE` merged at once, in the redeemer's disfavour and without a word to anyone;
the redeemer's other linked identity stayed on an emptied user, so its /forgetme no longer
reached the moved data; wrong codes could be tried without limit. Now: `/link CODE` says which
account joins which and waits for `/link CODE confirm`; every identity of the joined user moves;
the other identities are told at their next private message; `/link list`, `/unlink PLATFORM`;
wrong codes are audited and limited per identity. Every link answer is private.
"""

from __future__ import annotations

import json

from bot.app import App
from bot.link_commands import FAILED_LINK, MAX_FAILED_LINKS
from testkit.databases import audit_log, dump_rows
from tests.reliability.fault_fixtures import APP, Answer, ask, message, rows_mentioning, running_app

ADA = {"user": "811", "name": "Ada"}  # Telegram
ADA_DC = {"user": "911", "name": "ada_dc", "platform": "discord"}
ADA_TG2 = {"user": "812", "name": "Ada2"}  # a second Telegram account of Ada's
# Long enough that it cannot turn up inside a timestamp or a hash by chance.
ATTACKER = {"user": "6660013579246", "name": "Mallory"}
SECRET = "heron-violet-31"
SECRET_2 = "otter-amber-58"


async def private_answer(app: App, text: str, who: dict[str, str]) -> Answer:
    answer = await ask(app, message(text, **who))
    assert answer.final and all(r.private for r in answer.final), (text, answer.replies)
    return answer


async def code_of(app: App, who: dict[str, str]) -> str:
    answer = await private_answer(app, "/link", who)
    return answer.text.split("Your link code: ")[1].split()[0]


async def link(app: App, owner: dict[str, str], joiner: dict[str, str]) -> str:
    code = await code_of(app, owner)
    await private_answer(app, f"/link {code}", joiner)
    assert (await private_answer(app, f"/link {code} confirm", joiner)).text.startswith("Linked")
    return code


async def user_of(app: App, who: dict[str, str]) -> str | None:
    return await app.store.find_user(who.get("platform", "telegram"), who["user"])


async def test_link_code_alone_changes_nothing_until_confirmed(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        await ask(app, message("/watchlist add NVDA", **ADA))
        await ask(app, message("/watchlist add AMD", **ADA_DC))
        code = await code_of(app, ADA)
        preview = await private_answer(app, f"/link {code}", ADA_DC)
        assert "Your Discord (ada_dc) account will join your Telegram (Ada) account" in (
            preview.text
        ), preview.text
        assert f"/link {code} confirm" in preview.text
        assert await user_of(app, ADA_DC) != await user_of(app, ADA)  # nothing moved
        assert "NVDA" not in (await ask(app, message("/watchlist", **ADA_DC))).text
        done = await private_answer(app, f"/link {code} confirm", ADA_DC)  # still valid
        assert done.text.startswith("Linked!") and "Telegram (Ada)" in done.text
        assert await user_of(app, ADA_DC) == await user_of(app, ADA)
        # Both had a watchlist: the one already there (the code owner's) is kept, as announced.
        assert "Your watchlist: NVDA" in (await ask(app, message("/watchlist", **ADA_DC))).text


async def test_every_identity_moves_and_forgetme_from_any_erases_all(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        # Ada's Telegram 812 and Discord are linked; her main Telegram 811 is another account.
        await ask(app, message(f"remember my secret: {SECRET}", **ADA_TG2))
        await link(app, ADA_TG2, ADA_DC)
        await ask(app, message(f"remember this too: {SECRET_2}", **ADA))
        absorbed = await user_of(app, ADA_TG2)
        preview = await private_answer(app, f"/link {await code_of(app, ADA)}", ADA_DC)
        assert "Your Telegram (Ada2) and Discord (ada_dc) accounts will join" in preview.text
        await link(app, ADA, ADA_DC)
        joined = await user_of(app, ADA)
        assert await user_of(app, ADA_TG2) == await user_of(app, ADA_DC) == joined
        assert await app.store.identities(absorbed or "") == []
        # /forgetme from the identity that did not redeem anything reaches everything.
        await private_answer(app, "/forgetme", ADA_TG2)
        await private_answer(app, "/forgetme confirm", ADA_TG2)
        rows = await dump_rows(any_db_url)
        for trace in (SECRET, SECRET_2, joined or "?", "Ada2", "ada_dc"):
            assert not rows_mentioning(rows, trace), f"{trace!r} survived /forgetme"


async def test_other_identities_are_told_at_their_next_private_message(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        await link(app, ADA, ADA_TG2)  # Ada's account: Telegram 811 and 812
        await link(app, ADA, ADA_DC)  # Discord joins from Discord
        # Told in a group? No: the notice waits for a private place.
        group = await ask(app, message("tell me a joke", group=True, **ADA_TG2))
        assert "linked to yours" not in group.text
        for who in (ADA, ADA_TG2):
            first = await ask(app, message("/prefs", **who))
            notices = [r for r in first.final if "A new account was linked to yours" in r.text]
            assert notices and all(r.private for r in notices), first.text
            assert "Discord (ada_dc)" in notices[-1].text
            assert "/unlink discord" in notices[-1].text
            again = await ask(app, message("/prefs", **who))  # shown once
            assert "linked to yours" not in again.text
        # The redeeming chat was told directly; nothing waits for it.
        assert "linked to yours" not in (await ask(app, message("/prefs", **ADA_DC))).text


async def test_list_and_unlink_keep_a_copy_of_the_preferences_only(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        await ask(app, message("My name is Ada", **ADA))
        await ask(app, message("/watchlist add NVDA", **ADA))
        await ask(app, message(f"remember my secret: {SECRET}", **ADA))
        await link(app, ADA, ADA_DC)
        listed = await private_answer(app, "/link list", ADA)
        assert "Telegram (Ada) — this one" in listed.text and "Discord (ada_dc)" in listed.text
        done = await private_answer(app, "/unlink discord", ADA)
        assert "Discord (ada_dc) is detached" in done.text
        alone = await user_of(app, ADA_DC)
        assert alone is not None and alone != await user_of(app, ADA)
        prefs = (await ask(app, message("/prefs", **ADA_DC))).text
        assert "This account was detached" in prefs  # told at its next private message
        assert "Name: Ada" in prefs and "NVDA" in prefs  # a copy of the preferences ...
        history = json.dumps([e.content for e in await app.store.history(APP, alone, limit=500)])
        assert SECRET not in history  # ... not the history
        assert "NVDA" in (await ask(app, message("/watchlist", **ADA))).text  # Ada keeps hers
        single = await private_answer(app, "/link list", ADA)
        assert "not linked to any other" in single.text
        assert "nothing to unlink" in (await private_answer(app, "/unlink discord", ADA)).text


async def test_wrong_codes_are_limited_per_user_and_audited(any_db_url: str) -> None:
    async with running_app(any_db_url) as app:
        code = await code_of(app, ADA)
        before = len(await audit_log(any_db_url))
        for guess in range(MAX_FAILED_LINKS):
            wrong = await private_answer(app, f"/link ZZZZ{guess:04d}", ATTACKER)
            assert "unknown, used or expired" in wrong.text
        # Past the limit even the right code is refused, looked at or confirmed.
        for text in (f"/link {code}", f"/link {code} confirm"):
            refused = await private_answer(app, text, ATTACKER)
            assert "Too many wrong link codes" in refused.text and "Ada" not in refused.text
        assert await user_of(app, ATTACKER) != await user_of(app, ADA)
        everything = await audit_log(any_db_url)  # newest first
        entries = everything[: len(everything) - before]
        commands = sorted(e["command"] for e in entries)
        assert commands == [FAILED_LINK] * MAX_FAILED_LINKS + ["/link refused"] * 2
        assert ATTACKER["user"] not in json.dumps(entries, default=str)  # hashed actors
        # The limit is the attacker's, not everyone's: Ada's own code still works for her.
        await private_answer(app, f"/link {code} confirm", ADA_DC)
        assert await user_of(app, ADA_DC) == await user_of(app, ADA)
