"""Usernames kept with identities, on both backends: normalised, up to date, held by one account
of a platform at a time, found from any platform, exported, erased with the user."""

from __future__ import annotations

from storage import Store
from storage.common import normalize_username

APP = "app"


def test_the_username_rule() -> None:
    assert normalize_username("@Ada_Lovelace") == "ada_lovelace"
    assert normalize_username(" ada.l ") == "ada.l"
    not_names = ("", "@", "a", "x" * 33, "no spaces", None)
    assert [normalize_username(n) for n in not_names] == [None] * len(not_names)


async def test_a_username_is_kept_and_found(store: Store) -> None:
    ada = await store.resolve_user("telegram", "1", "Ada", "@Ada_L")
    assert await store.resolve_user("telegram", "1", "Ada") == ada  # none given: kept
    [found] = await store.find_by_username("@ada_l")
    assert (found.platform, found.platform_user_id, found.user_id) == ("telegram", "1", ada)
    assert found.username == "ada_l"
    assert await store.find_by_username("ADA_L") == [found]
    assert await store.find_by_username("nobody") == []
    assert await store.find_by_username("not a name!") == []


async def test_a_changed_username_follows_and_moves_between_accounts(store: Store) -> None:
    ada = await store.resolve_user("telegram", "1", "Ada", "ada")
    await store.resolve_user("telegram", "1", "Ada", "countess")
    assert await store.find_by_username("ada") == []
    bob = await store.resolve_user("telegram", "2", "Bob", "countess")  # Telegram gave it on
    assert [i.user_id for i in await store.find_by_username("countess")] == [bob]
    assert ada != bob
    # The same name on another platform is another account, found too.
    eve = await store.resolve_user("discord", "3", "Eve", "countess")
    assert {i.user_id for i in await store.find_by_username("countess")} == {bob, eve}


async def test_the_username_is_exported_and_erased(store: Store) -> None:
    ada = await store.resolve_user("telegram", "1", "Ada", "ada")
    [identity] = (await store.export_user(APP, ada))["identities"]
    assert identity["username"] == "ada"
    await store.delete_user(APP, ada)
    assert await store.find_by_username("ada") == []
