"""storage.common: the rules both backends call, checked once here (the contract tests in this
folder check that each backend follows them)."""

from __future__ import annotations

import math

import pytest

from storage import Event, SchemaTooNew, StoreError
from storage.common import (
    CODE_ALPHABET,
    CODE_LENGTH,
    check_storable,
    dumps,
    hash_actor,
    new_link_code,
    new_user_id,
    normalize_code,
)


def test_link_codes_avoid_look_alike_characters_and_normalise_as_typed() -> None:
    codes = {new_link_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert normalize_code(" abcd-efgh ") == "ABCDEFGH"


def test_user_ids_are_twelve_hex_characters() -> None:
    user_id = new_user_id()
    assert len(user_id) == 12 and int(user_id, 16) >= 0


def test_actor_hashes_depend_on_the_salt_and_hide_the_id() -> None:
    actor = "telegram:987654321012"
    assert hash_actor(b"salt", actor) == hash_actor(b"salt", actor)
    assert hash_actor(b"salt", actor) != hash_actor(b"other", actor)
    assert len(hash_actor(b"salt", actor)) == 16 and "987654321012" not in hash_actor(b"s", actor)


def test_json_is_strict() -> None:
    assert dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'
    for bad in (math.nan, math.inf, object()):
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            dumps({"x": bad})


def test_partial_events_and_events_without_id_are_never_storable() -> None:
    check_storable(Event(author="user", content={"text": "hi"}))
    with pytest.raises(ValueError, match="partial"):
        check_storable(Event(author="m", content={"text": "de"}, partial=True))
    with pytest.raises(ValueError, match="id"):
        check_storable(Event(author="user", content={"text": "hi"}, id=""))


def test_schema_too_new_is_a_store_error_in_one_line() -> None:
    error = SchemaTooNew(9, 3)
    assert isinstance(error, StoreError)
    assert "v9" in str(error) and "v3" in str(error) and "\n" not in str(error)
