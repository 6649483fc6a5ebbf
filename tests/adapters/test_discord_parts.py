"""What a reply becomes on Discord (adapters/discord/delivery.py `parts`): plain text escaped
so nothing a user typed formats, the model's Markdown as it is, every part within 2000
characters and with its code fences balanced, so each part renders on its own."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.delivery import parts
from adapters.text import DISCORD_LIMIT
from bot.messages import Reply

FENCE = re.compile(r"^ {0,3}```", re.MULTILINE)


def test_plain_text_is_escaped_and_markdown_is_not() -> None:
    assert parts(Reply("/**x**_y_ ~~z~~ `q`")) == [r"/\*\*x\*\*\_y\_ \~\~z\~\~ \`q\`"]
    assert parts(Reply("**x** https://e.example/a_b")) == [r"\*\*x\*\* https://e.example/a_b"]
    assert parts(Reply("**x** _y_", markdown=True)) == ["**x** _y_"]


LINES = st.sampled_from(["```py", "```", "x = 1", "some words here", "", "- item", "> q"])


@settings(max_examples=200, deadline=None)
@given(st.lists(LINES, max_size=600))
def test_every_markdown_part_fits_and_has_balanced_fences(lines: list[str]) -> None:
    for part in parts(Reply("\n".join(lines), markdown=True)):
        assert len(part) <= DISCORD_LIMIT
        assert len(FENCE.findall(part)) % 2 == 0
