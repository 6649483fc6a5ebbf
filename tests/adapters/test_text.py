from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.text import DISCORD_LIMIT, TELEGRAM_LIMIT, split_message, utf16_len


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 10) == ["hello"]
    assert split_message("", 10) == [""]


def test_splits_on_paragraph_then_words() -> None:
    text = ("word " * 500).strip() + "\n\n" + ("more " * 500).strip()
    chunks = split_message(text, DISCORD_LIMIT)
    assert all(len(c) <= DISCORD_LIMIT for c in chunks)
    assert all(not c.startswith(" ") and not c.endswith(" ") for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_5000_chars_split_in_two_for_telegram() -> None:
    text = "x" * 2500 + "\n" + "y" * 2499
    chunks = split_message(text, TELEGRAM_LIMIT, utf16_len)
    assert chunks == ["x" * 2500, "y" * 2499]


def test_emoji_counted_in_utf16_units() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    chunks = split_message(text, TELEGRAM_LIMIT, utf16_len)
    assert [utf16_len(c) for c in chunks] == [4096, 6000 - 4096]
    assert "".join(chunks) == text


@given(
    st.text(min_size=0, max_size=3000), st.integers(min_value=2, max_value=300)
)  # one code point may be 2 units
def test_chunks_fit_and_keep_every_non_space_character(text: str, limit: int) -> None:
    chunks = split_message(text, limit, utf16_len)
    assert all(utf16_len(c) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())
