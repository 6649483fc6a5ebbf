"""The memory rules both backends apply (storage.common's text rules, storage.memory_plan's
plans), checked once here; tests/storage/test_memories.py checks each backend follows them."""

from __future__ import annotations

import pytest

from storage.common import (
    MEMORY_TEXT_MAX,
    memory_id,
    memory_terms,
    memory_text,
    near_duplicate,
    normalise_memory,
    recall_terms,
)
from storage.memory_plan import ChangeContext, plan_changes, plan_merge
from storage.types import Memory, MemoryChange


def test_text_is_stripped_cut_and_never_holds_nul() -> None:
    assert memory_text("  has a cat \n") == "has a cat"
    assert memory_text("a\x00b") == "ab"
    assert len(memory_text("x" * 1000)) == MEMORY_TEXT_MAX


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("Lives in Lisbon.", "lives  in lisbon", True),
        ("lives in Lisbon", "lives in Lisbon since 2020", True),
        ("cat", "likes concatenation", False),
        ("vegan", "vegetarian", False),
        ("", "anything", False),
    ],
)
def test_near_duplicates(first: str, second: str, same: bool) -> None:
    assert near_duplicate(normalise_memory(first), normalise_memory(second)) is same


def test_ids_are_fixed_by_session_event_and_index() -> None:
    assert memory_id("e1", 0, "s1") == memory_id("e1", 0, "s1")
    assert len({memory_id("e1", 0, "s1"), memory_id("e1", 1, "s1"), memory_id("e1", 0, "s2")}) == 3


def test_terms_are_keyed_by_their_owner_and_hold_no_plain_word() -> None:
    mine = memory_terms("app", "u1", "Has a CAT called Pixel")
    assert set(mine) == set(memory_terms("app", "u1", "pixel, cat called... HAS"))
    assert set(mine).isdisjoint(memory_terms("app", "u2", "Has a CAT called Pixel"))
    assert set(mine).isdisjoint(memory_terms("other", "u1", "Has a CAT called Pixel"))
    assert not any("pixel" in term or "cat" in term for term in mine)
    assert memory_terms("app", "u1", "the and of a") == []  # stop words say nothing
    assert memory_terms("app", "u1", "lives cats allergies") == memory_terms(
        "app", "u1", "live cat allergy"
    )
    assert memory_terms("app", "u1", "boss virus") != memory_terms("app", "u1", "bos viru")
    assert len(recall_terms("app", "u1", " ".join(f"w{n}" for n in range(500)))) == 32


def test_a_plan_adds_updates_deletes_and_keeps_the_limit() -> None:
    ctx = ChangeContext("e1", "s1", 100.0, limit=2)
    old = Memory("aaaaaaaaaaaa", "likes tea", 10.0, 10.0, "e0")
    plan = plan_changes([old], [MemoryChange("add", "plays go"), MemoryChange("add", "x")], ctx)
    assert plan.delete == ("aaaaaaaaaaaa",)  # the stalest went: three would pass the limit
    assert [m.text for m in plan.write] == ["plays go", "x"]
    same = plan_changes([old], [MemoryChange("add", "likes tea")], ctx)
    assert same.write == (Memory("aaaaaaaaaaaa", "likes tea", 10.0, 100.0, "e1"),)
    assert not plan_changes([old], [MemoryChange("update", "?", "nope")], ctx)


def test_a_merge_folds_near_duplicates_and_runs_twice_to_the_same_end() -> None:
    target = [Memory("t" * 12, "lives in Lisbon", 1.0, 1.0, "a")]
    incoming = [Memory("s" * 12, "Lives in Lisbon.", 2.0, 2.0, "b")]
    plan = plan_merge(target, incoming, 10)
    assert plan.write == (Memory("t" * 12, "Lives in Lisbon.", 1.0, 2.0, "b"),)
    assert not plan_merge(list(plan.write), incoming, 10).delete
