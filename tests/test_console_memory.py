"""The memory story in the real console chat (`python -m bot chat`, the offline model): facts
told, 100 other messages, a restart, the facts recalled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_console import env_for

# Other talk, other facts (so the first ones are neither the latest memories nor the only
# ones), jokes, facts and questions: 100 messages in all.
OTHER = [
    *(
        f"my {thing} is {value}"
        for thing, value in [
            ("car", "a Volvo"),
            ("boss", "Maria"),
            ("team", "Benfica"),
            ("phone", "a Pixel"),
            ("band", "Radiohead"),
            ("cat", "Pixel"),
            ("book", "Dune"),
            ("game", "chess"),
        ]
    ),
    "I like hiking",
    "I work at the Gulbenkian",
    *(["tell me a joke", "tell me a nerdy fact about space", "how are you?", "thanks!"] * 22),
    "what's AAPL at?",
    "hello",
]


def chat(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--user", "ada"],
        cwd=tmp_path,
        env=env_for(tmp_path, USER_RATE_LIMIT="0"),
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_fact_told_is_recalled_after_100_messages_and_a_restart(tmp_path: Path) -> None:
    assert len(OTHER) == 100
    first = chat(tmp_path, ["my dog is Rex", "I live in Lisbon", *OTHER])
    assert first.returncode == 0, first.stderr
    assert "Got it, I'll remember that your dog is Rex." in first.stdout
    assert "Traceback" not in first.stderr
    second = chat(
        tmp_path,
        [
            "what is my dog's name?",
            "where do I live?",
            "what do you know about me?",
            "what did I tell you last time?",
        ],
    )
    assert second.returncode == 0, second.stderr
    dog, home, about_me, earlier = second.stdout.split("bot> ")[1:]
    assert dog.strip() == "Your dog is Rex."
    assert home.strip() == "You live in Lisbon."
    assert about_me.startswith("Here's what I know about you:")
    # (the console shows the answer's Markdown list as bullets)
    assert "Favourite nerd topics: space" in about_me and "You like hiking" in about_me
    assert "(/memory lists every memory.)" in about_me
    assert "And I remember:" in earlier and "You work at the Gulbenkian" in earlier
    assert "Traceback" not in second.stderr
