"""The neutral Markdown reader (adapters/markdown.py), the console's plain text, and Telegram's
entities built from it (adapters/telegram/entities.py): any text, half-written or not, becomes
messages whose entities the Bot API emulator's checks accept, cut at the same places as the
text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.markdown import Span, plain, read
from adapters.telegram.entities import chunks
from adapters.text import split_message, utf16_len
from testkit.emulators.telegram_api import checked_entities


def test_layout_of_each_block_kind() -> None:
    rich = read(
        "# Title\n\nSome **bold**, *it*, ~~gone~~ and `code`.\n\n"
        "- one\n- two\n  1. sub\n\n3. three\n4. four\n\n"
        "> a quote\n\n```sh\nls -l\n```\n\n---\n\n[site](https://example.com) ![pic](https://example.com/p.png)"
    )
    assert rich.text == (
        "Title\n\nSome bold, it, gone and code.\n\n• one\n• two\n  1. sub\n\n3. three\n4. four\n\n"
        "a quote\n\nls -l\n\n———\n\nsite pic"
    )
    at = rich.text.index
    assert rich.spans == (
        Span("heading", 0, 5),
        Span("bold", at("bold"), at("bold") + 4),
        Span("italic", at("it,"), at("it,") + 2),
        Span("strike", at("gone"), at("gone") + 4),
        Span("code", at("code"), at("code") + 4),
        Span("quote", at("a quote"), at("a quote") + 7),
        Span("pre", at("ls -l"), at("ls -l") + 5, language="sh"),
        Span("link", at("site"), at("site") + 4, url="https://example.com"),
        Span("link", at("pic"), at("pic") + 3, url="https://example.com/p.png"),
    )


def test_a_table_is_a_code_block_with_its_columns_lined_up() -> None:
    rich = read("Prices:\n\n| Name | **Price** |\n|---|--:|\n| AAPL | `187` |\n| 世界 | 1 |")
    table = "Name | Price\n-----+------\nAAPL | 187\n世界 | 1"  # 世界 is four columns wide
    assert rich.text == "Prices:\n\n" + table
    assert rich.spans == (Span("pre", 9, 9 + len(table)),)


def test_half_written_markdown_reads_as_text() -> None:
    assert read("so **bol").text == "so **bol"
    assert read("see [the docs](https://exa").text == "see [the docs](https://exa"
    unclosed = read("code:\n```py\nx = 1")
    assert unclosed.text == "code:\n\nx = 1"
    assert unclosed.spans == (Span("pre", 7, 12, language="py"),)


def test_links_chats_cannot_open_and_raw_html_stay_text() -> None:
    assert read("[x](javascript:alert(1)) [y](relative/path)").spans == ()
    assert read("<b>hi</b>").text == "<b>hi</b>"


def test_the_console_sees_readable_plain_text() -> None:
    shown = plain(read("**Note**\n\n- [docs](https://d.example)\n\n> said\n> twice\n\n```\nx\n```"))
    assert shown == "Note\n\n• docs (https://d.example)\n\n│ said\n│ twice\n\n    x"
    assert "*" not in shown


def test_entities_count_utf16_units_and_skip_code_inside_bold() -> None:
    (chunk,) = chunks("👋 **世界 `x` 🎉**", markdown=True)
    assert chunk.text == "👋 世界 x 🎉"
    found = [(e.type, e.offset, e.length) for e in chunk.entities]
    # Bold may not contain code (Bot API): it is cut around it.
    assert found == [("bold", 3, 3), ("code", 6, 1), ("bold", 7, 3)]


def test_code_inside_a_link_keeps_the_link() -> None:
    (chunk,) = chunks("see [`docs`](https://d.example) now", markdown=True)
    assert [(e.type, e.offset, e.length, e.url) for e in chunk.entities] == [
        ("text_link", 4, 4, "https://d.example")
    ]


def test_plain_text_gets_no_entities() -> None:
    (chunk,) = chunks("**not bold** _x_ `y`")
    assert chunk.text == "**not bold** _x_ `y`" and chunk.entities == ()


PIECES = [*"ab 字😀\n*_`~#->[]()1.!|", "https://x.io", "```py\n", "    ", "|---|"]
MARKDOWNISH = st.lists(st.sampled_from(PIECES), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(MARKDOWNISH, st.integers(min_value=4, max_value=60))
def test_every_part_of_any_text_carries_entities_telegram_accepts(text: str, limit: int) -> None:
    rich = read(text)
    assert all(0 <= s.start < s.end <= len(rich.text) for s in rich.spans)
    parts = chunks(text, markdown=True, limit=limit)
    if rich.text.strip():
        assert [p.text for p in parts] == split_message(rich.text, limit, utf16_len)
    for part in parts:
        assert utf16_len(part.text) <= limit
        checked_entities(part.text, [e.to_dict() for e in part.entities])
